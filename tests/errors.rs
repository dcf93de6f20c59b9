//! Error responses inside a session become [`Error::Graph`] with every detail Graph sent, and
//! the retry policy repeats only what is safe to repeat, honouring `Retry-After`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use parking_lot::Mutex;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use workbook_session::{
    Error, RetryPolicy, SessionGuard, SessionOptions, StatusCode, WorkbookClient,
};

const SHEET: &str = "worksheets('Sheet1')/range(address='A1')";

/// Starts a server with createSession and closeSession, and opens a session on it.
async fn open_session(server: &MockServer, client: &WorkbookClient) -> SessionGuard {
    mount_create(server, SESSION_ID).await;
    mount_close(server).await;
    client
        .create_session(&workbook(), SessionOptions::persistent())
        .await
        .expect("the session is created")
}

/// Mounts responses for any method on [`SHEET`]: `first` for the first `times` requests, then
/// 200 with `{"ok": true}`.
async fn mount_sheet(server: &MockServer, first: ResponseTemplate, times: u64) {
    let sheet_path = format!("{ROOT}/worksheets('Sheet1')/range(address='A1')");
    Mock::given(path(sheet_path.as_str()))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(path(sheet_path.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
        .mount(server)
        .await;
}

async fn sheet_requests(server: &MockServer) -> Vec<wiremock::Request> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .into_iter()
        .filter(|request| request.url.path().contains("/worksheets"))
        .collect()
}

#[tokio::test]
async fn graph_error_body_is_parsed() {
    let server = MockServer::start().await;
    let client = client(&server);
    let session = open_session(&server, &client).await;
    let body = json!({
        "error": {
            "code": "accessConflict",
            "message": "Another client is editing the workbook.",
            "innerError": {
                "code": "invalidSessionAccessConflict",
                "request-id": "r1",
                "date": "2026-01-05T10:00:00"
            }
        }
    });
    mount_sheet(
        &server,
        ResponseTemplate::new(409)
            .set_body_json(body)
            .insert_header("retry-after", "7"),
        1,
    )
    .await;

    let sent = session
        .patch(SHEET)
        .json(&json!({ "values": [[1]] }))
        .send()
        .await;

    let error = sent.expect_err("a 409 is an error");
    let graph = error.graph().expect("a 409 response is a Graph error");
    assert!(
        matches!(error, Error::Graph(_)),
        "the variant is Graph: {error:?}"
    );
    assert_eq!(
        error.status(),
        Some(StatusCode::CONFLICT),
        "the status is kept"
    );
    assert_eq!(
        graph.codes(),
        ["accessConflict", "invalidSessionAccessConflict"],
        "the code chain runs from the top level inwards"
    );
    assert_eq!(
        graph.code(),
        Some("invalidSessionAccessConflict"),
        "the second-level code is the one to act on"
    );
    assert_eq!(
        graph.body.as_ref().map(|body| body.message.as_str()),
        Some("Another client is editing the workbook."),
        "the message is kept"
    );
    assert_eq!(
        graph.request_id.as_deref(),
        Some("r1"),
        "the request id comes from the inner error"
    );
    assert_eq!(
        graph.retry_after,
        Some(Duration::from_secs(7)),
        "Retry-After in seconds is parsed"
    );
    assert!(
        graph.is_session_terminal(),
        "invalidSessionAccessConflict is a terminal session code"
    );
    assert!(!error.is_retryable(), "a 409 is not retryable");
    assert!(
        !error.is_session_expired(),
        "a conflict does not mean the session expired"
    );
    assert_eq!(
        sheet_requests(&server).await.len(),
        1,
        "a 409 is not retried"
    );
    assert!(
        error.to_string().contains("409"),
        "the message names the status: {error}"
    );
    assert!(
        error.to_string().contains("r1"),
        "the message names the request id: {error}"
    );
}

#[tokio::test]
async fn request_id_header_is_used_without_body() {
    let server = MockServer::start().await;
    let client = client(&server);
    let session = open_session(&server, &client).await;
    mount_sheet(
        &server,
        ResponseTemplate::new(400).insert_header("request-id", "header-r2"),
        1,
    )
    .await;

    let sent = session.get(SHEET).send().await;

    let error = sent.expect_err("a 400 is an error");
    let graph = error.graph().expect("a Graph error");
    assert_eq!(
        graph.request_id.as_deref(),
        Some("header-r2"),
        "the request-id header is kept when the body has none"
    );
    assert!(graph.codes().is_empty(), "an empty body has no codes");
}

#[tokio::test]
async fn throttled_post_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    let client = client(&server);
    let session = open_session(&server, &client).await;
    mount_sheet(&server, ResponseTemplate::new(429), 1).await;

    let sent = session.post(SHEET).json(&json!({})).send().await;

    let response = sent.expect("the retry succeeds");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the second response is returned"
    );
    assert_eq!(
        sheet_requests(&server).await.len(),
        2,
        "one 429 and one retry"
    );
    assert_eq!(client.stats().retries, 1, "the retry is counted");
}

