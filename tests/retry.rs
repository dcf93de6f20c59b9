//! Retries against the emulator's injected faults, in paused time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use common::emulated::*;
use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;
use workbook_emulator::{Fault, FaultRule, RetryAfter, Route};
use workbook_session::{
    AccessToken, Error, SessionGuard, SessionOptions, StatusCode, TokenFuture, TokenProvider,
    WorkbookClient,
};

const CELL: &str = "worksheets('Sales')/range(address='C2')";

async fn open(emulator: &workbook_emulator::Emulator) -> (WorkbookClient, SessionGuard) {
    let client = client_builder(emulator).build().expect("client builds");
    let session = client
        .create_session(&sample_workbook(), SessionOptions::persistent())
        .await
        .expect("session created");
    (client, session)
}

fn status(status: u16, retry_after: Option<RetryAfter>) -> Fault {
    Fault::Status {
        status,
        retry_after,
    }
}

async fn patch(session: &SessionGuard) -> Result<workbook_session::Response, Error> {
    session
        .patch(CELL)
        .json(&json!({ "values": [[1]] }))
        .send()
        .await
}

#[tokio::test(start_paused = true)]
async fn throttled_patch_waits_retry_after_seconds() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let (client, session) = open(&emulator).await;
    emulator.inject(FaultRule::new(
        Route::Range,
        status(429, Some(RetryAfter::Seconds(7))),
    ));

    let started = Instant::now();
    let answer = patch(&session).await;

    assert!(answer.is_ok(), "a 429 is retried for PATCH: {answer:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "waited {:?}, less than Retry-After",
        started.elapsed()
    );
    assert_eq!(client.stats().retries, 1, "one retry");
}

#[tokio::test(start_paused = true)]
async fn unavailable_patch_waits_retry_after_date() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let (_client, session) = open(&emulator).await;
    let date = SystemTime::now() + Duration::from_secs(4);
    emulator.inject(FaultRule::new(
        Route::Range,
        status(503, Some(RetryAfter::HttpDate(date))),
    ));

    let started = Instant::now();
    let answer = patch(&session).await;

    assert!(answer.is_ok(), "a 503 is retried for PATCH: {answer:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "waited {:?}; the date has second precision",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn gateway_timeout_retried_only_when_idempotent() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let (client, session) = open(&emulator).await;

    emulator.inject(FaultRule::new(Route::Range, status(504, None)));
    let read = session.get(CELL).send().await;
    emulator.inject(FaultRule::new(Route::Range, status(504, None)));
    let write = patch(&session).await;
    emulator.inject(FaultRule::new(Route::Range, status(504, None)));
    let declared = session
        .patch(CELL)
        .json(&json!({ "values": [[1]] }))
        .idempotent(true)
        .send()
        .await;

    assert!(read.is_ok(), "a GET is retried after 504: {read:?}");
    assert_eq!(
        write.as_ref().err().and_then(Error::status),
        Some(StatusCode::GATEWAY_TIMEOUT),
        "a PATCH may have taken effect, so it is not retried"
    );
    assert!(
        declared.is_ok(),
        "a PATCH declared idempotent is retried: {declared:?}"
    );
    assert_eq!(
        client.stats().retries,
        2,
        "two retries: the GET and the declared PATCH"
    );
}

