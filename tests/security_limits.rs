//! The HTTP hardening, end to end: rate limits (the N+1th request gets 429 with the right
//! headers, per key), Host and Origin allow-lists (hand-made foreign values get 403), the
//! body size limit (413, and the server stays up), the header and body timeouts against
//! slow clients, and CORS (off by default, on with `CORS_ORIGINS`).

mod common;
mod security_support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{FIXTURE, Proxy};
use security_support::{assert_no_secret_in_logs, key, send, start, start_with};

/// `host:port` of the proxy.
fn authority(proxy: &Proxy) -> String {
    proxy.base.trim_start_matches("http://").to_owned()
}

/// Writes `request` on a fresh connection and reads until the server closes it or `limit`
/// passes; returns what was read and how long it took.
async fn raw(proxy: &Proxy, request: &[u8], limit: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(authority(proxy))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let started = Instant::now();
    stream
        .write_all(request)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_n_plus_first_request_gets_429_per_key() {
    let proxy = start("  rate_limits: {calls: 3/h}\n").await;
    let reader = key(&["read"]);
    // (The full key was spent by the harness waiting for startup.)
    let other_key = key(&["read", "execute"]);
    let started = security_support::now();
    for remaining in [2, 1, 0] {
        let answer = send(&proxy, Method::GET, "/tools", Some(reader), None, &[]).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            answer.header("x-ratelimit-remaining"),
            Some(remaining.to_string())
        );
        let reset: u64 = answer
            .header("x-ratelimit-reset")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        // Full again after (3 - remaining) refills of 20 minutes each.
        let expected = started + (3 - remaining) * 1200;
        assert!(
            reset + 5 >= expected && reset <= expected + 5 + 2,
            "reset {reset}, expected about {expected}"
        );
    }
    let limited = send(&proxy, Method::GET, "/tools", Some(reader), None, &[]).await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.json()["error"]["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(
        limited.header("x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    assert!((1100..=1201).contains(&retry), "Retry-After {retry}");
    // Another key has its own budget; the limited one stays limited.
    let other = send(&proxy, Method::GET, "/tools", Some(other_key), None, &[]).await;
    assert_eq!(other.status, 200, "{other:?}");
    assert_eq!(other.header("x-ratelimit-remaining").as_deref(), Some("2"));
    let again = send(
        &proxy,
        Method::POST,
        "/mcp",
        Some(reader),
        Some("{}".into()),
        &[],
    )
    .await;
    assert_eq!(
        again.status, 429,
        "MCP traffic counts in the same class: {again:?}"
    );
    // A JWT is its own caller too.
    let token = security_support::jwt("ci", &["read"], 600);
    let jwt = send(&proxy, Method::GET, "/servers", Some(&token), None, &[]).await;
    assert_eq!(jwt.status, 200, "{jwt:?}");
    assert_no_secret_in_logs(&proxy, &[token]);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_the_limit_is_per_client_address() {
    let yaml = "security:\n  rate_limits: {calls: 2/min}\n";
    let proxy = Proxy::start_with(
        json!({ "mcpServers": { "fx": { "command": FIXTURE, "args": ["--stdio"] } } }),
        Some(yaml),
        &[],
    )
    .await;
    let statuses: Vec<u16> = futures::future::join_all((0..3).map(|_| async {
        send(&proxy, Method::GET, "/health", None, None, &[])
            .await
            .status
    }))
    .await;
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 200, 429], "{statuses:?}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_host_and_origin_get_403() {
    let proxy = start("").await;
    let reader = key(&["read"]);
    type Headers = &'static [(&'static str, &'static str)];
    let cases: &[(Headers, u16, &str)] = &[
        (&[("host", "evil.example.com")], 403, "HOST_NOT_ALLOWED"),
        (
            &[("host", "localhost.evil.example.com:80")],
            403,
            "HOST_NOT_ALLOWED",
        ),
        (
            &[("origin", "http://evil.example.com")],
            403,
            "ORIGIN_NOT_ALLOWED",
        ),
        (&[("origin", "null")], 403, "ORIGIN_NOT_ALLOWED"),
        (
            &[("host", "localhost:1"), ("origin", "http://localhost:5173")],
            200,
            "",
        ),
        (&[("origin", "http://127.0.0.1:9999")], 200, ""),
    ];
    for (headers, status, code) in cases {
        for path in ["/tools", "/mcp", "/health"] {
            let method = if path == "/mcp" {
                Method::POST
            } else {
                Method::GET
            };
            let body = (path == "/mcp").then(|| {
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "t", "version": "0"}}})
                .to_string()
            });
            let answer = send(&proxy, method, path, Some(reader), body, headers).await;
            assert_eq!(answer.status, *status, "{path} {headers:?}: {answer:?}");
            if !code.is_empty() {
                assert_eq!(answer.json()["error"]["code"], *code, "{path} {headers:?}");
            }
        }
    }
    // Without any credentials a DNS-rebinding request is refused before authentication.
    let answer = send(
        &proxy,
        Method::GET,
        "/tools",
        None,
        None,
        &[("host", "evil.example.com")],
    )
    .await;
    assert_eq!(answer.status, 403, "{answer:?}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_413_and_the_server_stays_up() {
    let proxy = start("  max_body_size: 64KiB\n").await;
    let full = key(&["read", "write", "execute"]);
    let big = json!({"text": "x".repeat(100 * 1024)}).to_string();
    for path in ["/tools/fx.echo", "/mcp"] {
        let answer = send(
            &proxy,
            Method::POST,
            path,
            Some(full),
            Some(big.clone()),
            &[],
        )
        .await;
        assert_eq!(answer.status, 413, "{path}: {answer:?}");
        assert_eq!(answer.json()["error"]["code"], "PAYLOAD_TOO_LARGE");
    }
    // Declared far too large, body never sent: refused at once, from the headers.
    let request = format!(
        "POST /tools/fx.echo HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {full}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
        authority(&proxy)
    );
    let (reply, _) = raw(&proxy, request.as_bytes(), Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    // Chunked, no length: counted while reading.
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {full}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        authority(&proxy)
    )
    .into_bytes();
    for _ in 0..20 {
        request.extend_from_slice(format!("1000\r\n{}\r\n", "y".repeat(0x1000)).as_bytes());
    }
    let (reply, _) = raw(&proxy, &request, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    // Just under the limit still works, and the server is fine.
    let fits = json!({"text": "z".repeat(60 * 1024)}).to_string();
    let answer = send(
        &proxy,
        Method::POST,
        "/tools/fx.echo",
        Some(full),
        Some(fits),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let health = send(&proxy, Method::GET, "/health", Some(full), None, &[]).await;
    assert_eq!(health.json()["status"], "ok");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_pin_connections() {
    let proxy = start("  header_timeout: 1s\n  body_timeout: 1s\n").await;
    let limit = Duration::from_secs(15);
    // Headers trickled and never finished (slowloris).
    let partial = format!(
        "GET /health HTTP/1.1\r\nHost: {}\r\nX-Slow: ",
        authority(&proxy)
    );
    let (reply, took) = raw(&proxy, partial.as_bytes(), limit).await;
    assert!(
        took < limit,
        "a half-sent request held the connection for {took:?}"
    );
    assert!(!reply.contains("200 OK"), "{reply}");
    // A connection that sends nothing at all.
    let (_, took) = raw(&proxy, b"", limit).await;
    assert!(took < limit, "an idle connection was kept {took:?}");
    // Headers complete, body promised but not sent: 408.
    let request = format!(
        "POST /tools/fx.echo HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"text\"",
        authority(&proxy),
        key(&["execute"])
    );
    let (reply, took) = raw(&proxy, request.as_bytes(), limit).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(took < limit);
    // A keep-alive client that sends its requests promptly is unaffected.
    for _ in 0..3 {
        let answer = send(&proxy, Method::GET, "/health", None, None, &[]).await;
        assert_eq!(answer.status, 200);
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_on_with_cors_origins() {
    let proxy = start("").await;
    let origin = [("origin", "http://localhost:5173")];
    let answer = send(&proxy, Method::GET, "/health", None, None, &origin).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), None);
    let preflight = send(
        &proxy,
        Method::OPTIONS,
        "/tools",
        None,
        None,
        &[
            ("origin", "http://localhost:5173"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 405, "{preflight:?}");
    proxy.stop().await;

    let app = "https://app.example.com";
    let proxy = start_with(
        json!({ "fx": { "command": FIXTURE, "args": ["--stdio"] } }),
        "",
        &[("CORS_ORIGINS", app)],
    )
    .await;
    let preflight = send(
        &proxy,
        Method::OPTIONS,
        "/tools",
        None,
        None,
        &[
            ("origin", app),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 204, "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin").as_deref(),
        Some(app)
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .is_some_and(|h| h.contains("authorization") && h.contains("mcp-session-id"))
    );
    let answer = send(
        &proxy,
        Method::GET,
        "/tools",
        Some(key(&["read"])),
        None,
        &[("origin", app)],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("access-control-allow-origin").as_deref(),
        Some(app)
    );
    assert!(
        answer
            .header("access-control-expose-headers")
            .is_some_and(|h| h.contains("x-ratelimit-remaining"))
    );
    // Errors carry CORS headers too, so the page can read them.
    let denied = send(
        &proxy,
        Method::GET,
        "/tools",
        None,
        None,
        &[("origin", app)],
    )
    .await;
    assert_eq!(denied.status, 401);
    assert_eq!(
        denied.header("access-control-allow-origin").as_deref(),
        Some(app)
    );
    // Other origins get nothing (and a foreign one is refused outright).
    let other = send(
        &proxy,
        Method::GET,
        "/health",
        None,
        None,
        &[("origin", "http://localhost:1")],
    )
    .await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    let evil = send(
        &proxy,
        Method::GET,
        "/health",
        None,
        None,
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(evil.status, 403);
    proxy.stop().await;
}
