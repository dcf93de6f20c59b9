//! createSession responses that cannot be trusted each give their own clear error, never a
//! panic, and never a request to another origin.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};
use workbook_session::{Error, SessionOptions, StatusCode};

/// The operation URL path that 202 responses point to on the test server.
const OPERATION: &str = "/operations/op-1";

/// The operation names the library puts in its errors.
const CREATE: &str = "createSession";
const POLL: &str = "createSession operation";
const SESSION_INFO: &str = "createSession sessionInfoResource";

/// The error a case must produce.
#[derive(Debug)]
enum Expected {
    /// [`Error::InvalidResponse`] for the operation, with a reason that contains the text.
    Invalid(&'static str, &'static str),
    /// [`Error::ForeignOrigin`] for the operation.
    Foreign(&'static str),
    /// [`Error::Graph`] with the status and no parsed body.
    GraphWithoutBody(StatusCode),
    /// [`Error::UnknownOperationStatus`] with the status.
    UnknownStatus(&'static str),
    /// [`Error::OperationFailed`] with the code chain and a message that contains the text.
    Failed(&'static [&'static str], &'static str),
    /// [`Error::ResponseTooLarge`] with the limit.
    TooLarge(usize),
    /// [`Error::OperationTimedOut`] after the create timeout.
    TimedOut(Duration),
}

use Expected::*;

impl Expected {
    fn matches(&self, error: &Error) -> bool {
        match (self, error) {
            (Invalid(expected, text), Error::InvalidResponse { operation, reason }) => {
                operation == expected && reason.contains(text)
            }
            (Foreign(expected), Error::ForeignOrigin { operation, .. }) => operation == expected,
            (GraphWithoutBody(status), Error::Graph(graph)) => {
                graph.status == *status && graph.body.is_none() && graph.codes().is_empty()
            }
            (UnknownStatus(expected), Error::UnknownOperationStatus { status }) => {
                status == expected
            }
            (Failed(codes, text), Error::OperationFailed { error }) => {
                error.codes == *codes && error.message.contains(text)
            }
            (TooLarge(expected), Error::ResponseTooLarge { limit, .. }) => limit == expected,
            (TimedOut(expected), Error::OperationTimedOut { after }) => after == expected,
            _ => false,
        }
    }
}

/// One malformed response and the error it must produce.
struct Case {
    name: &'static str,
    /// The response to POST createSession.
    create: ResponseTemplate,
    /// The response to GET on the operation, for 202 cases.
    poll: Option<ResponseTemplate>,
    /// The response to GET on the sessionInfoResource, for cases that get that far.
    session_info: Option<ResponseTemplate>,
    /// A limit on response bodies, in bytes, smaller than the default.
    max_response_bytes: Option<usize>,
    /// A create timeout shorter than the default.
    create_timeout: Option<Duration>,
    expected: Expected,
}

impl Case {
    fn new(name: &'static str, create: ResponseTemplate, expected: Expected) -> Case {
        Case {
            name,
            create,
            poll: None,
            session_info: None,
            max_response_bytes: None,
            create_timeout: None,
            expected,
        }
    }

    fn poll(mut self, body: serde_json::Value) -> Case {
        self.poll = Some(ResponseTemplate::new(200).set_body_json(body));
        self
    }

    fn session_info(mut self, body: serde_json::Value) -> Case {
        self.session_info = Some(ResponseTemplate::new(200).set_body_json(body));
        self
    }

    fn max_response_bytes(mut self, limit: usize) -> Case {
        self.max_response_bytes = Some(limit);
        self
    }

    fn create_timeout(mut self, timeout: Duration) -> Case {
        self.create_timeout = Some(timeout);
        self
    }
}

/// Returns a 201 with `body` as given, byte for byte.
fn created(body: &[u8]) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_raw(body.to_vec(), "application/json")
}

fn accepted(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).insert_header("location", location)
}

fn html(status: u16) -> ResponseTemplate {
    let page = "<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>";
    ResponseTemplate::new(status).set_body_raw(page, "text/html")
}

