//! The stdio face's use of the direct path ([`crate::upstream::direct`]): plain `tools/call`
//! and `tools/list` requests of the initialized session, and cancellations of such calls.
//! A `tools/list` is answered from the catalogue's serialized listing, as on `/mcp`.

use std::sync::{Arc, OnceLock};

use super::output::Output;
use crate::router::{Router, UpstreamSession};
use crate::upstream::direct::{Call, Calls, answer, parse_call, run};
use crate::upstream::mcp_face::{list_reply, list_request_id};

/// The direct path of one stdio session.
pub(super) struct Direct {
    router: Arc<Router>,
    /// The session's id, known before the client initializes.
    session_id: u64,
    /// The session, once the client has initialized.
    session: OnceLock<Arc<UpstreamSession>>,
    output: Output,
    calls: Arc<Calls>,
}

impl Direct {
    pub fn new(router: Arc<Router>, session_id: u64, output: Output, calls: Arc<Calls>) -> Direct {
        Direct {
            router,
            session_id,
            session: OnceLock::new(),
            output,
            calls,
        }
    }

    /// Handles `line` if it is for this path; `false` means rmcp gets it.
    pub async fn take(&self, line: &[u8]) -> bool {
        let Some(session) = self.session() else {
            return false;
        };
        if let Some(call) = parse_call(line) {
            self.start(session, call);
            return true;
        }
        if let Some(id) = list_request_id(line)
            && self.router.has_started()
            && let Some(listing) = self.router.catalog().tools_list_json()
        {
            let mut reply = list_reply(id, &listing);
            reply.push(b'\n');
            self.output.send(reply).await;
            return true;
        }
        self.calls.cancel(line)
    }

    fn session(&self) -> Option<Arc<UpstreamSession>> {
        if let Some(session) = self.session.get() {
            return Some(session.clone());
        }
        let session = self.router.sessions().get(self.session_id)?;
        Some(self.session.get_or_init(|| session).clone())
    }

    /// Runs one call in its own task; its answer is queued for stdout unless the client
    /// cancelled it first.
    fn start(&self, session: Arc<UpstreamSession>, call: Call) {
        let router = self.router.clone();
        let output = self.output.clone();
        // Recorded before the next line is read, so a cancellation right behind it finds it.
        let in_flight = self.calls.start(&call.id);
        tokio::spawn(async move {
            // Boxed: the task then holds a pointer, not the whole forwarding state machine,
            // which spawning would copy several times.
            let token = in_flight.token.clone();
            let outcome = Box::pin(run(&router, session, &call.name, call.arguments, token)).await;
            if in_flight.finish() {
                let mut line = answer(&call.id, outcome);
                line.push(b'\n');
                output.send(line).await;
            }
        });
    }
}
