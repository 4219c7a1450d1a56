//! The HTTP front: the one service every HTTP request passes through, in order —
//!
//! 1. its request id (a sane `X-Request-Id`, else a new one; echoed in the response and
//!    carried by error bodies);
//! 2. the security checks ([`security::guard`]: Host/Origin, route table, credentials,
//!    permissions, rate limit, body);
//! 3. its face: `POST`/`GET`/`DELETE /mcp` straight to the MCP face, everything else to the
//!    axum router of the REST API and the legacy SSE face.
//!
//! This is plain code rather than a stack of axum middleware and a nested service: each
//! axum layer boxes the request's future and clones the service behind it, which on an MCP
//! call cost ~16 % of mcp-orch's instructions (callgrind, `benches/profile.sh`). The route
//! table ([`crate::security::routes`]) is still the only source of routes: the guard answers
//! 404/405 for anything not in it before a face sees the request.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tower_service::Service;

use crate::api;
use crate::security::{self, Peer, Security};
use crate::upstream::McpFace;

/// Everything the HTTP faces are made of (shared by every connection).
pub struct HttpFront {
    security: Arc<Security>,
    mcp: McpFace,
    /// The REST API, `/batch`, and the legacy SSE face.
    rest: axum::Router,
}

impl HttpFront {
    pub fn new(security: Arc<Security>, mcp: McpFace, rest: axum::Router) -> Self {
        HttpFront {
            security,
            mcp,
            rest,
        }
    }

    /// Answers one request from `peer`.
    pub async fn handle(self: Arc<Self>, mut request: Request<Body>, peer: Peer) -> Response {
        let id = api::request_id_of(request.headers());
        request.extensions_mut().insert(id.clone());
        let front = &*self;
        let mut response = security::guard(&self.security, &peer, &id, request, |request| {
            front.face(request)
        })
        .await;
        api::echo_request_id(&mut response, &id);
        response
    }

    /// The face for a request the guard let through.
    async fn face(&self, request: Request<Body>) -> Response {
        if request.uri().path() == "/mcp" {
            return self.mcp.handle(request).await;
        }
        let mut rest = self.rest.clone();
        // Boxed, so the `/mcp` path's future stays small (hyper moves it into place).
        match Box::pin(rest.call(request)).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}