/// Builds the table; `own` and `foreign` are the origins of the Graph stand-in and of a
/// second server that must never receive a request.
fn cases(own: &str, foreign: &str) -> Vec<Case> {
    let own_operation = format!("{own}{ROOT}{OPERATION}");
    let foreign_operation = format!("{foreign}{ROOT}{OPERATION}");
    let foreign_without_scheme = foreign_operation.trim_start_matches("http:").to_owned();
    let own_info = format!("{own}{ROOT}/sessionInfoResource(key='k-1')");
    let foreign_info = format!("{foreign}{ROOT}/sessionInfoResource(key='k-1')");
    let long_id = format!(r#"{{"id":"{}"}}"#, "a".repeat(10 * 1024));
    let padded = format!(r#"{{"id":"abc","padding":"{}"}}"#, "x".repeat(4096));
    let failed = json!({
        "id": "op-1",
        "status": "failed",
        "error": {
            "code": "serviceUnavailable",
            "message": "outer",
            "innerError": { "code": "invalidSessionUnexpected", "message": "inner detail" }
        }
    });
    let failed_codes = &["serviceUnavailable", "invalidSessionUnexpected"];
    let not_ascii = "other than visible ASCII";
    vec![
        Case::new(
            "bad JSON",
            created(br#"{"id":"#),
            Invalid(CREATE, "not valid JSON"),
        ),
        Case::new(
            "empty body",
            created(b""),
            Invalid(CREATE, "the body is empty"),
        ),
        Case::new(
            "JSON array",
            created(b"[]"),
            Invalid(CREATE, "not a JSON object"),
        ),
        Case::new(
            "JSON null",
            created(b"null"),
            Invalid(CREATE, "not a JSON object"),
        ),
        Case::new(
            "missing id",
            created(br#"{"persistChanges":true}"#),
            Invalid(CREATE, "session id is missing"),
        ),
        Case::new(
            "empty id",
            created(br#"{"id":""}"#),
            Invalid(CREATE, "session id is empty"),
        ),
        Case::new(
            "id with escaped CR LF",
            created(br#"{"id":"abc\r\nX-Injected: 1"}"#),
            Invalid(CREATE, not_ascii),
        ),
        Case::new(
            "id with raw CR LF bytes",
            created(b"{\"id\":\"abc\r\nX-Injected: 1\"}"),
            Invalid(CREATE, "not valid JSON"),
        ),
        Case::new(
            "id with a space",
            created(br#"{"id":"a b"}"#),
            Invalid(CREATE, not_ascii),
        ),
        Case::new(
            "id of 10 KB",
            created(long_id.as_bytes()),
            Invalid(CREATE, "more than the limit"),
        ),
        Case::new(
            "id is a number",
            created(br#"{"id":42}"#),
            Invalid(CREATE, "id is not a string"),
        ),
        Case::new(
            "persistChanges is a string",
            created(br#"{"id":"abc","persistChanges":"yes"}"#),
            Invalid(CREATE, "persistChanges is not a boolean"),
        ),
        Case::new(
            "HTML page with 200",
            html(200),
            Invalid(CREATE, "not valid JSON"),
        ),
        Case::new(
            "HTML page with 500",
            html(500),
            GraphWithoutBody(StatusCode::INTERNAL_SERVER_ERROR),
        ),
        Case::new(
            "unexpected 204",
            ResponseTemplate::new(204),
            Invalid(CREATE, "unexpected status 204"),
        ),
        Case::new(
            "202 without Location",
            ResponseTemplate::new(202),
            Invalid(CREATE, "without a Location header"),
        ),
        Case::new(
            "202 with a foreign Location",
            accepted(&foreign_operation),
            Foreign(CREATE),
        ),
        Case::new(
            "202 with a scheme-relative foreign Location",
            accepted(&foreign_without_scheme),
            Foreign(CREATE),
        ),
        Case::new(
            "unknown operation status",
            accepted(&own_operation),
            UnknownStatus("paused"),
        )
        .poll(json!({ "id": "op-1", "status": "paused" })),
        Case::new(
            "operation without a status",
            accepted(&own_operation),
            Invalid(POLL, "operation has no status"),
        )
        .poll(json!({ "id": "op-1" })),
        Case::new(
            "operation status is a number",
            accepted(&own_operation),
            Invalid(POLL, "status is not a string"),
        )
        .poll(json!({ "id": "op-1", "status": 3 })),
        Case::new(
            "operation failed with an error",
            accepted(&own_operation),
            Failed(failed_codes, "inner detail"),
        )
        .poll(failed),
        Case::new(
            "operation failed without an error",
            accepted(&own_operation),
            Failed(&[], "no error details"),
        )
        .poll(json!({ "id": "op-1", "status": "failed" })),
        Case::new(
            "succeeded without resourceLocation",
            accepted(&own_operation),
            Invalid(POLL, "without a resourceLocation"),
        )
        .poll(json!({ "id": "op-1", "status": "succeeded" })),
        Case::new(
            "resourceLocation on a foreign origin",
            accepted(&own_operation),
            Foreign(POLL),
        )
        .poll(json!({ "id": "op-1", "status": "succeeded", "resourceLocation": foreign_info })),
        Case::new(
            "sessionInfoResource without an id",
            accepted(&own_operation),
            Invalid(SESSION_INFO, "session id is missing"),
        )
        .poll(json!({ "id": "op-1", "status": "succeeded", "resourceLocation": own_info }))
        .session_info(json!({ "persistChanges": true })),
        Case::new(
            "body over max_response_bytes",
            created(padded.as_bytes()),
            TooLarge(1024),
        )
        .max_response_bytes(1024),
        Case::new(
            "302 to a foreign origin",
            ResponseTemplate::new(302).insert_header("location", foreign_operation.as_str()),
            Invalid(CREATE, "unexpected redirect 302"),
        ),
        Case::new(
            "endless running polls",
            accepted(&own_operation),
            TimedOut(Duration::from_millis(300)),
        )
        .poll(json!({ "id": "op-1", "status": "running" }))
        .create_timeout(Duration::from_millis(300)),
    ]
}

/// Replaces the server's mocks with the responses of `case`.
async fn mount_case(server: &MockServer, case: &Case) {
    server.reset().await;
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/createSession")))
        .respond_with(case.create.clone())
        .mount(server)
        .await;
    if let Some(poll) = &case.poll {
        Mock::given(method("GET"))
            .and(path(format!("{ROOT}{OPERATION}")))
            .respond_with(poll.clone())
            .mount(server)
            .await;
    }
    if let Some(session_info) = &case.session_info {
        Mock::given(method("GET"))
            .and(path_regex("/sessionInfoResource"))
            .respond_with(session_info.clone())
            .mount(server)
            .await;
    }
    mount_close(server).await;
}

#[tokio::test]
async fn each_malformed_create_gives_its_error() {
    let server = MockServer::start().await;
    let foreign = MockServer::start().await;
    let cases = cases(&server.uri(), &foreign.uri());
    assert!(cases.len() >= 15, "the table covers at least 15 cases");

    for case in cases {
        mount_case(&server, &case).await;
        let mut builder = builder(&server)
            .respond_async(true)
            .poll_interval(Duration::from_millis(10), Duration::from_millis(20));
        if let Some(limit) = case.max_response_bytes {
            builder = builder.max_response_bytes(limit);
        }
        if let Some(timeout) = case.create_timeout {
            builder = builder.create_timeout(timeout);
        }
        let client = builder.build().expect("a valid client");

        let created = client
            .create_session(&workbook(), SessionOptions::persistent())
            .await;

        let name = case.name;
        let error = created.expect_err(&format!("{name}: the create must fail"));
        assert!(
            case.expected.matches(&error),
            "{name}: expected {:?}, got {error:?} ({error})",
            case.expected
        );
        let message = error.to_string();
        assert!(
            !message.contains("stopped before it finished"),
            "{name}: the creating task must not panic: {message}"
        );
        let report = client.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.closed, 0, "{name}: no session was open to close");
        assert_eq!(
            closes(&server).await.len(),
            0,
            "{name}: no closeSession was sent"
        );
        let foreign_requests = foreign.received_requests().await.unwrap_or_default();
        assert_eq!(
            foreign_requests.len(),
            0,
            "{name}: the foreign origin received {foreign_requests:?}"
        );
    }
}

#[tokio::test]
async fn persist_changes_mismatch_closes_the_session() {
    let server = MockServer::start().await;
    let body = json!({ "id": SESSION_ID, "persistChanges": false });
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/createSession")))
        .respond_with(ResponseTemplate::new(201).set_body_json(body))
        .mount(&server)
        .await;
    mount_close(&server).await;
    let client = client(&server);

    let created = client
        .create_session(&workbook(), SessionOptions::persistent())
        .await;

    let error = created.expect_err("a non-persistent session is not what was requested");
    let expected = Expected::Invalid(CREATE, "persistChanges true was requested");
    assert!(
        expected.matches(&error),
        "expected {expected:?}, got {error:?} ({error})"
    );
    let report = client.shutdown(Duration::from_secs(5)).await;
    assert!(!report.timed_out, "the close queue drained: {report:?}");
    assert_eq!(
        closes(&server).await,
        [SESSION_ID],
        "the unwanted session is closed once"
    );
    assert_eq!(client.stats().closed_on_drop, 1, "the close is counted");
}
