//! Cursor pagination of `tools/list`, `prompts/list`, `resources/list` and
//! `resources/templates/list` (`--page-size N`).
//!
//! With N > 0 a list answers at most N items and, when more follow,
//! `nextCursor` `page:<offset>` (clients must treat it as opaque). Items come
//! in a stable order (tools and prompts by name, resources as declared), so
//! following the cursors yields every item exactly once while the list does
//! not change. A cursor this server could not have produced (garbage, wrong
//! page size, past the end, or any cursor with pagination off) is a JSON-RPC
//! invalid-params error (-32602).

use rmcp::{
    ErrorData as McpError,
    model::{Cursor, PaginatedRequestParams},
};
use serde_json::json;

/// What every cursor starts with.
const PREFIX: &str = "page:";

/// The page of `items` that `request`'s cursor asks for (the first page
/// without one), and the cursor of the next page, if any. `page_size` 0 is
/// one page with everything.
pub fn page<T>(
    mut items: Vec<T>,
    request: Option<&PaginatedRequestParams>,
    page_size: usize,
) -> Result<(Vec<T>, Option<Cursor>), McpError> {
    let start = match request.and_then(|request| request.cursor.as_deref()) {
        Some(cursor) => offset(cursor, page_size, items.len())?,
        None => 0,
    };
    let end = match start.checked_add(page_size) {
        Some(end) if page_size > 0 && end < items.len() => end,
        _ => {
            items.drain(..start);
            return Ok((items, None));
        }
    };
    items.truncate(end);
    items.drain(..start);
    Ok((items, Some(format!("{PREFIX}{end}"))))
}

/// The offset `cursor` stands for: a positive multiple of `page_size`, at
/// most `len` (the list may have shrunk since), written as we write it.
fn offset(cursor: &str, page_size: usize, len: usize) -> Result<usize, McpError> {
    cursor
        .strip_prefix(PREFIX)
        .and_then(|digits| digits.parse::<usize>().ok())
        .filter(|&offset| {
            page_size > 0
                && offset > 0
                && offset % page_size == 0
                && offset <= len
                && format!("{PREFIX}{offset}") == cursor
        })
        .ok_or_else(|| {
            McpError::invalid_params(
                format!("invalid cursor {cursor:?}"),
                Some(json!({ "cursor": cursor })),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cursor: &str) -> PaginatedRequestParams {
        PaginatedRequestParams::default().with_cursor(Some(cursor.to_owned()))
    }

    #[test]
    fn following_the_cursors_yields_every_item_once() {
        let items: Vec<u32> = (0..250).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let params = cursor.as_deref().map(request);
            let (page, next) = page(items.clone(), params.as_ref(), 40).unwrap();
            assert!(page.len() <= 40);
            seen.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn no_page_size_is_one_page() {
        let (page, next) = page(vec![1, 2, 3], None, 0).unwrap();
        assert_eq!((page, next), (vec![1, 2, 3], None));
    }

    #[test]
    fn an_exact_multiple_has_no_empty_last_page() {
        let (page, next) =
            page((0..80).collect::<Vec<u32>>(), Some(&request("page:40")), 40).unwrap();
        assert_eq!((page.len(), next), (40, None));
    }

    #[test]
    fn foreign_cursors_are_invalid_params() {
        for cursor in [
            "", "garbage", "page:", "page:0", "page:7", "page:+40", "page:040", "page:400",
        ] {
            let error = page(vec![0; 100], Some(&request(cursor)), 40).err();
            assert_eq!(
                error.map(|error| error.code),
                Some(rmcp::model::ErrorCode::INVALID_PARAMS),
                "{cursor:?}"
            );
        }
        assert!(page(vec![0; 100], Some(&request("page:40")), 0).is_err());
    }
}
