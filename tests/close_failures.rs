//! A closeSession that fails is retried after the server's `Retry-After`, reported when it
//! keeps failing, and treated as done when the server reports the session gone.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use workbook_session::{
    CloseOutcome, Error, RetryPolicy, SessionGuard, SessionOptions, StatusCode, WorkbookClient,
};

/// Mounts a closeSession that responds to every request with `template`.
async fn mount_close_response(server: &MockServer, template: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/closeSession")))
        .respond_with(template)
        .mount(server)
        .await;
}

/// Mounts a closeSession whose responses come from `responder`, which receives every request.
async fn mount_close_responder(server: &MockServer, responder: impl wiremock::Respond + 'static) {
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/closeSession")))
        .respond_with(responder)
        .mount(server)
        .await;
}

async fn open(client: &WorkbookClient) -> SessionGuard {
    client
        .create_session(&workbook(), SessionOptions::persistent())
        .await
        .expect("the session is created")
}

/// Builds a client that tries a close three times with short backoffs.
/// The close timeout of the test clients: a close that keeps failing gives up after it.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(600);

fn client_with_three_attempts(server: &MockServer) -> WorkbookClient {
    let policy = RetryPolicy::default()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(20))
        .max_elapsed(Duration::from_secs(5));
    builder(server)
        .retry_policy(policy)
        .close_timeout(CLOSE_TIMEOUT)
        .build()
        .expect("a valid client")
}

#[tokio::test]
async fn failed_close_waits_for_retry_after() {
    let server = MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let recorded = Arc::clone(&arrivals);
    mount_close_responder(&server, move |_: &wiremock::Request| {
        let mut arrivals = recorded.lock();
        arrivals.push(Instant::now());
        if arrivals.len() == 1 {
            ResponseTemplate::new(503).insert_header("retry-after", "1")
        } else {
            ResponseTemplate::new(204)
        }
    })
    .await;
    let client = client(&server);
    let session = open(&client).await;

    let outcome = session.close().await;

    let arrivals = arrivals.lock().clone();
    assert_eq!(
        outcome.expect("the second attempt succeeds"),
        CloseOutcome::Closed,
        "the server returned 204 the second time"
    );
    assert_eq!(arrivals.len(), 2, "one 503 and one retry");
    let gap = arrivals[1] - arrivals[0];
    assert!(
        gap >= Duration::from_millis(950),
        "the retry came {gap:?} after the 503, before its Retry-After of 1 s"
    );
    assert_eq!(
        closes(&server).await,
        [SESSION_ID, SESSION_ID],
        "both attempts carry the session id"
    );
    assert_eq!(
        client.stats().closed_explicitly,
        1,
        "the session is counted closed once"
    );
    assert_eq!(client.stats().retries, 1, "one retry is counted");
}

#[tokio::test]
async fn close_that_always_fails_is_reported() {
    let server = MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    mount_close_response(&server, ResponseTemplate::new(503)).await;
    let client = client_with_three_attempts(&server);
    let session = open(&client).await;

    let started = std::time::Instant::now();
    let outcome = session.close().await;
    let elapsed = started.elapsed();

    let error = outcome.expect_err("a close that always gets 503 fails");
    assert!(
        error.status() == Some(StatusCode::SERVICE_UNAVAILABLE) || error.is_timeout(),
        "the error carries the last status or the timeout: {error}"
    );
    assert!(
        closes(&server).await.len() > 3,
        "a close outlasts the policy's three attempts, because giving up leaks the session"
    );
    assert!(
        elapsed < CLOSE_TIMEOUT + Duration::from_millis(500),
        "the close timeout bounds it: {elapsed:?}"
    );
    assert_eq!(
        client.stats().close_failures,
        1,
        "the failure is counted once"
    );
    assert_eq!(
        client.stats().closed_explicitly,
        0,
        "a failed close is not counted as closed"
    );
    assert_eq!(
        client.stats().open,
        0,
        "the session leaves the registry even when its close failed"
    );
}