#[tokio::test(start_paused = true)]
async fn dropped_connection_retried_for_get() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let (_client, session) = open(&emulator).await;
    emulator.inject(FaultRule::new(Route::Range, Fault::DropConnection));

    let answer = session.get(CELL).send().await;

    assert!(
        answer.is_ok(),
        "a GET is retried after a dropped connection: {answer:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_budget_fails_at_once() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let (_client, session) = open(&emulator).await;
    emulator.inject(FaultRule::new(
        Route::Range,
        status(429, Some(RetryAfter::Seconds(3600))),
    ));

    let started = Instant::now();
    let answer = patch(&session).await;

    match answer {
        Err(Error::Throttled { retry_after, .. }) => {
            assert_eq!(
                retry_after,
                Duration::from_secs(3600),
                "the error carries the delay"
            );
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "failed at once, not after {:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_holds_whole_session() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator).build().expect("client builds");
    let options = SessionOptions::persistent().max_concurrent_requests(4);
    let session = Arc::new(
        client
            .create_session(&sample_workbook(), options)
            .await
            .expect("session created"),
    );
    emulator.inject(FaultRule::new(
        Route::Range,
        status(429, Some(RetryAfter::Seconds(5))),
    ));

    let first = tokio::spawn({
        let session = Arc::clone(&session);
        async move { session.get(CELL).send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let requests_after_throttle = emulator.counters().requests_total;
    let others: Vec<_> = (0..3)
        .map(|_| {
            let session = Arc::clone(&session);
            tokio::spawn(async move { session.get(CELL).send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let requests_during_cooldown = emulator.counters().requests_total;
    let mut results = vec![first.await.expect("task finished")];
    for other in others {
        results.push(other.await.expect("task finished"));
    }

    assert_eq!(emulator.counters().faults_injected, 1, "one 429 was sent");
    assert_eq!(
        requests_during_cooldown, requests_after_throttle,
        "no request of the session reached the server during the cooldown"
    );
    assert!(
        results.iter().all(Result::is_ok),
        "all four succeed after it: {results:?}"
    );
}

/// A provider whose cached token is stale until it is asked to refresh.
#[derive(Default)]
struct RenewingProvider {
    renewed: AtomicBool,
    calls: Mutex<Vec<bool>>,
}

impl TokenProvider for RenewingProvider {
    fn access_token(&self, force_refresh: bool) -> TokenFuture<'_> {
        self.calls.lock().push(force_refresh);
        if force_refresh {
            self.renewed.store(true, Ordering::SeqCst);
        }
        let token = if self.renewed.load(Ordering::SeqCst) {
            EMULATOR_TOKEN
        } else {
            "expired-token"
        };
        Box::pin(async move { Ok(AccessToken::new(token)) })
    }
}

#[tokio::test]
async fn token_provider_is_asked_again_after_401() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let provider = Arc::new(RenewingProvider::default());
    let client = client_builder(&emulator)
        .token_provider(Arc::clone(&provider))
        .build()
        .expect("client builds");

    let session = client
        .create_session(&sample_workbook(), SessionOptions::persistent())
        .await;
    let session = session.expect("the renewed token is accepted");
    session
        .get(CELL)
        .send()
        .await
        .expect("later requests use the renewed token");
    session.close().await.expect("closes");

    assert_eq!(
        provider.calls.lock()[..2],
        [false, true],
        "asked once, then once more with force_refresh after the 401"
    );
    assert_eq!(client.stats().retries, 0, "a token renewal is not a retry");
}

#[tokio::test(start_paused = true)]
async fn session_and_request_policies_override_client() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator).build().expect("client builds");
    let options = SessionOptions::persistent().retry_policy(workbook_session::RetryPolicy::never());
    let session = client
        .create_session(&sample_workbook(), options)
        .await
        .expect("session created");
    let throttle = || status(429, Some(RetryAfter::Seconds(1)));

    emulator.inject(FaultRule::new(Route::Range, throttle()));
    let session_policy = session.get(CELL).send().await;
    emulator.inject(FaultRule::new(Route::Range, throttle()));
    let request_policy = session
        .get(CELL)
        .retry_policy(workbook_session::RetryPolicy::default())
        .send()
        .await;

    assert_eq!(
        session_policy.as_ref().err().and_then(Error::status),
        Some(StatusCode::TOO_MANY_REQUESTS),
        "the session's policy allows one attempt"
    );
    assert!(
        request_policy.is_ok(),
        "the request's own policy retries: {request_policy:?}"
    );
    assert_eq!(
        client.stats().retries,
        1,
        "only the request with its own policy retried"
    );
}

#[tokio::test(start_paused = true)]
async fn close_is_sent_despite_hours_of_cooldown() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let (_client, session) = open(&emulator).await;
    let id = emulator.created_session_ids()[0].clone();
    emulator.inject(FaultRule::new(
        Route::Range,
        status(429, Some(RetryAfter::Seconds(3600))),
    ));

    let throttled = patch(&session).await;
    let closed = session.close().await;

    assert!(
        matches!(throttled, Err(Error::Throttled { .. })),
        "the edit is throttled: {throttled:?}"
    );
    assert!(
        closed.is_ok(),
        "the close does not wait an hour, nor give up: {closed:?}"
    );
    assert_eq!(emulator.closes_accepted(&id), 1, "the session did not leak");
}

#[tokio::test(start_paused = true)]
async fn created_session_is_found_despite_failures() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .async_create(workbook_emulator::AsyncCreate {
            polls_before_success: 1,
            fail: false,
        })
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator)
        .respond_async(true)
        .retry_policy(workbook_session::RetryPolicy::default().max_attempts(2))
        .build()
        .expect("client builds");
    emulator.inject(FaultRule::new(Route::Operation, status(503, None)).times(3));
    emulator.inject(FaultRule::new(Route::SessionInfo, status(503, None)).times(5));

    let session = client
        .create_session(&sample_workbook(), SessionOptions::persistent())
        .await;
    let session = session.expect("polls and the lookup outlast the two-attempt retry policy");
    session.close().await.expect("closes");

    let ids = emulator.created_session_ids();
    assert_eq!(ids.len(), 1, "one session created");
    assert_eq!(
        emulator.closes_accepted(&ids[0]),
        1,
        "and it was closed, not leaked"
    );
    assert_eq!(
        emulator.counters().faults_injected,
        8,
        "every injected failure was met"
    );
}
