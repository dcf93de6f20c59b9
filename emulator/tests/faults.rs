//! Scripted and random fault injection.

mod common;

use common::{authed, client, create_session, fixture, with_session, workbook_url};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime};
use workbook_emulator::{Emulator, Fault, FaultRule, RandomFaults, RetryAfter, Route};

async fn try_create(client: &Client, workbook: &str) -> reqwest::Response {
    authed(client.post(format!("{workbook}/createSession")))
        .json(&json!({ "persistChanges": false }))
        .send()
        .await
        .expect("answered")
}

fn retry_after(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn status_429_applies_given_times() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    emulator.inject(
        FaultRule::new(
            Route::CreateSession,
            Fault::Status {
                status: 429,
                retry_after: Some(RetryAfter::Seconds(2)),
            },
        )
        .times(2),
    );

    let first = try_create(&client, &workbook).await;
    let second = try_create(&client, &workbook).await;
    let third = try_create(&client, &workbook).await;

    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS, "first");
    assert_eq!(retry_after(&first).as_deref(), Some("2"), "Retry-After");
    let body: Value = first.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "tooManyRequests", "top-level code");
    assert_eq!(
        body["error"]["innerError"]["code"], "tooManyRequestsUncategorized",
        "second-level code"
    );
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS, "second");
    assert_eq!(
        third.status(),
        StatusCode::CREATED,
        "third, after the rule is used up"
    );
    let counters = emulator.counters();
    assert_eq!(counters.faults_injected, 2, "faults counted");
    assert_eq!(
        counters.sessions_created, 1,
        "throttled requests created nothing"
    );
}

#[tokio::test]
async fn retry_after_http_date_is_sent() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    emulator.inject(FaultRule::new(
        Route::Any,
        Fault::Status {
            status: 429,
            retry_after: Some(RetryAfter::HttpDate(at)),
        },
    ));

    let response = try_create(&client, &workbook_url(&emulator)).await;

    assert_eq!(
        retry_after(&response).as_deref(),
        Some("Sun, 17 Mar 2030 17:46:40 GMT"),
        "HTTP date"
    );
}

#[tokio::test]
async fn illegal_raw_retry_after_is_left_out() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    emulator.inject(FaultRule::new(
        Route::Any,
        Fault::Status {
            status: 429,
            retry_after: Some(RetryAfter::Raw("soon\r\nx: y".into())),
        },
    ));
    emulator.inject(FaultRule::new(
        Route::Any,
        Fault::Status {
            status: 429,
            retry_after: Some(RetryAfter::Raw("-5".into())),
        },
    ));

    let illegal = try_create(&client, &workbook).await;
    let odd = try_create(&client, &workbook).await;

    assert_eq!(illegal.status(), StatusCode::TOO_MANY_REQUESTS, "status");
    assert_eq!(retry_after(&illegal), None, "illegal value left out");
    assert_eq!(
        retry_after(&odd).as_deref(),
        Some("-5"),
        "odd value sent as is"
    );
}

#[tokio::test]
async fn status_faults_carry_the_documented_codes() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let url = format!(
        "{}/worksheets('Data')/range(address='A1')",
        workbook_url(&emulator)
    );
    let cases = [
        (
            503,
            "serviceUnavailable",
            Some("serviceUnavailableUncategorized"),
        ),
        (504, "gatewayTimeout", Some("gatewayTimeoutUncategorized")),
        (502, "badGateway", None),
        (418, "generalException", None),
    ];

    for (status, code, inner) in cases {
        emulator.inject(FaultRule::new(
            Route::Range,
            Fault::Status {
                status,
                retry_after: None,
            },
        ));

        let response = authed(client.get(&url)).send().await.expect("answered");

        assert_eq!(response.status().as_u16(), status, "status");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], code, "top-level code of {status}");
        assert_eq!(
            body["error"]["innerError"]["code"].as_str(),
            inner,
            "second-level code of {status}"
        );
    }
}

#[tokio::test]
async fn rules_only_match_their_route() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    emulator.inject(FaultRule::new(
        Route::Range,
        Fault::Status {
            status: 503,
            retry_after: None,
        },
    ));

    let worksheets = authed(client.get(format!("{workbook}/worksheets")))
        .send()
        .await
        .expect("answered");
    let range = authed(client.get(format!("{workbook}/worksheets('Data')/range(address='A1')")))
        .send()
        .await
        .expect("answered");

    assert_eq!(worksheets.status(), StatusCode::OK, "other route untouched");
    assert_eq!(
        range.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "matching route"
    );
}

#[tokio::test]
async fn delay_response_applies_side_effect_first() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, false).await;
    emulator.inject(FaultRule::new(
        Route::CloseSession,
        Fault::DelayResponse(Duration::from_millis(400)),
    ));
    let started = Instant::now();

    let close = tokio::spawn({
        let client = client.clone();
        let workbook = workbook.clone();
        let session = session.clone();
        async move {
            common::close_session(&client, &workbook, &session)
                .await
                .status()
        }
    });
    let mut closed_early = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if emulator.open_sessions() == 0 {
            closed_early = !close.is_finished();
            break;
        }
    }
    let status = close.await.expect("the close task ends");

    assert!(closed_early, "the session closed before the answer arrived");
    assert_eq!(status, StatusCode::NO_CONTENT, "the late answer");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the answer was late"
    );
}