#[tokio::test]
async fn close_failing_with_500_is_not_retried() {
    let server = MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    mount_close_response(&server, ResponseTemplate::new(500)).await;
    let client = client_with_three_attempts(&server);
    let session = open(&client).await;

    let outcome = session.close().await;

    let error = outcome.expect_err("a close that gets 500 fails");
    assert_eq!(
        error.status(),
        Some(StatusCode::INTERNAL_SERVER_ERROR),
        "the error carries the status: {error}"
    );
    assert_eq!(closes(&server).await.len(), 1, "a 500 is final");
    assert_eq!(
        client.stats().close_failures,
        1,
        "the failure is counted once"
    );
}

#[tokio::test]
async fn dropped_guard_close_failure_is_counted() {
    let server = MockServer::start().await;
    mount_create_unique(&server).await;
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/closeSession")))
        .and(header("workbook-session-id", "session-0"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_close(&server).await;
    let client = client_with_three_attempts(&server);
    let failing = open(&client).await;

    drop(failing);
    let counted = eventually(|| async { client.stats().close_failures == 1 }).await;
    let next = open(&client).await;
    let next_outcome = next.close().await;

    assert!(
        counted,
        "the failed background close is counted: {:?}",
        client.stats()
    );
    assert_eq!(
        next_outcome.expect("the worker still closes sessions"),
        CloseOutcome::Closed,
        "the next close succeeds"
    );
    let sent = closes(&server).await;
    assert!(
        sent.iter().filter(|id| *id == "session-0").count() > 3,
        "the failing close was retried until the close timeout"
    );
    assert_eq!(
        sent.last().map(String::as_str),
        Some("session-1"),
        "then the next session was closed"
    );
    assert_eq!(
        client.stats().closed_on_drop,
        0,
        "the failed session is not counted as closed"
    );
    assert_eq!(client.stats().closed_explicitly, 1, "the next session is");
}

#[tokio::test]
async fn close_404_counts_as_already_gone() {
    let server = MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    let body =
        json!({ "error": { "code": "itemNotFound", "message": "The session was not found." } });
    mount_close_response(&server, ResponseTemplate::new(404).set_body_json(body)).await;
    let client = client_with_three_attempts(&server);
    let session = open(&client).await;

    let outcome = session.close().await;

    assert_eq!(
        outcome.expect("404 on close is a success"),
        CloseOutcome::AlreadyGone,
        "404 means the session is gone"
    );
    assert_eq!(closes(&server).await.len(), 1, "a 404 is not retried");
    assert_eq!(client.stats().already_gone, 1, "already_gone counts it");
    assert_eq!(
        client.stats().closed_explicitly,
        0,
        "it is not counted as closed by this client"
    );
    assert_eq!(client.stats().close_failures, 0, "it is not a failure");
}

#[tokio::test]
async fn close_recreatable_counts_as_already_gone() {
    let server = MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    let body = json!({
        "error": {
            "code": "badRequest",
            "message": "The session is invalid.",
            "innerError": { "code": "invalidSessionReCreatable" }
        }
    });
    mount_close_response(&server, ResponseTemplate::new(400).set_body_json(body)).await;
    let client = client_with_three_attempts(&server);
    let session = open(&client).await;

    let outcome = session.close().await;

    assert_eq!(
        outcome.expect("invalidSessionReCreatable on close is a success"),
        CloseOutcome::AlreadyGone,
        "the code means the session is gone"
    );
    assert_eq!(client.stats().already_gone, 1, "already_gone counts it");
    assert_eq!(client.stats().close_failures, 0, "it is not a failure");
}

#[tokio::test]
async fn hanging_close_ends_at_close_timeout() {
    let server = MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    mount_close_response(
        &server,
        ResponseTemplate::new(204).set_delay(Duration::from_secs(3)),
    )
    .await;
    let client = builder(&server)
        .close_timeout(Duration::from_millis(200))
        .build()
        .expect("a valid client");
    let session = open(&client).await;
    let started = Instant::now();

    let outcome = session.close().await;

    let elapsed = started.elapsed();
    let error = outcome.expect_err("a close with no response in time fails");
    assert!(
        elapsed < Duration::from_secs(2),
        "the close gave up after {elapsed:?}, not at its 200 ms timeout"
    );
    assert!(error.is_timeout(), "the error says it timed out: {error}");
    assert!(
        !matches!(error, Error::InvalidResponse { .. }),
        "no response arrived, so none was invalid: {error}"
    );
    assert_eq!(
        client.stats().close_failures,
        1,
        "the failure is counted once"
    );
}
