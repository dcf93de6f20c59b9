//! createSession answers that cannot be trusted each give their own clear error, never a
//! panic, and never a request to another origin.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};
use workbook_session::{Error, SessionOptions, StatusCode};

/// The operation URL path that 202 answers point to on the test server.
const OPERATION: &str = "/operations/op-1";

/// One malformed answer and the error it must produce.
struct Case {
    name: &'static str,
    /// The answer to POST createSession.
    create: ResponseTemplate,
    /// The answer to GET on the operation, for 202 cases.
    poll: Option<ResponseTemplate>,
    /// The answer to GET on the sessionInfoResource, for cases that get that far.
    session_info: Option<ResponseTemplate>,
    /// A limit on response bodies, in bytes, smaller than the default.
    max_response_bytes: Option<usize>,
    /// A create timeout shorter than the default.
    create_timeout: Option<Duration>,
    /// Whether the error is the expected one.
    expected: fn(&Error) -> bool,
    /// What `expected` checks, for the failure message.
    expected_text: &'static str,
}

impl Case {
    fn new(
        name: &'static str,
        create: ResponseTemplate,
        expected_text: &'static str,
        expected: fn(&Error) -> bool,
    ) -> Case {
        Case {
            name,
            create,
            poll: None,
            session_info: None,
            max_response_bytes: None,
            create_timeout: None,
            expected,
            expected_text,
        }
    }

    fn poll(mut self, poll: ResponseTemplate) -> Case {
        self.poll = Some(poll);
        self
    }

    fn session_info(mut self, session_info: ResponseTemplate) -> Case {
        self.session_info = Some(session_info);
        self
    }
}

fn invalid_response_saying(error: &Error, fragment: &str) -> bool {
    matches!(error, Error::InvalidResponse { operation, reason } if operation.starts_with("createSession") && reason.contains(fragment))
}

fn json_body(body: &[u8]) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_raw(body.to_vec(), "application/json")
}

fn accepted(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).insert_header("location", location)
}

