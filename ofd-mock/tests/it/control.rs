//! The control plane: seed-compatible `/set_mode`, clear 4xx answers for bad requests, reset and health.

use serde_json::json;

use crate::{Mock, counts};

/// Posts `body` to `path` and checks the status and that the message mentions `needle`.
async fn check_refused(mock: &Mock, path: &str, body: &str, needle: &str) {
    let (status, answer) = mock.post_raw(path, body).await;
    assert!(
        (400..500).contains(&status),
        "{path} {body} -> {status} {answer}"
    );
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{path} {body} -> {answer}");
    assert_eq!(answer["definite"], true);
}

#[tokio::test]
async fn bad_control_requests_get_a_4xx_with_a_message() {
    let mock = Mock::start().await;
    check_refused(
        &mock,
        "/_mock/mode",
        r#"{"mode":"sideways"}"#,
        "unknown variant `sideways`",
    )
    .await;
    check_refused(
        &mock,
        "/_mock/mode",
        r#"{"mode":"slow","delay_ms":5,"dealy":1}"#,
        "unknown field `dealy`",
    )
    .await;
    check_refused(&mock, "/_mock/mode", r#"{"mode":"slow"}"#, "delay_ms").await;
    // `fn` needs the document read first; an FN number is digits.
    check_refused(
        &mock,
        "/_mock/mode",
        r#"{"mode":"offline","fn":"9999078900005488"}"#,
        "applies only to modes that read the document",
    )
    .await;
    check_refused(
        &mock,
        "/_mock/mode",
        r#"{"mode":"reject","fn":"99x"}"#,
        "fn must be an FN number",
    )
    .await;
    check_refused(
        &mock,
        "/_mock/mode",
        r#"{"mode":"online","probability":2}"#,
        "probability",
    )
    .await;
    check_refused(
        &mock,
        "/_mock/mode",
        r#"{"mode":"fail_next","count":1,"kind":"online"}"#,
        "not a failure",
    )
    .await;
    check_refused(&mock, "/_mock/mode", "{not json", "").await;
    check_refused(&mock, "/set_mode", r#"{"mode":"slow"}"#, "unknown variant").await;
    check_refused(
        &mock,
        "/set_mode",
        r#"{"mode":"online","extra":1}"#,
        "unknown field",
    )
    .await;
    // A refused request leaves the mode alone.
    assert_eq!(mock.get("/_mock/mode").await.1["mode"], "online");

    let (status, answer) = mock.get("/_mock/documents?fnn=1").await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = mock.get("/_mock/timeline?until_ms=1000").await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("not_flapping"))
    );
    assert_eq!(mock.get("/_mock/nothing").await.0, 404);
}

#[tokio::test]
async fn set_mode_is_seed_compatible() {
    let mock = Mock::start().await;
    let (status, answer) = mock.post("/set_mode", json!({"mode": "offline"})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ok")));
    assert_eq!(mock.get("/_mock/mode").await.1["mode"], "offline");
    assert_eq!(
        mock.post("/set_mode", json!({"mode": "online"})).await.0,
        200
    );
    assert_eq!(mock.get("/_mock/mode").await.1["mode"], "online");
}

#[tokio::test]
async fn reset_forgets_records_counters_and_mode() {
    let mock = Mock::start().await;
    mock.send(1).await.ack();
    mock.mode(json!({"mode": "reject"})).await;
    assert_eq!(mock.post("/_mock/reset", json!({})).await.0, 200);
    let stats = mock.stats().await;
    assert_eq!(counts(&stats, &["unique", "connections"]), vec![0, 0]);
    assert_eq!(stats["mode"]["mode"], "online");
    assert_eq!(mock.documents().await["count"], 0);
    let (status, health) = mock.get("/_mock/health").await;
    assert_eq!((status, health["listening"].clone()), (200, json!(true)));
    assert_eq!(health["ofd_addr"], mock.running.ofd_addr.to_string());
}
