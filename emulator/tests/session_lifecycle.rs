//! createSession, refreshSession and closeSession, with their statuses and error bodies.

mod common;

use common::{authed, client, close_session, create_session, fixture, with_session, workbook_url};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn create_session_returns_201_and_id() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();

    let response = authed(client.post(format!("{}/createSession", workbook_url(&emulator))))
        .json(&json!({ "persistChanges": true }))
        .send()
        .await
        .expect("answered");

    assert_eq!(response.status(), StatusCode::CREATED, "status");
    let body: Value = response.json().await.expect("JSON");
    let id = body["id"].as_str().expect("id is a string");
    assert!(id.len() >= 40, "id {id} has fewer than 40 characters");
    assert_eq!(body["persistChanges"], true, "persistChanges echoed");
    assert!(body["@odata.context"].is_string(), "@odata.context present");
    assert_eq!(
        emulator.created_session_ids(),
        vec![id.to_owned()],
        "recorded id"
    );
}

#[tokio::test]
async fn missing_persist_changes_returns_400() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let url = format!("{}/createSession", workbook_url(&emulator));
    let bodies = ["", "{}", "{\"persistChanges\": 1}", "not json"];

    for body in bodies {
        let response = authed(client.post(&url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("answered");

        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "status for {body:?}"
        );
        let error: Value = response.json().await.expect("JSON");
        assert_eq!(error["error"]["code"], "badRequest", "code for {body:?}");
    }
    assert_eq!(emulator.open_sessions(), 0, "no session was opened");
}

#[tokio::test]
async fn refresh_and_close_return_204() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, true).await;

    let refreshed = with_session(client.post(format!("{workbook}/refreshSession")), &session)
        .json(&json!({}))
        .send()
        .await
        .expect("answered");
    let closed = close_session(&client, &workbook, &session).await;

    assert_eq!(refreshed.status(), StatusCode::NO_CONTENT, "refresh status");
    assert_eq!(closed.status(), StatusCode::NO_CONTENT, "close status");
    assert_eq!(
        emulator.refreshes_received(&session),
        1,
        "refreshes received"
    );
    assert_eq!(emulator.closes_received(&session), 1, "closes received");
    assert_eq!(emulator.closes_accepted(&session), 1, "closes accepted");
    let counters = emulator.counters();
    assert_eq!(counters.sessions_created, 1, "created");
    assert_eq!(counters.sessions_closed, 1, "closed");
    assert_eq!(counters.sessions_refreshed, 1, "refreshed");
    assert_eq!(counters.sessions_open, 0, "open");
}

#[tokio::test]
async fn prefixed_action_names_work_like_plain_ones() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, false).await;

    let refreshed = with_session(
        client.post(format!("{workbook}/microsoft.graph.refreshSession")),
        &session,
    )
    .send()
    .await
    .expect("answered");
    let closed = with_session(
        client.post(format!("{workbook}/microsoft.graph.closeSession")),
        &session,
    )
    .send()
    .await
    .expect("answered");

    assert_eq!(
        refreshed.status(),
        StatusCode::NO_CONTENT,
        "prefixed refresh"
    );
    assert_eq!(closed.status(), StatusCode::NO_CONTENT, "prefixed close");
}

#[tokio::test]
async fn second_close_returns_404() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, true).await;
    close_session(&client, &workbook, &session).await;

    let second = close_session(&client, &workbook, &session).await;

    assert_eq!(
        second.status(),
        StatusCode::NOT_FOUND,
        "second close status"
    );
    let body: Value = second.json().await.expect("JSON");
    assert_eq!(
        body["error"]["innerError"]["code"], "invalidSessionReCreatable",
        "second-level code"
    );
    assert_eq!(emulator.closes_received(&session), 2, "closes received");
    assert_eq!(emulator.closes_accepted(&session), 1, "closes accepted");
}

#[tokio::test]
async fn unknown_session_id_returns_404() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let unknown = "cluster=X&session=does-not-exist";
    let requests = [
        client.post(format!("{workbook}/refreshSession")),
        client.post(format!("{workbook}/closeSession")),
        client.get(format!("{workbook}/worksheets")),
        client.get(format!("{workbook}/worksheets('Data')/range(address='A1')")),
    ];

    for request in requests {
        let response = with_session(request, unknown)
            .send()
            .await
            .expect("answered");

        let url = response.url().to_string();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "status for {url}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(
            body["error"]["innerError"]["code"], "invalidSessionReCreatable",
            "code for {url}"
        );
    }
}

#[tokio::test]
async fn session_of_another_workbook_is_not_valid_here() {
    let fixture = fixture();
    let other = fixture.dir.path().join("Other.xlsx");
    common::write_fixture(&other);
    let emulator = common::builder(&fixture)
        .workbook("item-2", &other)
        .start()
        .await
        .expect("starts");
    let client = client();
    let session = create_session(&client, &workbook_url(&emulator), false).await;
    let other_workbook = format!("{}/me/drive/items/item-2/workbook", emulator.base_url());

    let response = with_session(client.get(format!("{other_workbook}/worksheets")), &session)
        .send()
        .await
        .expect("answered");

    assert_eq!(response.status(), StatusCode::NOT_FOUND, "status");
}

#[tokio::test]
async fn missing_session_header_returns_400() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    for action in ["refreshSession", "closeSession"] {
        let response = authed(client.post(format!("{workbook}/{action}")))
            .send()
            .await
            .expect("answered");

        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "status of {action}"
        );
        let body: Value = response.json().await.expect("JSON");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("workbook-session-id"),
            "message of {action} names the header: {message}"
        );
    }
    let counters = emulator.counters();
    assert_eq!(
        counters.requests_without_session.get(common::ITEM),
        Some(&2),
        "both requests counted without session"
    );
}

#[tokio::test]
async fn error_body_carries_request_ids() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    let response = authed(client.post(format!("{workbook}/closeSession")))
        .header("client-request-id", "my-request-7")
        .send()
        .await
        .expect("answered");

    let header_request_id = response
        .headers()
        .get("request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let header_client_id = response
        .headers()
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.expect("JSON");
    let inner = &body["error"]["innerError"];
    assert!(header_request_id.is_some(), "request-id header");
    assert_eq!(
        inner["request-id"].as_str(),
        header_request_id.as_deref(),
        "body request-id matches the header"
    );
    assert_eq!(
        header_client_id.as_deref(),
        Some("my-request-7"),
        "echoed header"
    );
    assert_eq!(inner["client-request-id"], "my-request-7", "echoed in body");
    assert!(inner["date"].is_string(), "date in body");
    assert!(body["error"]["message"].is_string(), "message in body");
}