fn operation(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

const HTML: &str = "<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>";

/// Builds the table; `own` and `foreign` are the origins of the Graph stand-in and of a
/// second server that must never receive a request.
fn cases(own: &str, foreign: &str) -> Vec<Case> {
    let own_operation = format!("{own}{ROOT}{OPERATION}");
    let foreign_operation = format!("{foreign}{ROOT}{OPERATION}");
    let foreign_without_scheme = foreign_operation.trim_start_matches("http:").to_owned();
    let own_session_info = format!("{own}{ROOT}/sessionInfoResource(key='k-1')");
    let long_id = format!(r#"{{"id":"{}"}}"#, "a".repeat(10 * 1024));
    vec![
        Case::new("bad JSON", json_body(br#"{"id":"#), "not valid JSON", |e| invalid_response_saying(e, "not valid JSON")),
        Case::new("empty body", json_body(b""), "the body is empty", |e| invalid_response_saying(e, "the body is empty")),
        Case::new("JSON array", json_body(b"[]"), "not a JSON object", |e| invalid_response_saying(e, "not a JSON object")),
        Case::new("JSON null", json_body(b"null"), "not a JSON object", |e| invalid_response_saying(e, "not a JSON object")),
        Case::new("missing id", json_body(br#"{"persistChanges":true}"#), "session id is missing", |e| {
            invalid_response_saying(e, "session id is missing")
        }),
        Case::new("empty id", json_body(br#"{"id":""}"#), "session id is empty", |e| invalid_response_saying(e, "session id is empty")),
        Case::new("id with escaped CR LF", json_body(br#"{"id":"abc\r\nX-Injected: 1"}"#), "not visible ASCII", |e| {
            invalid_response_saying(e, "other than visible ASCII")
        }),
        Case::new("id with raw CR LF bytes", json_body(b"{\"id\":\"abc\r\nX-Injected: 1\"}"), "not valid JSON", |e| {
            invalid_response_saying(e, "not valid JSON")
        }),
        Case::new("id with a space", json_body(br#"{"id":"abc def"}"#), "not visible ASCII", |e| {
            invalid_response_saying(e, "other than visible ASCII")
        }),
        Case::new("id of 10 KB", json_body(long_id.as_bytes()), "over the id length limit", |e| {
            invalid_response_saying(e, "more than the limit")
        }),
        Case::new("id is a number", json_body(br#"{"id":42}"#), "field id is not a string", |e| {
            invalid_response_saying(e, "field id is not a string")
        }),
        Case::new("persistChanges is a string", json_body(br#"{"id":"abc","persistChanges":"yes"}"#), "not a boolean", |e| {
            invalid_response_saying(e, "persistChanges is not a boolean")
        }),
        Case::new("HTML page with 200", ResponseTemplate::new(200).set_body_raw(HTML, "text/html"), "not valid JSON", |e| {
            invalid_response_saying(e, "not valid JSON")
        }),
        Case::new("HTML page with 500", ResponseTemplate::new(500).set_body_raw(HTML, "text/html"), "Graph 500 without codes", |e| {
            e.status() == Some(StatusCode::INTERNAL_SERVER_ERROR) && e.graph().is_some_and(|graph| graph.body.is_none() && graph.codes().is_empty())
        }),
        Case::new("unexpected 204", ResponseTemplate::new(204), "unexpected status", |e| invalid_response_saying(e, "unexpected status 204")),
        Case::new("202 without Location", ResponseTemplate::new(202), "without a Location header", |e| {
            invalid_response_saying(e, "without a Location header")
        }),
        Case::new("202 with a foreign Location", accepted(&foreign_operation), "ForeignOrigin", |e| {
            matches!(e, Error::ForeignOrigin { operation, .. } if operation == "createSession")
        }),
        Case::new("202 with a scheme-relative foreign Location", accepted(&foreign_without_scheme), "ForeignOrigin", |e| {
            matches!(e, Error::ForeignOrigin { operation, .. } if operation == "createSession")
        }),
        Case::new("operation with an unknown status", accepted(&own_operation), "UnknownOperationStatus", |e| {
            matches!(e, Error::UnknownOperationStatus { status } if status == "paused")
        })
        .poll(operation(json!({ "id": "op-1", "status": "paused" }))),
        Case::new("operation without a status", accepted(&own_operation), "operation has no status", |e| {
            invalid_response_saying(e, "operation has no status")
        })
        .poll(operation(json!({ "id": "op-1" }))),
        Case::new("operation status is a number", accepted(&own_operation), "field status is not a string", |e| {
            invalid_response_saying(e, "field status is not a string")
        })
        .poll(operation(json!({ "id": "op-1", "status": 3 }))),
        Case::new("operation failed with an error", accepted(&own_operation), "OperationFailed with the code chain", |e| {
            matches!(e, Error::OperationFailed { error } if error.codes == ["serviceUnavailable", "invalidSessionUnexpected"] && error.message == "inner detail")
        })
        .poll(operation(json!({
            "id": "op-1",
            "status": "failed",
            "error": {
                "code": "serviceUnavailable",
                "message": "outer",
                "innerError": { "code": "invalidSessionUnexpected", "message": "inner detail" }
            }
        }))),
        Case::new("operation failed without an error", accepted(&own_operation), "OperationFailed without details", |e| {
            matches!(e, Error::OperationFailed { error } if error.codes.is_empty() && error.message.contains("no error details"))
        })
        .poll(operation(json!({ "id": "op-1", "status": "failed" }))),
        Case::new("succeeded without resourceLocation", accepted(&own_operation), "without a resourceLocation", |e| {
            invalid_response_saying(e, "without a resourceLocation")
        })
        .poll(operation(json!({ "id": "op-1", "status": "succeeded" }))),
        Case::new("resourceLocation on a foreign origin", accepted(&own_operation), "ForeignOrigin", |e| {
            matches!(e, Error::ForeignOrigin { operation, .. } if operation == "createSession operation")
        })
        .poll(operation(json!({
            "id": "op-1",
            "status": "succeeded",
            "resourceLocation": format!("{foreign}{ROOT}/sessionInfoResource(key='k-1')")
        }))),
        Case::new("sessionInfoResource without an id", accepted(&own_operation), "session id is missing", |e| {
            matches!(e, Error::InvalidResponse { operation, reason } if operation == "createSession sessionInfoResource" && reason.contains("session id is missing"))
        })
        .poll(operation(json!({ "id": "op-1", "status": "succeeded", "resourceLocation": own_session_info })))
        .session_info(operation(json!({ "persistChanges": true }))),
        Case {
            max_response_bytes: Some(1024),
            ..Case::new(
                "body over max_response_bytes",
                json_body(format!(r#"{{"id":"abc","padding":"{}"}}"#, "x".repeat(4096)).as_bytes()),
                "ResponseTooLarge",
                |e| matches!(e, Error::ResponseTooLarge { limit: 1024, .. }),
            )
        },
        Case::new(
            "302 to a foreign origin",
            ResponseTemplate::new(302).insert_header("location", foreign_operation.as_str()),
            "unexpected redirect",
            |e| invalid_response_saying(e, "unexpected redirect 302"),
        ),
        Case {
            create_timeout: Some(Duration::from_millis(300)),
            ..Case::new("endless running polls", accepted(&own_operation), "OperationTimedOut", |e| {
                matches!(e, Error::OperationTimedOut { after } if *after == Duration::from_millis(300))
            })
            .poll(operation(json!({ "id": "op-1", "status": "running" })))
        },
    ]
}

/// Replaces the server's mocks with the answers of `case`.
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
            (case.expected)(&error),
            "{name}: expected {}, got {error:?} ({error})",
            case.expected_text
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
    assert!(
        matches!(&error, Error::InvalidResponse { reason, .. } if reason.contains("persistChanges true was requested")),
        "the error names the mismatch: {error}"
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
