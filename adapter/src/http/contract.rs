//! One error contract for every answer: a middleware that enforces the request-head limits and
//! turns every error the framework answers by itself (405, 413, a query-string rejection, ...)
//! into the JSON [`ErrorBody`](adapter_api::ErrorBody) that handlers answer through [`AppError`].
//!
//! `serve.rs` wraps the whole router in it, not each route: so it checks a head before routing and
//! sees each answer as it leaves, with the `Allow` header axum adds to a 405 outside the route.
//!
//! It also refuses a request body that is not `application/json` (415), before routing, so a
//! browser's cross-site "simple" POST never reaches a handler.
//!
//! Invariant: every answer with a status of 400 or above that passes through this layer is
//! `application/json` with a stable `code`. Handlers' own [`AppError`] answers are recognised by
//! their content type and passed through untouched.
//!
//! Boundary: requests that hyper itself refuses never reach this layer (see `serve.rs`). hyper's
//! limits are set far above the ones enforced here, so only a head hyper cannot parse at all, or
//! one larger than its read buffer, gets hyper's bare answer.

use adapter_api::ErrorCode;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AppError, BODY_BYTES_MAX};

/// Longest request target (path and query) accepted, in bytes.
pub const TARGET_BYTES_MAX: usize = 8 * 1024;
/// Largest header section accepted, in bytes, counted as on the wire (`name: value\r\n`).
pub const HEADER_SECTION_BYTES_MAX: usize = 16 * 1024;
/// Most header fields accepted in one request.
pub const HEADER_COUNT_MAX: usize = 64;

/// The framework's error texts are short; a longer body is cut, not buffered whole.
const REJECTION_TEXT_BYTES_MAX: usize = 4 * 1024;
/// How axum's `Query` extractor starts the text of its rejection.
const QUERY_REJECTION_PREFIX: &str = "Failed to deserialize query string";
/// How axum's body extractors start the text of a failure to read the body.
const BODY_REJECTION_PREFIX: &str = "Failed to buffer the request body";

/// What the middleware remembers of the request to explain an error after the inner service ran.
struct Asked {
    method: Method,
    /// A clone shares the request's bytes; only an error answer reads it.
    uri: Uri,
    content_length: Option<u64>,
}

/// The middleware: refuses heads over the limits, then brings any non-JSON error answer into the
/// contract.
pub async fn answer_in_contract(request: Request, next: Next) -> Response {
    if let Err(refusal) = check_head(request.uri(), request.headers())
        .and_then(|()| check_media_type(request.method(), request.uri(), request.headers()))
    {
        return refusal.into_response();
    }
    let asked = Asked {
        method: request.method().clone(),
        uri: request.uri().clone(),
        content_length: request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
    };
    let response = next.run(request).await;
    if response.status().as_u16() < 400 || is_json(response.headers()) {
        return response;
    }
    into_contract(response, &asked).await
}

/// The request-head limits: target length, header count, header section size.
fn check_head(uri: &Uri, headers: &HeaderMap) -> Result<(), AppError> {
    let target_bytes = target_len(uri);
    if target_bytes > TARGET_BYTES_MAX {
        return Err(AppError::definite(
            ErrorCode::UriTooLong,
            format!(
                "the request target is {target_bytes} bytes; at most {TARGET_BYTES_MAX} are accepted"
            ),
        ));
    }
    if headers.len() > HEADER_COUNT_MAX {
        return Err(AppError::definite(
            ErrorCode::HeadersTooLarge,
            format!(
                "the request has {} header fields; at most {HEADER_COUNT_MAX} are accepted",
                headers.len()
            ),
        ));
    }
    let section_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + ": \r\n".len())
        .sum();
    if section_bytes > HEADER_SECTION_BYTES_MAX {
        return Err(AppError::definite(
            ErrorCode::HeadersTooLarge,
            format!(
                "the header section is {section_bytes} bytes; at most {HEADER_SECTION_BYTES_MAX} are accepted"
            ),
        ));
    }
    Ok(())
}

