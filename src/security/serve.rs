//! The HTTP server loop: accepts connections and serves the app over HTTP/1.1 with hyper,
//! because `axum::serve` has no header timeout (a client trickling headers, or opening
//! connections and sending nothing, would hold them forever).
//!
//! Each connection gets `header_timeout` to deliver a request's headers (which also closes
//! idle keep-alive connections after that long) and a cap on header count. Each request
//! goes to `handler` with the client's address; its future runs inside the connection's
//! task (no task or box per request). On shutdown the listener closes and open
//! connections finish their current request (bounded by the caller).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use futures::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Peer;

/// Most header lines in one request.
const MAX_HEADERS: usize = 100;
/// How long open connections get to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(3);

/// Serves `handler` on `listener` until `shutdown` is cancelled. `handler` gets each
/// request with its connection's [`Peer`].
pub async fn serve<H, Fut>(
    listener: TcpListener,
    handler: H,
    header_timeout: Duration,
    shutdown: CancellationToken,
) where
    H: Fn(http::Request<Body>, Peer) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(super::header_timer::HeaderTimer::new())
        .header_read_timeout(header_timeout)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let client = Peer::new(peer);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            handler(request.map(Body::new), client.clone()).map(Ok::<_, Infallible>)
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("some HTTP connections were still open at shutdown");
    }
}