#[tokio::test]
async fn throttle_beyond_budget_fails_fast() {
    let server = MockServer::start().await;
    let client = client(&server);
    let session = open_session(&server, &client).await;
    mount_sheet(
        &server,
        ResponseTemplate::new(429).insert_header("retry-after", "30"),
        1,
    )
    .await;
    let started = Instant::now();

    let sent = session.post(SHEET).json(&json!({})).send().await;

    let elapsed = started.elapsed();
    let error = sent.expect_err("a wait of 30 s is beyond the 5 s retry budget");
    let waited_for = match &error {
        Error::Throttled { retry_after, .. } => Some(*retry_after),
        _ => None,
    };
    assert_eq!(
        waited_for,
        Some(Duration::from_secs(30)),
        "the error is Throttled and carries the requested wait: {error:?}"
    );
    assert_eq!(
        error.status(),
        Some(StatusCode::TOO_MANY_REQUESTS),
        "the status is kept"
    );
    assert!(
        error.is_retryable(),
        "a throttled request may succeed later"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "the request failed at once, not after {elapsed:?}"
    );
    assert_eq!(
        sheet_requests(&server).await.len(),
        1,
        "nothing was sent after the 429"
    );
}

#[tokio::test]
async fn gateway_timeout_not_retried_for_post() {
    let server = MockServer::start().await;
    let client = client(&server);
    let session = open_session(&server, &client).await;
    mount_sheet(&server, ResponseTemplate::new(504), 1).await;

    let sent = session.post(SHEET).json(&json!({})).send().await;

    let error = sent.expect_err("a 504 on POST may have taken effect, so it is returned");
    assert_eq!(
        error.status(),
        Some(StatusCode::GATEWAY_TIMEOUT),
        "the status is kept"
    );
    assert!(error.is_retryable(), "the caller may decide to repeat it");
    assert_eq!(
        sheet_requests(&server).await.len(),
        1,
        "a POST is sent once"
    );
}

#[tokio::test]
async fn gateway_timeout_retried_for_get() {
    let server = MockServer::start().await;
    let client = client(&server);
    let session = open_session(&server, &client).await;
    mount_sheet(&server, ResponseTemplate::new(504), 1).await;

    let sent = session.get(SHEET).send().await;

    assert!(sent.is_ok(), "the GET is retried after the 504: {sent:?}");
    assert_eq!(
        sheet_requests(&server).await.len(),
        2,
        "one 504 and one retry"
    );
}

#[tokio::test]
async fn gateway_timeout_retried_when_declared_idempotent() {
    let server = MockServer::start().await;
    let client = client(&server);
    let session = open_session(&server, &client).await;
    mount_sheet(&server, ResponseTemplate::new(504), 1).await;

    let sent = session
        .post(SHEET)
        .idempotent(true)
        .json(&json!({}))
        .send()
        .await;

    assert!(
        sent.is_ok(),
        "a POST declared idempotent is retried: {sent:?}"
    );
    assert_eq!(
        sheet_requests(&server).await.len(),
        2,
        "one 504 and one retry"
    );
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let server = MockServer::start().await;
    let client = builder(&server)
        .retry_policy(
            RetryPolicy::default()
                .initial_backoff(Duration::from_millis(10))
                .max_elapsed(Duration::from_secs(10)),
        )
        .build()
        .expect("a valid client");
    let session = open_session(&server, &client).await;
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let recorded = Arc::clone(&arrivals);
    let sheet_path = format!("{ROOT}/worksheets('Sheet1')/range(address='A1')");
    Mock::given(method("GET"))
        .and(path(sheet_path.as_str()))
        .respond_with(move |_: &wiremock::Request| {
            let mut arrivals = recorded.lock();
            arrivals.push(Instant::now());
            if arrivals.len() == 1 {
                let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
                ResponseTemplate::new(503).insert_header("retry-after", at.as_str())
            } else {
                ResponseTemplate::new(200).set_body_json(json!({ "ok": true }))
            }
        })
        .mount(&server)
        .await;

    let sent = session.get(SHEET).send().await;

    let arrivals = arrivals.lock().clone();
    assert!(sent.is_ok(), "the retry succeeds: {sent:?}");
    assert_eq!(arrivals.len(), 2, "one 503 and one retry");
    // The date has whole seconds, so "now + 2 s" is between 1 and 2 seconds away.
    let gap = arrivals[1] - arrivals[0];
    assert!(
        gap >= Duration::from_millis(950),
        "the retry came {gap:?} after the 503, before its Retry-After date"
    );
}

#[tokio::test]
async fn retry_after_holds_back_next_request() {
    let server = MockServer::start().await;
    let client = builder(&server)
        .retry_policy(RetryPolicy::never())
        .build()
        .expect("a valid client");
    let session = open_session(&server, &client).await;
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let recorded = Arc::clone(&arrivals);
    let sheet_path = format!("{ROOT}/worksheets('Sheet1')/range(address='A1')");
    Mock::given(path(sheet_path.as_str()))
        .respond_with(move |_: &wiremock::Request| {
            let mut arrivals = recorded.lock();
            arrivals.push(Instant::now());
            if arrivals.len() == 1 {
                ResponseTemplate::new(429).insert_header("retry-after", "1")
            } else {
                ResponseTemplate::new(200).set_body_json(json!({ "ok": true }))
            }
        })
        .mount(&server)
        .await;

    let throttled = session
        .patch(SHEET)
        .json(&json!({ "values": [[1]] }))
        .send()
        .await;
    let next = session.get(SHEET).send().await;

    let arrivals = arrivals.lock().clone();
    assert_eq!(
        throttled.expect_err("no retries are allowed").status(),
        Some(StatusCode::TOO_MANY_REQUESTS),
        "the 429 is returned"
    );
    assert!(next.is_ok(), "the next request succeeds: {next:?}");
    assert_eq!(arrivals.len(), 2, "the 429 and the next request");
    let gap = arrivals[1] - arrivals[0];
    assert!(
        gap >= Duration::from_millis(950),
        "the next request came {gap:?} after the 429, inside its Retry-After of 1 s"
    );
}
