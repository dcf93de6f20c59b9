//! Neither the bearer token nor a full session id ever shows in `Debug`, `Display`, errors or
//! `tracing` output.

mod common;

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use parking_lot::Mutex;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};
use workbook_session::header::{AUTHORIZATION, HeaderValue};
use workbook_session::{
    AccessToken, BoxError, Error, RetryPolicy, SessionOptions, TokenFuture, TokenProvider,
    WorkbookClient,
};

/// A part of every session id the server hands out in this file, long enough that it cannot
/// appear by chance.
const ID_CORE: &str = "SN3PEPF00000123";

/// Taken by every test here, so that no other test logs while the trace test's thread-local
/// subscriber is set. With both tests running at once, that subscriber missed some events of
/// its own thread (seen with tracing-core 0.1.36, which caches per callsite whether any
/// subscriber is interested).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Returns the formatted error and its chain of sources.
fn describe(error: &Error) -> String {
    let mut text = format!("{error:?} | {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} | {cause:?}"));
        source = cause.source();
    }
    text
}

fn assert_no_secret(text: &str, subject: &str) {
    assert!(
        !text.contains(TOKEN),
        "{subject} shows the bearer token: {text}"
    );
    assert!(
        !text.contains(SESSION_ID),
        "{subject} shows a full session id: {text}"
    );
    assert!(
        !text.contains(ID_CORE),
        "{subject} shows part of a session id: {text}"
    );
}

/// Mounts a createSession that responds to each call with a new id that starts with [`SESSION_ID`]
/// and the `persistChanges` of the request.
async fn mount_create_long_ids(server: &MockServer) {
    let counter = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/createSession")))
        .respond_with(move |request: &wiremock::Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let requested: serde_json::Value = request.body_json().unwrap_or_default();
            let id = format!("{SESSION_ID}.{n}");
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": id, "persistChanges": requested["persistChanges"] }))
        })
        .mount(server)
        .await;
}

/// Mounts responses on `suffix` below the workbook root: `first` for the first `times`
/// requests, then 200 with `{"ok": true}`.
async fn mount_sheet(server: &MockServer, suffix: &str, first: ResponseTemplate, times: u64) {
    let full_path = format!("{ROOT}/{suffix}");
    Mock::given(path(full_path.as_str()))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(path(full_path.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
        .mount(server)
        .await;
}

/// A token provider that always fails.
struct FailingProvider;

impl TokenProvider for FailingProvider {
    fn access_token(&self, _force_refresh: bool) -> TokenFuture<'_> {
        Box::pin(async {
            Err::<AccessToken, BoxError>("the identity service is unreachable".into())
        })
    }
}

/// Collects errors from every path that fails, against `server` and `foreign`.
async fn produce_errors(server: &MockServer, foreign: &MockServer) -> Vec<Error> {
    let mut errors = Vec::new();
    let client = builder(server).build().expect("a valid client");
    let session = client
        .create_session(&workbook(), SessionOptions::persistent())
        .await
        .expect("the session is created");
    let conflict = json!({
        "error": { "code": "accessConflict", "message": "busy", "innerError": { "request-id": "r1" } }
    });
    mount_sheet(
        server,
        "worksheets('Conflict')",
        ResponseTemplate::new(409).set_body_json(conflict),
        1,
    )
    .await;
    mount_sheet(
        server,
        "worksheets('Throttled')",
        ResponseTemplate::new(429).insert_header("retry-after", "60"),
        1,
    )
    .await;

    errors.extend(session.get("worksheets('Conflict')").send().await.err());
    errors.extend(
        session
            .get("worksheets")
            .header(AUTHORIZATION, HeaderValue::from_static("Bearer other"))
            .send()
            .await
            .err(),
    );
    errors.extend(session.get("../../../../other").send().await.err());
    errors.extend(
        session
            .get("worksheets")
            .send_json::<Vec<u32>>()
            .await
            .err(),
    );
    // Last, because its Retry-After holds back every later request of the session.
    errors.extend(session.get("worksheets('Throttled')").send().await.err());
    client.shutdown(Duration::from_secs(5)).await;
    errors.extend(session.get("worksheets").send().await.err());
    errors.extend(session.session_header().err());
    errors.extend(
        client
            .create_session(&workbook(), SessionOptions::persistent())
            .await
            .err(),
    );

    let redirecting = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("location", format!("{}/elsewhere", foreign.uri()).as_str()),
        )
        .mount(&redirecting)
        .await;
    let client = builder(&redirecting)
        .respond_async(true)
        .build()
        .expect("a valid client");
    errors.extend(
        client
            .create_session(&workbook(), SessionOptions::persistent())
            .await
            .err(),
    );

    let closed_port = TcpListener::bind("127.0.0.1:0")
        .expect("a loopback port")
        .local_addr()
        .expect("an address")
        .port();
    let client = WorkbookClient::builder()
        .base_url(format!("http://127.0.0.1:{closed_port}/v1.0"))
        .bearer_token(TOKEN)
        .retry_policy(RetryPolicy::never())
        .build()
        .expect("a valid client");
    errors.extend(
        client
            .create_session(&workbook(), SessionOptions::persistent())
            .await
            .err(),
    );

    let client = builder(server)
        .token_provider(FailingProvider)
        .build()
        .expect("a valid client");
    errors.extend(
        client
            .create_session(&workbook(), SessionOptions::persistent())
            .await
            .err(),
    );
    errors.extend(
        WorkbookClient::builder()
            .bearer_token(format!("{TOKEN}\nX-Injected: 1"))
            .build()
            .err(),
    );
    errors
}

