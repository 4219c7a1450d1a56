//! A deliberately small HTTP/1.1 client: one keep-alive TCP connection with `TCP_NODELAY`,
//! a request written with one `write`, and a response read as head + body pieces
//! (`Content-Length`, chunked, or until close) so an SSE body can be parsed as it arrives.
//! Plus the SSE event parser both MCP HTTP wires need. Loopback `http://` URLs only.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// `host:port` and path of an `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `127.0.0.1:3000`: what we connect to and send as `Host`.
    pub authority: String,
    /// `/mcp`, including any query.
    pub path: String,
}

impl Url {
    /// Parses `http://host:port/path`.
    pub fn parse(url: &str) -> Result<Url, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("only http:// URLs are supported: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("no host in {url}"));
        }
        let authority = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Url {
            authority,
            path: path.to_owned(),
        })
    }

    /// Resolves what an SSE `endpoint` event announced (absolute URL, absolute path, or a
    /// path relative to this URL's directory).
    pub fn join(&self, reference: &str) -> Result<Url, String> {
        if reference.starts_with("http://") {
            return Url::parse(reference);
        }
        if reference.starts_with('/') {
            return Ok(Url {
                authority: self.authority.clone(),
                path: reference.to_owned(),
            });
        }
        let dir = match self.path.rfind('/') {
            Some(i) => &self.path[..=i],
            None => "/",
        };
        Ok(Url {
            authority: self.authority.clone(),
            path: format!("{dir}{reference}"),
        })
    }
}

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// A response's status line and the headers the MCP wires care about.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    /// Lower-cased `Content-Type` (empty when absent).
    pub content_type: String,
    /// `Mcp-Session-Id`, if sent.
    pub session_id: Option<String>,
    /// The server will close the connection after this response.
    pub close: bool,
    framing: Framing,
}

impl Head {
    /// Whether the body is an SSE stream.
    pub fn is_event_stream(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }
}

/// Where the body being read stands.
#[derive(Debug)]
pub struct Body {
    framing: Framing,
    /// Bytes left of a `Content-Length` body.
    remaining: u64,
    /// The end of the body has been read.
    pub done: bool,
}

/// One keep-alive connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
    /// Reused for each request's bytes.
    out: Vec<u8>,
    /// Reused for header lines.
    line: Vec<u8>,
}