/// A body must be JSON. Checked before routing and whatever the handler reads, so a browser's
/// "simple" cross-site POST (`text/plain`, a form) is refused before it can do anything.
fn check_media_type(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), AppError> {
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if has_body && !is_json {
        return Err(unsupported_media_type(method, uri.path()));
    }
    Ok(())
}

fn unsupported_media_type(method: &Method, path: &str) -> AppError {
    AppError::definite(
        ErrorCode::UnsupportedMediaType,
        format!("the body of {method} {path} must be application/json"),
    )
}

/// Length of the request target as it was sent: path and query, plus scheme and authority in the
/// absolute form.
fn target_len(uri: &Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + "://".len());
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let path_and_query = uri.path_and_query().map_or(0, |p| p.as_str().len());
    scheme + authority + path_and_query
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Replaces a framework's error answer by the contract's, keeping its other headers (`Allow`).
async fn into_contract(response: Response, asked: &Asked) -> Response {
    let (parts, body) = response.into_parts();
    // Only the framework's own short texts arrive here; a failure to read one leaves it empty.
    let text = axum::body::to_bytes(body, REJECTION_TEXT_BYTES_MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let error = classify(parts.status, &parts.headers, text.trim(), asked);
    let mut answer = error.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    // The served route and the requester ride on the extensions to the request log.
    *answer.extensions_mut() = parts.extensions;
    answer
}

/// Chooses the code and says what happened. Everything the framework refuses is refused before a
/// handler ran, so it is definite; a 5xx of unknown origin is not, and the POS retries it with the
/// same idempotency key.
fn classify(status: StatusCode, headers: &HeaderMap, text: &str, asked: &Asked) -> AppError {
    let (method, path) = (&asked.method, asked.uri.path());
    match status {
        StatusCode::BAD_REQUEST => classify_bad_request(text, asked),
        StatusCode::UNAUTHORIZED => AppError::definite(ErrorCode::Unauthorized, text),
        StatusCode::FORBIDDEN => AppError::definite(ErrorCode::Forbidden, text),
        StatusCode::NOT_FOUND => {
            AppError::definite(ErrorCode::NotFound, format!("no endpoint {method} {path}"))
        }
        StatusCode::METHOD_NOT_ALLOWED => method_not_allowed(headers, asked),
        StatusCode::PAYLOAD_TOO_LARGE => body_too_large(asked.content_length),
        StatusCode::URI_TOO_LONG => AppError::definite(
            ErrorCode::UriTooLong,
            format!("the request target is longer than {TARGET_BYTES_MAX} bytes"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported_media_type(method, path),
        StatusCode::UNPROCESSABLE_ENTITY => AppError::definite(ErrorCode::MalformedBody, text),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => AppError::definite(
            ErrorCode::HeadersTooLarge,
            format!("the header section is larger than {HEADER_SECTION_BYTES_MAX} bytes"),
        ),
        s if s.is_server_error() => {
            tracing::error!(status = %s, %method, %path, text, "error answer outside the contract");
            AppError::indefinite(
                ErrorCode::Internal,
                "internal error; retry with the same idempotency key",
            )
        }
        s => {
            // A status no route of ours produces; a new one shows up here and deserves a code.
            tracing::warn!(status = %s, %method, %path, text, "unmapped error answer");
            AppError::definite(
                ErrorCode::InvalidField,
                format!("{method} {path} was refused: {text}"),
            )
        }
    }
}

/// A 400 from an extractor: which part of the request it could not read.
fn classify_bad_request(text: &str, asked: &Asked) -> AppError {
    let (method, path) = (&asked.method, asked.uri.path());
    let detail = text.split_once(": ").map_or(text, |(_, d)| d);
    if text.starts_with(QUERY_REJECTION_PREFIX) {
        AppError::definite(
            ErrorCode::InvalidQuery,
            format!("the query string of {method} {path} is invalid: {detail}"),
        )
    } else if text.starts_with(BODY_REJECTION_PREFIX) {
        AppError::definite(
            ErrorCode::MalformedBody,
            format!("the body of {method} {path} could not be read: {detail}"),
        )
    } else {
        AppError::definite(
            ErrorCode::InvalidField,
            format!("{method} {path} is invalid: {text}"),
        )
    }
}

fn method_not_allowed(headers: &HeaderMap, asked: &Asked) -> AppError {
    let (method, path) = (&asked.method, asked.uri.path());
    let allowed: Vec<&str> = headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let message = if allowed.is_empty() {
        format!("{method} is not allowed on {path}")
    } else {
        format!(
            "{method} is not allowed on {path}; use {}",
            allowed.join(" or ")
        )
    };
    AppError::definite(ErrorCode::MethodNotAllowed, message)
}

fn body_too_large(content_length: Option<u64>) -> AppError {
    let message = match content_length {
        Some(n) => format!("the body is {n} bytes; at most {BODY_BYTES_MAX} are accepted"),
        None => format!("the body is longer than the {BODY_BYTES_MAX} bytes accepted"),
    };
    AppError::definite(ErrorCode::BodyTooLarge, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(method: Method, path: &str, content_length: Option<u64>) -> Asked {
        Asked {
            method,
            uri: path.parse().expect("uri"),
            content_length,
        }
    }

    #[test]
    fn the_target_counts_path_and_query() {
        let uri: Uri = "/v1/kkt/receipt?idempotency_key=a".parse().expect("uri");
        assert_eq!(target_len(&uri), "/v1/kkt/receipt?idempotency_key=a".len());
        let absolute: Uri = "http://h:1/x?y".parse().expect("uri");
        assert_eq!(target_len(&absolute), "http://h:1/x?y".len());
    }

    #[test]
    fn a_body_must_be_json() {
        let check = |pairs: &[(header::HeaderName, &str)]| {
            let headers: HeaderMap = pairs
                .iter()
                .map(|(k, v)| (k.clone(), header::HeaderValue::from_str(v).expect("value")))
                .collect();
            check_media_type(
                &Method::POST,
                &"/v1/kkt/shift/close".parse().expect("uri"),
                &headers,
            )
            .map_err(|e| e.code)
        };
        let refused = Err(ErrorCode::UnsupportedMediaType);
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[(header::CONTENT_LENGTH, "0")]), Ok(()));
        assert_eq!(check(&[(header::CONTENT_LENGTH, "1")]), refused);
        assert_eq!(
            check(&[
                (header::CONTENT_LENGTH, "1"),
                (header::CONTENT_TYPE, "text/plain")
            ]),
            refused
        );
        assert_eq!(check(&[(header::TRANSFER_ENCODING, "chunked")]), refused);
        assert_eq!(
            check(&[
                (header::CONTENT_LENGTH, "2"),
                (header::CONTENT_TYPE, "Application/JSON; charset=utf-8")
            ]),
            Ok(())
        );
    }

    #[test]
    fn a_query_rejection_becomes_invalid_query() {
        let e = classify(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            "Failed to deserialize query string: missing field `idempotency_key`",
            &asked(Method::GET, "/v1/kkt/receipt", None),
        );
        assert_eq!(e.code, ErrorCode::InvalidQuery);
        assert!(e.definite);
        assert_eq!(
            e.message,
            "the query string of GET /v1/kkt/receipt is invalid: missing field `idempotency_key`"
        );
    }

    #[test]
    fn a_405_names_the_allowed_methods() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        let e = classify(
            StatusCode::METHOD_NOT_ALLOWED,
            &headers,
            "",
            &asked(Method::GET, "/v1/kkt/buffer/sync", None),
        );
        assert_eq!(e.code, ErrorCode::MethodNotAllowed);
        assert_eq!(
            e.message,
            "GET is not allowed on /v1/kkt/buffer/sync; use POST"
        );
    }

    #[test]
    fn a_413_says_how_large_the_body_was() {
        let e = classify(
            StatusCode::PAYLOAD_TOO_LARGE,
            &HeaderMap::new(),
            "",
            &asked(Method::POST, "/v1/kkt/receipt", Some(300_000)),
        );
        assert_eq!(e.code, ErrorCode::BodyTooLarge);
        assert_eq!(
            e.message,
            "the body is 300000 bytes; at most 262144 are accepted"
        );
    }

    #[test]
    fn an_unknown_5xx_is_indefinite() {
        let e = classify(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            "Missing request extension",
            &asked(Method::GET, "/v1/health", None),
        );
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.definite);
    }
}