#[tokio::test]
async fn delay_request_holds_the_request_before_processing() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, false).await;
    emulator.inject(FaultRule::new(
        Route::CloseSession,
        Fault::DelayRequest(Duration::from_millis(300)),
    ));
    let started = Instant::now();

    let close = tokio::spawn({
        let client = client.clone();
        let workbook = workbook.clone();
        let session = session.clone();
        async move {
            common::close_session(&client, &workbook, &session)
                .await
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let open_during_delay = emulator.open_sessions();
    let status = close.await.expect("the close task ends");

    assert_eq!(open_during_delay, 1, "not processed during the delay");
    assert_eq!(status, StatusCode::NO_CONTENT, "answered after the delay");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "held for the delay"
    );
    assert_eq!(emulator.open_sessions(), 0, "processed after the delay");
}

#[tokio::test]
async fn drop_connection_closes_without_answer_or_side_effect() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    emulator.inject(FaultRule::new(Route::CreateSession, Fault::DropConnection));

    let dropped = authed(client.post(format!("{workbook}/createSession")))
        .json(&json!({ "persistChanges": false }))
        .send()
        .await;
    let next = try_create(&client, &workbook).await;

    assert!(dropped.is_err(), "the dropped request gets no answer");
    assert_eq!(
        next.status(),
        StatusCode::CREATED,
        "the next request is served"
    );
    assert_eq!(
        emulator.counters().sessions_created,
        1,
        "the dropped one created nothing"
    );
}

#[tokio::test]
async fn concurrent_requests_in_one_session_are_measured() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, false).await;
    emulator.inject(
        FaultRule::new(
            Route::Worksheets,
            Fault::DelayResponse(Duration::from_millis(200)),
        )
        .times(4),
    );

    let requests: Vec<_> = (0..4)
        .map(|_| with_session(client.get(format!("{workbook}/worksheets")), &session).send())
        .collect();
    for response in futures_join(requests).await {
        assert_eq!(
            response.expect("answered").status(),
            StatusCode::OK,
            "status"
        );
    }

    assert!(
        emulator.max_concurrent_requests(&session) >= 2,
        "overlapping requests were seen, peak {}",
        emulator.max_concurrent_requests(&session)
    );
    assert_eq!(
        emulator.counters().max_concurrent_requests_in_session,
        u64::from(emulator.max_concurrent_requests(&session)),
        "the global peak is this session's"
    );
}

async fn futures_join<F: std::future::Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.expect("the task ends"));
    }
    outputs
}

/// Sends 60 sequential requests and records each outcome as a status or "dropped".
async fn random_fault_outcomes(emulator: &Emulator) -> Vec<String> {
    let client = client();
    let url = format!("{}/worksheets", workbook_url(emulator));
    let mut outcomes = Vec::new();
    for _ in 0..60 {
        let outcome = match authed(client.get(&url)).send().await {
            Ok(response) => response.status().as_u16().to_string(),
            Err(_) => "dropped".to_owned(),
        };
        outcomes.push(outcome);
    }
    outcomes
}

fn random_faults(seed: u64) -> RandomFaults {
    RandomFaults {
        seed,
        rate_429: 0.2,
        retry_after_secs: 1..=3,
        rate_503: 0.1,
        rate_504: 0.1,
        rate_drop: 0.1,
        latency: Duration::ZERO..Duration::from_millis(2),
    }
}

#[tokio::test]
async fn random_faults_repeat_for_the_same_seed() {
    let fixture = fixture();
    let first = common::builder(&fixture)
        .random_faults(random_faults(7))
        .start()
        .await
        .expect("starts");
    let second = common::builder(&fixture)
        .random_faults(random_faults(7))
        .start()
        .await
        .expect("starts");

    let first_outcomes = random_fault_outcomes(&first).await;
    let second_outcomes = random_fault_outcomes(&second).await;

    assert_eq!(first_outcomes, second_outcomes, "same seed, same faults");
    for expected in ["200", "429", "503", "504", "dropped"] {
        assert!(
            first_outcomes.iter().any(|outcome| outcome == expected),
            "outcome {expected} occurs in {first_outcomes:?}"
        );
    }
}

#[tokio::test]
async fn random_faults_can_be_turned_off() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .random_faults(RandomFaults {
            rate_503: 1.0,
            ..RandomFaults::default()
        })
        .start()
        .await
        .expect("starts");
    let client = client();
    let url = format!("{}/worksheets", workbook_url(&emulator));

    let faulted = authed(client.get(&url)).send().await.expect("answered");
    emulator.set_random_faults(None);
    let served = authed(client.get(&url)).send().await.expect("answered");

    assert_eq!(
        faulted.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "with random faults"
    );
    assert_eq!(served.status(), StatusCode::OK, "without random faults");
}