#[tokio::test]
async fn formatted_values_hide_token_and_id() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = MockServer::start().await;
    let foreign = MockServer::start().await;
    mount_create_long_ids(&server).await;
    mount_close(&server).await;
    mount_any_ok(&server).await;
    let builder = builder(&server);
    let builder_text = format!("{builder:?}");
    let client = builder.build().expect("a valid client");
    let session = client
        .create_session(&workbook(), SessionOptions::persistent())
        .await
        .expect("the session is created");
    let request = session.get("worksheets").query(&[("$top", "1")]);

    let request_text = format!("{request:?}");
    let response = request.send().await.expect("the request succeeds");
    let response_text = format!("{response:?}");
    let session_text = format!("{session:?} {}", session.fingerprint());
    let client_text = format!("{client:?}");
    let (_, header_value) = session.session_header().expect("the session is open");
    let header_text = format!("{header_value:?}");
    session.close().await.expect("the session closes");
    let errors = produce_errors(&server, &foreign).await;

    assert_no_secret(&builder_text, "the builder");
    assert_no_secret(&client_text, "the client");
    assert_no_secret(&session_text, "the guard");
    assert_no_secret(&request_text, "the request");
    assert_no_secret(&response_text, "the response");
    assert_no_secret(&header_text, "the session header value");
    assert!(
        errors.len() >= 12,
        "every failing path produced an error: {errors:?}"
    );
    for error in &errors {
        assert_no_secret(&describe(error), "an error");
    }
    let foreign_requests = foreign.received_requests().await.unwrap_or_default();
    assert_eq!(
        foreign_requests.len(),
        0,
        "the foreign origin received {foreign_requests:?}"
    );
}

/// An `io::Write` into a buffer shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

/// Runs creates, requests, retries, a recreation, failures, closes, drops and a shutdown.
async fn run_every_logged_path(server: &MockServer) {
    let client = builder(server).build().expect("a valid client");
    let recreatable = json!({
        "error": {
            "code": "notFound",
            "message": "gone",
            "innerError": { "code": "invalidSessionReCreatable" }
        }
    });
    mount_sheet(
        server,
        "worksheets('Retried')",
        ResponseTemplate::new(429),
        1,
    )
    .await;
    mount_sheet(
        server,
        "worksheets('Expired')",
        ResponseTemplate::new(404).set_body_json(recreatable),
        1,
    )
    .await;
    mount_sheet(
        server,
        "worksheets('Failing')",
        ResponseTemplate::new(500),
        10,
    )
    .await;

    let first = client
        .create_session(&workbook(), SessionOptions::persistent())
        .await
        .expect("created");
    first
        .get("worksheets('Retried')")
        .send()
        .await
        .expect("succeeds after a retry");
    first
        .get("worksheets('Expired')")
        .send()
        .await
        .expect("succeeds in a recreated session");
    let _ = first.get("worksheets('Failing')").send().await;
    first
        .refresh()
        .await
        .expect_err("refreshSession is not mounted, so the server returns 404");
    let second = client
        .create_session(&workbook(), SessionOptions::non_persistent())
        .await
        .expect("created");
    let third = client
        .create_session(&workbook(), SessionOptions::persistent())
        .await
        .expect("created");
    first.close().await.expect("closed");
    drop(second);
    client.shutdown(Duration::from_secs(5)).await;
    drop(third);
}

#[tokio::test(flavor = "current_thread")]
async fn trace_output_hides_token_and_id() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = MockServer::start().await;
    mount_create_long_ids(&server).await;
    mount_close(&server).await;
    Mock::given(method("POST"))
        .and(path_regex("/refreshSession$"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();

    {
        let _default = tracing::subscriber::set_default(subscriber);
        run_every_logged_path(&server).await;
    }

    let output = captured.text();
    assert!(
        output.contains("session created"),
        "the run was captured: {output}"
    );
    assert!(
        output.contains("expired persistent session recreated"),
        "the recreation was logged: {output}"
    );
    assert!(
        output.contains("retrying"),
        "the retry was logged: {output}"
    );
    assert!(
        output.contains("s-"),
        "sessions are logged by fingerprint: {output}"
    );
    assert_no_secret(&output, "the trace output");
}
