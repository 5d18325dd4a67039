//! Who may call which route: bearer tokens with a role, the refusal of browser requests from
//! origins not configured, and, without tokens, of requests addressed to another name; one
//! middleware around every route (`app()` adds it with `route_layer`).
//!
//! A request either is refused here (401 `unauthorized`, 403 `forbidden`) or reaches its handler
//! with a [`Requester`] in its extensions: the token's name, never its secret, is what handlers
//! journal and what the log shows. The same [`Requester`] rides on the answer's extensions, so a
//! request log outside the router can name who asked.
//!
//! Invariant: a route missing from [`needed_role`] needs the admin role, so a new route is closed
//! until someone decides otherwise.
//!
//! Boundary: with no token configured (allowed only on a loopback address, see `config.rs`) every
//! request addressed to `localhost` or a loopback address is served as [`OPEN_REQUESTER`] with the
//! admin role; the `Origin` check still applies.
//!
//! Boundary: CORS is answered only as far as the POS API needs it: an allowed origin's preflight,
//! and `Access-Control-Allow-Origin` on its answers; no credentials mode, no exposed headers.

use std::sync::Arc;

use adapter_api::ErrorCode;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppError;
use super::limits::{RateLimit, rate_limited};
use crate::config::{Config, Role};

/// The requester recorded when the adapter runs without tokens.
pub const OPEN_REQUESTER: &str = "anonymous";

/// Who is asking: the name of the token presented and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub name: String,
    pub role: Role,
}

/// A configured token as it is checked: the digest of its secret, never the secret itself.
struct Known {
    digest: [u8; 32],
    requester: Requester,
}

/// The tokens and allowed origins, prepared once at start.
pub struct Auth {
    tokens: Vec<Known>,
    origins: Vec<String>,
    /// Each token's request rate, when `--token-rate-limit` is set.
    rate: Option<RateLimit>,
}

/// The role a route needs, by its path pattern as declared in `app()`; `None` is open to all.
fn needed_role(route: &str) -> Option<Role> {
    match route {
        "/v1/health" | "/v1/ready" | "/openapi.json" => None,
        // The status page shows what the POS role may read; its retry buttons post to the
        // admin's DLQ route.
        "/"
        | "/v1/kkt/receipt"
        | "/v1/kkt/receipt/{receipt_id}"
        | "/v1/kkt/buffer/status"
        | "/v1/kkt/buffer/dlq"
        | "/v1/kkt/shift/open"
        | "/v1/kkt/shift/close"
        | "/v1/kkt/status"
        | "/v1/kkt/devices"
        | "/v1/kkt/devices/{kkt_id}/status"
        | "/v1/kkt/devices/{kkt_id}/shift/open"
        | "/v1/kkt/devices/{kkt_id}/shift/close"
        | "/api/v2/requests"
        | "/api/v2/requests/{uuid}" => Some(Role::Pos),
        "/metrics" => Some(Role::Admin),
        // Resolve, sync, DLQ retry, and any route not listed above (backup, ...).
        _ => Some(Role::Admin),
    }
}

impl Auth {
    pub fn new(config: &Config) -> Auth {
        Auth {
            tokens: config
                .auth_tokens
                .iter()
                .map(|t| Known {
                    digest: Sha256::digest(t.secret.as_bytes()).into(),
                    requester: Requester {
                        name: t.name.clone(),
                        role: t.role,
                    },
                })
                .collect(),
            origins: config.allowed_origins.clone(),
            rate: config.token_rate_limit.map(RateLimit::new),
        }
    }

