//! The control token check: with a token, every route of a router (its fallback included) needs
//! `Authorization: Bearer TOKEN`.
//!
//! **Invariant:** with a token, no handler runs for a request without it; the answer is 401 with
//! `WWW-Authenticate: Bearer`, whatever body the tool's refusal builds. The comparison takes the same
//! time wherever the candidate first differs ([`Secret::matches`]).
//!
//! **Boundary:** the body of the refusal and its log line belong to the tool (each has its own error
//! contract, and a log line under the tool's own target stays visible with `RUST_LOG=tool=debug`);
//! this module only decides who is let through.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};

use crate::secret::Secret;

/// A refused request, for the tool's refusal to log and answer.
#[derive(Debug)]
pub struct Refused<'a> {
    /// The request's path.
    pub path: &'a str,
    /// Whether it carried a bearer credential at all (a wrong one rather than none).
    pub presented: bool,
}

/// Builds the answer to a refused request; the status is set to 401 afterwards.
pub type Refusal = fn(&Refused<'_>) -> Response;

#[derive(Clone)]
struct Guard {
    token: Arc<Secret>,
    refusal: Refusal,
}

/// `router` with every route behind `token` when there is one, unchanged without. Call it after the
/// routes, the fallback and the layers that should run behind the check are added.
pub fn require_bearer<S>(router: Router<S>, token: Option<Secret>, refusal: Refusal) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    match token {
        None => router,
        Some(token) => {
            let guard = Guard {
                token: Arc::new(token),
                refusal,
            };
            router.layer(from_fn_with_state(guard, check))
        }
    }
}

/// The credentials of an `Authorization: Bearer ...` header (scheme case-insensitive), if any.
fn bearer_credentials(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim())
}

async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let given = bearer_credentials(request.headers());
    if given.is_some_and(|g| guard.token.matches(g.as_bytes())) {
        return next.run(request).await;
    }
    let refused = Refused {
        path: request.uri().path(),
        presented: given.is_some(),
    };
    let mut answer = (guard.refusal)(&refused);
    *answer.status_mut() = StatusCode::UNAUTHORIZED;
    ([(header::WWW_AUTHENTICATE, "Bearer")], answer).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn refuse(r: &Refused<'_>) -> Response {
        format!("refused {} presented={}", r.path, r.presented).into_response()
    }

    async fn status(token: Option<&str>, auth: Option<&str>, path: &str) -> (u16, String) {
        let router: Router = Router::new().route("/a", get(|| async { "ok" }));
        let router = require_bearer(router, token.map(Secret::new), refuse);
        let mut request = axum::http::Request::builder().uri(path);
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let answer = router
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let code = answer.status().as_u16();
        let challenge = answer.headers().get(header::WWW_AUTHENTICATE).cloned();
        let body = axum::body::to_bytes(answer.into_body(), 1024)
            .await
            .unwrap();
        if code == 401 {
            assert_eq!(challenge.unwrap(), "Bearer");
        }
        (code, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn only_the_exact_bearer_token_is_let_through_and_the_fallback_is_guarded_too() {
        let t = Some("t0ken");
        assert_eq!(status(t, Some("Bearer t0ken"), "/a").await.0, 200);
        assert_eq!(status(t, Some("bearer  t0ken "), "/a").await.0, 200);
        assert_eq!(status(t, Some("Bearer t0ke"), "/a").await.0, 401);
        assert_eq!(status(t, Some("Basic t0ken"), "/a").await.0, 401);
        assert_eq!(status(t, Some("t0ken"), "/a").await.0, 401);
        let (code, body) = status(t, None, "/nothing").await;
        assert_eq!(
            (code, body.as_str()),
            (401, "refused /nothing presented=false")
        );
        let (_, body) = status(t, Some("Bearer wrong"), "/a").await;
        assert_eq!(body, "refused /a presented=true");
        // Without a token nothing is checked.
        assert_eq!(status(None, None, "/a").await.0, 200);
        assert_eq!(status(None, None, "/nothing").await.0, 404);
    }
}