impl Connection {
    /// Connects with `TCP_NODELAY` (a proxy that sends small messages must not wait for
    /// Nagle, and neither must we).
    pub async fn connect(authority: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::with_capacity(64 * 1024, stream),
            out: Vec::with_capacity(1024),
            line: Vec::with_capacity(256),
        })
    }

    /// Writes one request (head and body in one `write`).
    pub async fn send(
        &mut self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<()> {
        use std::io::Write;
        self.out.clear();
        let _ = write!(
            self.out,
            "{method} {} HTTP/1.1\r\nHost: {}\r\n",
            url.path, url.authority
        );
        for (name, value) in headers {
            let _ = write!(self.out, "{name}: {value}\r\n");
        }
        if !body.is_empty() || method == "POST" {
            let _ = write!(self.out, "Content-Length: {}\r\n", body.len());
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        self.stream.get_mut().write_all(&self.out).await
    }

    /// Reads the status line and headers (skipping `100 Continue`).
    pub async fn read_head(&mut self) -> std::io::Result<(Head, Body)> {
        loop {
            let status_line = self.read_line().await?;
            let status: u16 = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| invalid(format!("bad status line: {status_line:?}")))?;
            let mut head = Head {
                status,
                content_type: String::new(),
                session_id: None,
                close: false,
                framing: Framing::UntilClose,
            };
            let mut length = None;
            let mut chunked = false;
            loop {
                let line = self.read_line().await?;
                if line.is_empty() {
                    break;
                }
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-type" => head.content_type = value.to_ascii_lowercase(),
                    "content-length" => length = value.parse::<u64>().ok(),
                    "transfer-encoding" => {
                        chunked = value.to_ascii_lowercase().contains("chunked");
                    }
                    "connection" => head.close = value.eq_ignore_ascii_case("close"),
                    "mcp-session-id" => head.session_id = Some(value.to_owned()),
                    _ => {}
                }
            }
            if status == 100 {
                continue;
            }
            head.framing = if chunked {
                Framing::Chunked
            } else if let Some(length) = length {
                Framing::Length(length)
            } else if status == 204 || status == 304 {
                Framing::Length(0)
            } else {
                Framing::UntilClose
            };
            if head.framing == Framing::UntilClose {
                head.close = true;
            }
            let body = Body {
                framing: head.framing,
                remaining: length.unwrap_or(0),
                done: head.framing == Framing::Length(0),
            };
            return Ok((head, body));
        }
    }

    /// Appends the next piece of the body to `out`; returns `false` once the body has
    /// ended (nothing appended).
    pub async fn read_piece(
        &mut self,
        body: &mut Body,
        out: &mut Vec<u8>,
    ) -> std::io::Result<bool> {
        if body.done {
            return Ok(false);
        }
        match body.framing {
            Framing::Length(_) => {
                let available = self.stream.fill_buf().await?;
                if available.is_empty() {
                    return Err(eof("in the middle of a body"));
                }
                let take = available
                    .len()
                    .min(usize::try_from(body.remaining).unwrap_or(usize::MAX));
                out.extend_from_slice(&available[..take]);
                self.stream.consume(take);
                body.remaining -= take as u64;
                if body.remaining == 0 {
                    body.done = true;
                }
                Ok(true)
            }
            Framing::UntilClose => {
                let available = self.stream.fill_buf().await?;
                if available.is_empty() {
                    body.done = true;
                    return Ok(false);
                }
                let take = available.len();
                out.extend_from_slice(available);
                self.stream.consume(take);
                Ok(true)
            }
            Framing::Chunked => {
                let size_line = self.read_line().await?;
                let size_hex = size_line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_hex, 16)
                    .map_err(|_| invalid(format!("bad chunk size: {size_line:?}")))?;
                if size == 0 {
                    // Trailers, then the blank line that ends the body.
                    while !self.read_line().await?.is_empty() {}
                    body.done = true;
                    return Ok(false);
                }
                let start = out.len();
                out.resize(start + size, 0);
                self.stream.read_exact(&mut out[start..]).await?;
                let crlf = self.read_line().await?;
                if !crlf.is_empty() {
                    return Err(invalid("chunk not followed by CRLF".to_owned()));
                }
                Ok(true)
            }
        }
    }

    /// Reads the rest of the body into `out`.
    pub async fn read_to_end(&mut self, body: &mut Body, out: &mut Vec<u8>) -> std::io::Result<()> {
        while self.read_piece(body, out).await? {}
        Ok(())
    }

    async fn read_line(&mut self) -> std::io::Result<String> {
        self.line.clear();
        let n = self.stream.read_until(b'\n', &mut self.line).await?;
        if n == 0 {
            return Err(eof("while reading a header line"));
        }
        while matches!(self.line.last(), Some(b'\n' | b'\r')) {
            self.line.pop();
        }
        String::from_utf8(std::mem::take(&mut self.line))
            .map_err(|_| invalid("header line is not UTF-8".to_owned()))
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

fn eof(when: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("connection closed {when}"),
    )
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field (`message` when absent).
    pub name: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Splits an SSE byte stream into events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes not yet forming a whole event (`\r` removed).
    pending: Vec<u8>,
    /// How far `pending` is known to hold no event boundary (a large event arriving in many
    /// pieces is scanned once, not once per piece).
    scanned: usize,
}

impl SseParser {
    /// Feeds bytes as they arrive.
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending
            .extend(bytes.iter().copied().filter(|&b| b != b'\r'));
    }

    /// The next complete event, skipping comments and events without data.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let from = self.scanned.saturating_sub(1);
            let Some(found) = self.pending[from..].windows(2).position(|w| w == b"\n\n") else {
                self.scanned = self.pending.len();
                return None;
            };
            let end = from + found;
            self.scanned = 0;
            let block: Vec<u8> = self.pending.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block[..end]);
            let mut name = String::from("message");
            let mut data: Option<String> = None;
            for line in text.split('\n') {
                let (field, value) = match line.split_once(':') {
                    Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                    None => (line, ""),
                };
                match field {
                    "event" => name = value.to_owned(),
                    "data" => match &mut data {
                        Some(data) => {
                            data.push('\n');
                            data.push_str(value);
                        }
                        None => data = Some(value.to_owned()),
                    },
                    _ => {}
                }
            }
            match data {
                Some(data) if !data.is_empty() => return Some(Event { name, data }),
                _ => continue,
            }
        }
    }
}