    /// A browser's request from a page of another origin is refused: without this, any web page a
    /// cashier opens could close the shift with a cross-site POST.
    ///
    /// A request from the adapter's own pages (the status page's retry form) comes from the origin
    /// the request is addressed to: `Origin` names the `Host` it was sent to. Another site cannot
    /// send that pair: its pages' requests carry its own name as `Origin` (and, after pointing its
    /// name at this address, as `Host` too, where [`Self::check_host`] or the token stops them).
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), AppError> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
        if self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            return Ok(());
        }
        if same_origin(origin, headers) {
            return Ok(());
        }
        Err(AppError::definite(
            ErrorCode::Forbidden,
            format!(
                "requests from web pages of origin `{origin}` are refused; \
                 the adapter serves an origin only when it is given with --allowed-origin"
            ),
        ))
    }

    /// Without tokens, a request must be addressed to this machine by name (`Host: localhost` or a
    /// loopback address): a web page whose own name an attacker points at 127.0.0.1 (DNS
    /// rebinding) sends its own name as `Host`, and same-origin reads carry no `Origin` header.
    /// With tokens such a page has nothing to present, so any `Host` is served.
    fn check_host(&self, headers: &HeaderMap) -> Result<(), AppError> {
        if !self.tokens.is_empty() {
            return Ok(());
        }
        let Some(host) = headers.get(header::HOST) else {
            return Ok(());
        };
        let host = host.to_str().unwrap_or("");
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
        };
        let local = name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if local {
            return Ok(());
        }
        Err(AppError::definite(
            ErrorCode::Forbidden,
            format!(
                "without API tokens the adapter serves only requests addressed to localhost or a \
                 loopback address, not `{host}`; configure --auth-token to serve other names"
            ),
        ))
    }

    /// The requester whose token the request carries. Every configured token is compared, each
    /// as a digest of equal length, in constant time, so the answer's timing says nothing about
    /// how much of a secret was right.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Requester, AppError> {
        if self.tokens.is_empty() {
            return Ok(Requester {
                name: OPEN_REQUESTER.to_owned(),
                role: Role::Admin,
            });
        }
        let (name, secret) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(credentials)
            .ok_or_else(|| {
                AppError::definite(
                    ErrorCode::Unauthorized,
                    "send an API token as `Authorization: Bearer SECRET` (or HTTP Basic with the                      token's name as user and its secret as password)",
                )
            })?;
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut found = None;
        for known in &self.tokens {
            let diff = known
                .digest
                .iter()
                .zip(presented.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            // Basic names the token too: a secret presented under another token's name is refused.
            let named = name.as_deref().is_none_or(|n| n == known.requester.name);
            if diff == 0 && named {
                found = Some(&known.requester);
            }
        }
        found.cloned().ok_or_else(|| {
            AppError::definite(ErrorCode::Unauthorized, "the API token is not valid")
        })
    }
}

/// `Origin` is `http://HOST` (or `https://HOST` behind a proxy) for the `Host` the request names.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    ["http://", "https://"].iter().any(|scheme| {
        origin
            .strip_prefix(scheme)
            .is_some_and(|rest| !host.is_empty() && rest.eq_ignore_ascii_case(host))
    })
}

/// The challenge of a 401: the status page asks a browser for the token as HTTP Basic (the
/// token's name and secret), so a person signs in from the browser's own prompt; the API asks
/// for a bearer token.
fn challenge(route: &str) -> HeaderValue {
    match route {
        "/" => HeaderValue::from_static("Basic realm=\"fiscal adapter\", charset=\"UTF-8\""),
        _ => HeaderValue::from_static("Bearer"),
    }
}

