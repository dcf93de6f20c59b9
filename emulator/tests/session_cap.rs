//! The per-workbook cap on open sessions.

mod common;

use common::{authed, client, close_session, create_session, fixture, workbook_url};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn try_create(client: &reqwest::Client, workbook: &str) -> reqwest::Response {
    authed(client.post(format!("{workbook}/createSession")))
        .json(&json!({ "persistChanges": false }))
        .send()
        .await
        .expect("answered")
}

#[tokio::test]
async fn create_beyond_cap_returns_429() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .session_cap(2)
        .start()
        .await
        .expect("starts");
    let client = client();
    let workbook = workbook_url(&emulator);
    let first = create_session(&client, &workbook, false).await;
    create_session(&client, &workbook, false).await;

    let refused = try_create(&client, &workbook).await;

    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "status at the cap"
    );
    assert!(
        refused.headers().contains_key("retry-after"),
        "Retry-After until the next expiry"
    );
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        body["error"]["innerError"]["code"], "tooManyRequestsUncategorized",
        "second-level code"
    );
    assert_eq!(emulator.open_sessions(), 2, "still two sessions");

    close_session(&client, &workbook, &first).await;
    let after_close = try_create(&client, &workbook).await;

    assert_eq!(
        after_close.status(),
        StatusCode::CREATED,
        "status after a close"
    );
}

#[tokio::test]
async fn cap_status_is_configurable() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .session_cap(0)
        .session_cap_status(409)
        .start()
        .await
        .expect("starts");
    let client = client();

    let refused = try_create(&client, &workbook_url(&emulator)).await;

    assert_eq!(refused.status(), StatusCode::CONFLICT, "configured status");
}
