//! Long-running createSession: 202, operation polling and sessionInfoResource.

mod common;

use common::{authed, client, fixture, with_session, workbook_url};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use workbook_emulator::AsyncCreate;

async fn create_async(client: &Client, workbook: &str) -> reqwest::Response {
    authed(client.post(format!("{workbook}/createSession")))
        .header("prefer", "respond-async")
        .json(&json!({ "persistChanges": true }))
        .send()
        .await
        .expect("answered")
}

async fn poll(client: &Client, location: &str) -> Value {
    let response = authed(client.get(location)).send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK, "poll status");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn operation_goes_through_not_started_running_and_succeeded() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .async_create(AsyncCreate {
            polls_before_success: 3,
            fail: false,
        })
        .start()
        .await
        .expect("starts");
    let client = client();
    let workbook = workbook_url(&emulator);

    let accepted = create_async(&client, &workbook).await;

    assert_eq!(accepted.status(), StatusCode::ACCEPTED, "status");
    let location = accepted
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .expect("a Location header")
        .to_owned();
    assert!(
        location.starts_with(&format!("{workbook}/operations/")),
        "absolute Location {location}"
    );
    assert_eq!(accepted.text().await.expect("body"), "", "empty body");
    assert_eq!(
        emulator.counters().sessions_created,
        0,
        "no session at the 202"
    );

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(poll(&client, &location).await["status"].clone());
        assert_eq!(emulator.open_sessions(), 0, "no session before success");
    }
    let done = poll(&client, &location).await;

    assert_eq!(statuses, ["notStarted", "running", "running"], "statuses");
    assert_eq!(done["status"], "succeeded", "final status");
    assert_eq!(emulator.open_sessions(), 1, "session created at success");
    let resource = done["resourceLocation"].as_str().expect("resourceLocation");
    assert!(
        resource.starts_with(&format!("{workbook}/sessionInfoResource(key='")),
        "absolute resourceLocation {resource}"
    );

    let info = poll(&client, resource).await;
    let session = info["id"].as_str().expect("session id");
    assert_eq!(info["persistChanges"], true, "persistChanges");
    assert_eq!(
        emulator.created_session_ids(),
        vec![session.to_owned()],
        "the created id"
    );
    assert_ne!(
        location.rsplit('/').next(),
        Some(session),
        "the operation id is not the session id"
    );
    let usable = with_session(client.get(format!("{workbook}/worksheets")), session)
        .send()
        .await
        .expect("answered");
    assert_eq!(usable.status(), StatusCode::OK, "the session works");

    let again = poll(&client, &location).await;
    assert_eq!(again["status"], "succeeded", "later polls stay succeeded");
    assert_eq!(emulator.counters().sessions_created, 1, "one session only");
}

#[tokio::test]
async fn failing_operation_creates_no_session() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .async_create(AsyncCreate {
            polls_before_success: 1,
            fail: true,
        })
        .start()
        .await
        .expect("starts");
    let client = client();
    let accepted = create_async(&client, &workbook_url(&emulator)).await;
    let location = accepted.headers()["location"]
        .to_str()
        .expect("ASCII")
        .to_owned();

    let first = poll(&client, &location).await;
    let second = poll(&client, &location).await;

    assert_eq!(first["status"], "notStarted", "first poll");
    assert_eq!(second["status"], "failed", "second poll");
    assert!(second["error"]["code"].is_string(), "error code");
    assert!(second["error"]["message"].is_string(), "error message");
    assert!(
        second["error"]["innerError"]["code"].is_string(),
        "error second-level code"
    );
    assert!(
        second.get("resourceLocation").is_none(),
        "no resourceLocation"
    );
    assert_eq!(emulator.counters().sessions_created, 0, "no session");
}

#[tokio::test]
async fn unknown_operation_returns_404() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .async_create(AsyncCreate::default())
        .start()
        .await
        .expect("starts");
    let client = client();

    let response = authed(client.get(format!("{}/operations/nope", workbook_url(&emulator))))
        .send()
        .await
        .expect("answered");

    assert_eq!(response.status(), StatusCode::NOT_FOUND, "status");
}

#[tokio::test]
async fn create_without_prefer_returns_201() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .async_create(AsyncCreate::default())
        .start()
        .await
        .expect("starts");
    let client = client();

    let session = common::create_session(&client, &workbook_url(&emulator), false).await;

    assert!(!session.is_empty(), "a session id");
}

#[tokio::test]
async fn async_off_ignores_prefer_header() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();

    let response = create_async(&client, &workbook_url(&emulator)).await;

    assert_eq!(response.status(), StatusCode::CREATED, "status");
}