/// The credentials of an `Authorization` header: `Bearer SECRET`, or `Basic base64(NAME:SECRET)`
/// as ATOL clients send it (the token's name as user, its secret as password).
fn credentials(value: &str) -> Option<(Option<String>, String)> {
    use base64::Engine as _;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((None, rest.trim().to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, secret) = text.split_once(':')?;
    Some((Some(name.to_owned()), secret.to_owned()))
}

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE_S: &str = "600";

/// The middleware (`from_fn_with_state`): origin and host, then the token and its role; then the
/// handler, with the requester in the extensions. An allowed origin's browser gets its preflight
/// answered and may read every answer (CORS).
pub async fn check(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    // Debug, not info, for these and for a missing token: anyone who reaches the port can send
    // them, as often as they like, and the answer itself says what is wrong.
    if let Err(refusal) = auth.check_origin(request.headers()) {
        tracing::debug!(path = %request.uri().path(), "refused a browser request from another origin");
        return refusal.into_response();
    }
    if let Err(refusal) = auth.check_host(request.headers()) {
        tracing::debug!(path = %request.uri().path(), "refused a request addressed to another name");
        return refusal.into_response();
    }
    // An `Origin` that passed is an allowed one.
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut answer = if origin.is_some() && preflight {
        preflight_answer()
    } else {
        authorize(&auth, request, next).await
    };
    if let Some(origin) = origin {
        let headers = answer.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    answer
}

/// What a browser asks before a cross-origin JSON POST or a request with `Authorization`: the
/// methods and headers the POS API uses. The request that follows is checked like any other.
fn preflight_answer() -> Response {
    let mut answer = StatusCode::NO_CONTENT.into_response();
    let headers = answer.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, idempotency-key"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_S),
    );
    answer
}

/// The token and its role against the route; the handler runs only when both allow it.
async fn authorize(auth: &Auth, mut request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    let Some(needed) = needed_role(&route) else {
        return next.run(request).await;
    };
    let requester = match auth.authenticate(request.headers()) {
        Ok(r) => r,
        Err(refusal) => {
            tracing::debug!(%route, "refused a request without a valid API token");
            let mut answer = refusal.into_response();
            answer
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge(&route));
            return answer;
        }
    };
    if !requester.role.may(needed) {
        tracing::info!(requester = %requester.name, %route, "refused: the token's role may not use this route");
        return AppError::definite(
            ErrorCode::Forbidden,
            format!(
                "token `{}` has the {} role; {route} needs the {} role",
                requester.name,
                requester.role.as_str(),
                needed.as_str()
            ),
        )
        .into_response();
    }
    if let Some(rate) = &auth.rate
        && let Err(retry_after_s) = rate.take(&requester.name, std::time::Instant::now())
    {
        tracing::info!(requester = %requester.name, %route, "refused: over the token's rate limit");
        let mut answer = rate_limited(&requester.name, rate.per_second(), retry_after_s);
        answer.extensions_mut().insert(requester);
        return answer;
    }
    tracing::debug!(requester = %requester.name, %route, "authenticated");
    request.extensions_mut().insert(requester.clone());
    let mut answer = next.run(request).await;
    answer.extensions_mut().insert(requester);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthToken;

    fn auth(tokens: &[&str]) -> Auth {
        let mut config = crate::config::Config::from_settings(Default::default()).unwrap();
        config.auth_tokens = tokens
            .iter()
            .map(|t| AuthToken::parse(t).unwrap())
            .collect();
        config.allowed_origins = vec!["http://till.local:8080".to_owned()];
        Auth::new(&config)
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn basic_credentials_name_the_token_and_carry_its_secret() {
        use base64::Engine as _;
        let a = auth(&[
            "till1:pos:pos-secret-0123456789",
            "ops:admin:admin-secret-0123456789",
        ]);
        let basic = |user_pass: &str| {
            let v = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(user_pass)
            );
            a.authenticate(&headers(&[(header::AUTHORIZATION, v.as_str())]))
        };
        let r = basic("till1:pos-secret-0123456789").unwrap();
        assert_eq!((r.name.as_str(), r.role), ("till1", Role::Pos));
        for wrong in [
            "ops:pos-secret-0123456789",
            "till1:admin-secret-0123456789",
            "till1:pos-secret-012345678",
            "till1",
        ] {
            assert_eq!(
                basic(wrong).unwrap_err().code,
                ErrorCode::Unauthorized,
                "{wrong}"
            );
        }
    }

    #[test]
    fn the_bearer_secret_names_its_token() {
        let a = auth(&[
            "till1:pos:pos-secret-0123456789",
            "ops:admin:admin-secret-0123456789",
        ]);
        let asked = |v: &str| a.authenticate(&headers(&[(header::AUTHORIZATION, v)]));
        assert_eq!(asked("Bearer admin-secret-0123456789").unwrap().name, "ops");
        assert_eq!(
            asked("bearer  pos-secret-0123456789").unwrap().name,
            "till1"
        );
        for wrong in [
            "Bearer pos-secret-012345678",
            "Basic pos-secret-0123456789",
            "Bearer",
        ] {
            assert_eq!(
                asked(wrong).unwrap_err().code,
                ErrorCode::Unauthorized,
                "{wrong}"
            );
        }
        assert_eq!(
            a.authenticate(&HeaderMap::new()).unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn without_tokens_everyone_is_the_open_requester() {
        let r = auth(&[]).authenticate(&HeaderMap::new()).unwrap();
        assert_eq!((r.name.as_str(), r.role), (OPEN_REQUESTER, Role::Admin));
    }

    #[test]
    fn only_configured_origins_pass() {
        let a = auth(&[]);
        assert!(a.check_origin(&HeaderMap::new()).is_ok());
        assert!(
            a.check_origin(&headers(&[(header::ORIGIN, "http://till.local:8080")]))
                .is_ok()
        );
        let e = a
            .check_origin(&headers(&[(header::ORIGIN, "http://evil.example")]))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
    }

    #[rstest::rstest]
    #[case::own_page("http://127.0.0.1:8080", "127.0.0.1:8080", true)]
    #[case::own_page_by_name("http://shop-server:8080", "SHOP-SERVER:8080", true)]
    #[case::behind_a_tls_proxy("https://shop-server", "shop-server", true)]
    #[case::other_port("http://127.0.0.1:9999", "127.0.0.1:8080", false)]
    #[case::other_site("http://evil.example", "127.0.0.1:8080", false)]
    #[case::prefix_only("http://127.0.0.1:8080.evil.example", "127.0.0.1:8080", false)]
    #[case::other_scheme("ftp://127.0.0.1:8080", "127.0.0.1:8080", false)]
    #[case::empty_host("http://", "", false)]
    fn the_page_s_own_origin_passes(#[case] origin: &str, #[case] host: &str, #[case] ok: bool) {
        let a = auth(&[]);
        let h = headers(&[(header::ORIGIN, origin), (header::HOST, host)]);
        assert_eq!(a.check_origin(&h).is_ok(), ok, "{origin} to {host}");
    }

    #[test]
    fn the_status_page_asks_for_basic_and_the_api_for_a_bearer() {
        assert!(challenge("/").to_str().unwrap().starts_with("Basic realm="));
        assert_eq!(challenge("/v1/kkt/receipt"), "Bearer");
        assert_eq!(needed_role("/"), Some(Role::Pos));
    }

    #[test]
    fn without_tokens_only_local_names_are_served() {
        let host = |a: &Auth, h: &str| a.check_host(&headers(&[(header::HOST, h)])).is_ok();
        let open = auth(&[]);
        for local in [
            "127.0.0.1:8000",
            "localhost:8000",
            "LOCALHOST",
            "[::1]:8000",
            "127.1.2.3",
        ] {
            assert!(host(&open, local), "{local}");
        }
        for remote in ["evil.example:8000", "192.168.1.5:8000", "[fe80::1]:8000"] {
            assert!(!host(&open, remote), "{remote}");
        }
        let closed = auth(&["ops:admin:admin-secret-0123456789"]);
        assert!(host(&closed, "evil.example:8000"));
    }

    #[test]
    fn unlisted_routes_need_the_admin_role() {
        assert_eq!(needed_role("/v1/health"), None);
        assert_eq!(needed_role("/v1/kkt/receipt"), Some(Role::Pos));
        assert_eq!(needed_role("/v1/kkt/buffer/sync"), Some(Role::Admin));
        assert_eq!(needed_role("/metrics"), Some(Role::Admin));
    }
}
