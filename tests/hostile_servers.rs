//! Hostile or broken servers at every point of a session's life: each gives its own typed,
//! one-line error within a deadline derived from the client's settings, never a panic, and
//! never a request to another origin.
//!
//! Byte-level misbehaviour (cut bodies, endless chunks, huge headers, silence) comes from a
//! small raw TCP server on loopback; everything else from wiremock. A second wiremock server,
//! the foreign origin, responds to any request and must receive none.

mod common;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use wiremock::matchers::{any, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};
use workbook_session::{
    Error, RetryPolicy, SessionGuard, SessionOptions, StatusCode, WorkbookClient,
};

/// The client's settings, short so that every row ends in seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const CREATE_TIMEOUT: Duration = Duration::from_secs(3);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPTS: u32 = 2;
const RETRY_BUDGET: Duration = Duration::from_secs(3);
const INITIAL_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(100);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(200);
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Scheduling allowance added to every deadline derived from the settings.
const SLACK: Duration = Duration::from_secs(1);

/// The maximum time a call may take to count as failing at once, without a retry or a wait.
const AT_ONCE: Duration = Duration::from_secs(1);

/// The path of every guarded request, below the workbook root.
const SHEET: &str = "worksheets('Sheet1')/usedRange";

/// The operation path that the 202 responses of the wiremock origin point to.
const OPERATION: &str = "/operations/op-1";

/// A date long past, as an HTTP date.
const PAST_DATE: &str = "Thu, 01 Jan 2015 00:00:00 GMT";

/// Returns the maximum time one request may take with its retries. Each attempt may run into
/// the request timeout and each wait may be the maximum backoff, but no attempt starts once
/// the retry budget is spent.
fn request_bound() -> Duration {
    let every_attempt = REQUEST_TIMEOUT * ATTEMPTS + MAX_BACKOFF * (ATTEMPTS - 1);
    every_attempt.min(RETRY_BUDGET + REQUEST_TIMEOUT)
}

/// The point of the session's life where a row's server misbehaves. The stage also selects
/// the call that the row makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The response to POST createSession.
    Create,
    /// The response to polling the operation that a 202 pointed to.
    Poll,
    /// The response to the sessionInfoResource of a succeeded operation.
    SessionInfo,
    /// A guarded `GET`, read with `send`.
    Get,
    /// A guarded `GET`, read with `send_json` into [`Range`].
    GetJson,
    /// A guarded `POST`, which is not retried after a broken connection.
    Post,
    /// A guarded `PATCH` with a JSON body.
    Patch,
    /// refreshSession through `guard.refresh()`.
    Refresh,
    /// closeSession through `guard.close()`.
    Close,
}

impl Stage {
    /// Returns the part of the request path that identifies the route under test.
    fn route(self) -> &'static str {
        match self {
            Stage::Create => "/createSession",
            Stage::Poll => "/operations/",
            Stage::SessionInfo => "/sessionInfoResource",
            Stage::Get | Stage::GetJson | Stage::Post | Stage::Patch => "/worksheets",
            Stage::Refresh => "/refreshSession",
            Stage::Close => "/closeSession",
        }
    }

    fn needs_session(self) -> bool {
        !matches!(self, Stage::Create | Stage::Poll | Stage::SessionInfo)
    }

    /// Returns the deadline of the row's call, from the client's settings. A guarded request
    /// that finds its session gone recreates it once and repeats itself.
    fn deadline(self, recreates: bool) -> Duration {
        let limit = match self {
            Stage::Create | Stage::Poll | Stage::SessionInfo => CREATE_TIMEOUT,
            Stage::Close => CLOSE_TIMEOUT,
            Stage::Get | Stage::GetJson | Stage::Post | Stage::Patch | Stage::Refresh => {
                if recreates {
                    request_bound() * 2 + CREATE_TIMEOUT
                } else {
                    request_bound()
                }
            }
        };
        limit + SLACK
    }
}

/// Byte-level misbehaviour of the raw server.
#[derive(Debug, Clone, Copy)]
enum Raw {
    /// Announces `Content-Length: 1000`, sends 10 bytes of body and closes.
    CutBody,
    /// Sends a chunked 200 body that does not end until the client hangs up.
    EndlessChunks,
    /// Sends a 200 with 64 headers of 8 KiB each: 512 KiB, over the 408 KiB that hyper 1.13
    /// buffers for a response head by default, but under its limit of 100 headers.
    HugeHeaders,
    /// Responds with bytes that are not HTTP.
    NotHttp,
    /// Reads the request and never responds.
    Silent,
    /// Sends the head of a 200, then one body byte every 100 ms.
    Drip,
}

/// What the configured origin does on the route under test.
enum Behaviour {
    Mock(ResponseTemplate),
    Raw(Raw),
}

/// The result a row must give.
#[derive(Debug, Clone, Copy)]
enum Expected {
    /// [`Error::InvalidResponse`].
    Invalid,
    /// [`Error::ForeignOrigin`].
    Foreign,
    /// [`Error::Graph`] with this status.
    Graph(u16),
    /// [`Error::Graph`] with this status and no parsed error body.
    BareGraph(u16),
    /// [`Error::ResponseTooLarge`] at the client's limit.
    TooLarge,
    /// [`Error::Transport`] that is not a timeout.
    Transport,
    /// [`Error::Transport`] that is a timeout.
    TransportTimeout,
    /// [`Error::Deserialize`].
    Deserialize,
    /// [`Error::OperationTimedOut`] after the create timeout.
    OperationTimedOut,
    /// [`Error::TimedOut`] after the close timeout.
    TimedOut,
    /// [`Error::Throttled`].
    Throttled,
    /// Not an error: the guarded request returns the 202 response as it came.
    Accepted,
}

impl Expected {
    fn matches(self, result: &Result<Outcome, Error>) -> bool {
        let error = match (self, result) {
            (Expected::Accepted, Ok(Outcome::Status(status))) => {
                return *status == StatusCode::ACCEPTED;
            }
            (_, Ok(_)) => return false,
            (_, Err(error)) => error,
        };
        match (self, error) {
            (Expected::Invalid, Error::InvalidResponse { .. }) => true,
            (Expected::Foreign, Error::ForeignOrigin { .. }) => true,
            (Expected::Graph(status), Error::Graph(graph)) => graph.status.as_u16() == status,
            (Expected::BareGraph(status), Error::Graph(graph)) => {
                graph.status.as_u16() == status && graph.body.is_none()
            }
            (Expected::TooLarge, Error::ResponseTooLarge { limit, .. }) => {
                *limit == MAX_RESPONSE_BYTES
            }
            (Expected::Transport, Error::Transport { .. }) => !error.is_timeout(),
            (Expected::TransportTimeout, Error::Transport { .. }) => error.is_timeout(),
            (Expected::Deserialize, Error::Deserialize { .. }) => true,
            (Expected::OperationTimedOut, Error::OperationTimedOut { after }) => {
                *after == CREATE_TIMEOUT
            }
            (Expected::TimedOut, Error::TimedOut { after, .. }) => *after == CLOSE_TIMEOUT,
            (Expected::Throttled, Error::Throttled { .. }) => true,
            _ => false,
        }
    }
}

/// What a row's call returned when it did not fail.
#[derive(Debug)]
enum Outcome {
    /// createSession opened a session.
    Created,
    /// A guarded request returned this status.
    Status(StatusCode),
    /// `send_json` returned a range with this many rows.
    Rows(#[expect(dead_code, reason = "shown only in failure messages")] usize),
    /// refresh or close succeeded.
    Done,
}

/// The body a guarded `send_json` expects.
#[derive(Debug, Deserialize)]
struct Range {
    values: Vec<Vec<serde_json::Value>>,
}

/// How many requests the route under test must receive.
#[derive(Debug, Clone, Copy)]
enum Sent {
    Exactly(usize),
    AtMost(usize),
    AtLeast(usize),
}

/// One hostile server behaviour and the result it must give.
struct Row {
    name: &'static str,
    stage: Stage,
    behaviour: Behaviour,
    expected: Expected,
    /// Text the error's `to_string()` must contain.
    fragment: &'static str,
    /// How many requests the route under test must receive, when that is known.
    sent: Option<Sent>,
    /// The call must fail without a retry or a wait.
    at_once: bool,
    /// The call must wait at least the first backoff before its second attempt.
    backs_off: bool,
    /// The call recreates the session once, which lengthens its deadline.
    recreates: bool,
}

impl Row {
    fn mock(
        name: &'static str,
        stage: Stage,
        response: ResponseTemplate,
        expected: Expected,
        fragment: &'static str,
    ) -> Row {
        Row::new(name, stage, Behaviour::Mock(response), expected, fragment)
    }

    fn raw(
        name: &'static str,
        stage: Stage,
        raw: Raw,
        expected: Expected,
        fragment: &'static str,
    ) -> Row {
        Row::new(name, stage, Behaviour::Raw(raw), expected, fragment)
    }

    fn new(
        name: &'static str,
        stage: Stage,
        behaviour: Behaviour,
        expected: Expected,
        fragment: &'static str,
    ) -> Row {
        Row {
            name,
            stage,
            behaviour,
            expected,
            fragment,
            sent: None,
            at_once: false,
            backs_off: false,
            recreates: false,
        }
    }

    fn sent(mut self, requests: usize) -> Row {
        self.sent = Some(Sent::Exactly(requests));
        self
    }

    fn sent_at_most(mut self, requests: usize) -> Row {
        self.sent = Some(Sent::AtMost(requests));
        self
    }

    fn sent_at_least(mut self, requests: usize) -> Row {
        self.sent = Some(Sent::AtLeast(requests));
        self
    }

    fn backs_off(mut self) -> Row {
        self.backs_off = true;
        self
    }

    fn at_once(mut self) -> Row {
        self.at_once = true;
        self.sent(1)
    }

    fn recreates(mut self) -> Row {
        self.recreates = true;
        self
    }
}

fn json_body(status: u16, body: &[u8]) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_vec(), "application/json")
}

fn html(status: u16) -> ResponseTemplate {
    let page = "<!DOCTYPE html>\n<html><head><title>Error</title></head>\n<body><h1>Something went wrong</h1></body></html>\n";
    ResponseTemplate::new(status).set_body_raw(page, "text/html")
}

fn redirect(status: u16, location: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).insert_header("location", location)
}

fn accepted(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).insert_header("location", location)
}

fn throttled(status: u16, retry_after: &str) -> ResponseTemplate {
    let body =
        json!({ "error": { "code": "tooManyRequestsUncategorized", "message": "slow down" } });
    ResponseTemplate::new(status)
        .insert_header("retry-after", retry_after)
        .set_body_json(body)
}

fn succeeded(resource_location: serde_json::Value) -> ResponseTemplate {
    let body =
        json!({ "id": "op-1", "status": "succeeded", "resourceLocation": resource_location });
    ResponseTemplate::new(200).set_body_json(body)
}

/// Builds the table. `own` is the wiremock origin the client is configured with and
/// `foreign` the origin that must receive nothing.
fn rows(own: &MockServer, foreign: &MockServer) -> Vec<Row> {
    let own_port = own.address().port();
    let foreign_port = foreign.address().port();
    let foreign_uri = foreign.uri();
    let foreign_create = format!("{foreign_uri}{ROOT}/createSession");
    let foreign_sheet = format!("{foreign_uri}{ROOT}/{SHEET}");
    let foreign_close = format!("{foreign_uri}{ROOT}/closeSession");
    let foreign_refresh = format!("{foreign_uri}{ROOT}/refreshSession");
    let foreign_info_without_scheme =
        format!("127.0.0.1:{foreign_port}{ROOT}/sessionInfoResource(key='k-1')");
    let own_operation_without_scheme = format!("127.0.0.1:{own_port}{ROOT}{OPERATION}");
    let foreign_operation_without_scheme = format!("127.0.0.1:{foreign_port}{ROOT}{OPERATION}");
    let long_id = format!(r#"{{"id":"{}"}}"#, "a".repeat(10 * 1024));
    let huge_body = vec![b' '; 1024 * 1024];
    let huge_error = format!(
        r#"{{"error":{{"code":"hugeError","message":"{}"}}}}"#,
        "m".repeat(10 * 1024 * 1024)
    );
    let session_gone = json!({
        "error": {
            "code": "itemNotFound",
            "message": "outer",
            "innerError": { "code": "invalidSessionReCreatable", "message": "gone" }
        }
    });
    let attempts = ATTEMPTS as usize;
    // Polls are never closer together than the first poll interval.
    let max_polls = (CREATE_TIMEOUT.as_millis() / POLL_INTERVAL.as_millis()) as usize + 1;

    use Expected::*;
    use Stage::*;
    vec![
        // createSession itself.
        Row::mock(
            "create id with an escaped NUL",
            Create,
            json_body(201, br#"{"id":"abc\u0000def"}"#),
            Invalid,
            "session id contains characters other than visible ASCII",
        ),
        Row::mock(
            "create 500 HTML page",
            Create,
            html(500),
            BareGraph(500),
            "createSession returned 500 Internal Server Error",
        )
        .at_once(),
        Row::mock(
            "create 429 asking to wait hours",
            Create,
            throttled(429, "7200"),
            Throttled,
            "createSession throttled: the server asked to wait 7200s",
        )
        .at_once(),
        Row::mock(
            "create 301 to the foreign origin",
            Create,
            redirect(301, &foreign_create),
            Invalid,
            "unexpected redirect 301 Moved Permanently",
        )
        .at_once(),
        Row::mock(
            "create 308 to the foreign origin",
            Create,
            redirect(308, &foreign_create),
            Invalid,
            "unexpected redirect 308 Permanent Redirect",
        )
        .at_once(),
        Row::raw(
            "create chunked body without end",
            Create,
            Raw::EndlessChunks,
            TooLarge,
            "response to createSession exceeds the limit of 65536 bytes",
        )
        .sent(1),
        Row::raw(
            "create with 512 KB of headers",
            Create,
            Raw::HugeHeaders,
            Transport,
            "createSession failed: the connection broke or the response was not valid HTTP",
        )
        .sent(attempts),
        Row::raw(
            "create body cut after 10 bytes",
            Create,
            Raw::CutBody,
            Transport,
            "createSession failed: the connection broke while the response body was read",
        )
        .sent(attempts),
        Row::raw(
            "create answered with non-HTTP bytes",
            Create,
            Raw::NotHttp,
            Transport,
            "createSession failed: the connection broke or the response was not valid HTTP",
        )
        .sent(attempts),
        // The Location of a 202.
        Row::mock(
            "Location with userinfo hiding the foreign host",
            Create,
            accepted(&format!("http://127.0.0.1:{own_port}@{foreign_operation_without_scheme}")),
            Foreign,
            "outside the configured origin",
        )
        .at_once(),
        Row::mock(
            "Location with credentials on the own origin",
            Create,
            accepted(&format!("http://graph:hunter2@{own_operation_without_scheme}")),
            Invalid,
            "invalid response to createSession: the URL contains user credentials",
        )
        .at_once(),
        Row::mock(
            "Location with an ftp scheme",
            Create,
            accepted(&format!("ftp://127.0.0.1:{foreign_port}{ROOT}{OPERATION}")),
            Foreign,
            "outside the configured origin",
        )
        .at_once(),
        Row::mock(
            "Location with a javascript scheme",
            Create,
            accepted("javascript:alert(1)"),
            Foreign,
            "outside the configured origin",
        )
        .at_once(),
        Row::mock(
            "Location with a data scheme",
            Create,
            accepted(r#"data:application/json,{"status":"succeeded"}"#),
            Foreign,
            "outside the configured origin",
        )
        .at_once(),
        Row::mock(
            "Location with non-ASCII bytes",
            Create,
            accepted(&format!("http://{own_operation_without_scheme}/\u{e9}t\u{e9}")),
            Invalid,
            "Location header is not visible ASCII",
        )
        .at_once(),
        Row::mock(
            "Location with a backslash before @",
            Create,
            accepted(&format!(
                "http://127.0.0.1:{own_port}\\@127.0.0.1:{foreign_port}{ROOT}{OPERATION}"
            )),
            BareGraph(404),
            "createSession operation returned 404 Not Found",
        )
        .sent(1),
        // Polling the operation.
        Row::mock(
            "poll truncated JSON",
            Poll,
            json_body(200, br#"{"id":"op-1","status":"runn"#),
            Invalid,
            "createSession operation: the body is not valid JSON",
        )
        .sent(1),
        Row::mock(
            "poll status is an array",
            Poll,
            json_body(200, br#"{"id":"op-1","status":["succeeded"]}"#),
            Invalid,
            "field status is not a string",
        )
        .sent(1),
        Row::mock(
            "poll resourceLocation is an object",
            Poll,
            succeeded(json!({ "href": "sessionInfoResource(key='k-1')" })),
            Invalid,
            "field resourceLocation is not a string",
        )
        .sent(1),
        Row::mock(
            "resourceLocation scheme-relative to the foreign origin",
            Poll,
            succeeded(json!(format!("//{foreign_info_without_scheme}"))),
            Foreign,
            "createSession operation pointed to",
        )
        .sent(1),
        Row::mock(
            "resourceLocation with userinfo hiding the foreign host",
            Poll,
            succeeded(json!(format!("http://127.0.0.1:{own_port}@{foreign_info_without_scheme}"))),
            Foreign,
            "createSession operation pointed to",
        )
        .sent(1),
        Row::mock(
            "resourceLocation is a file URL",
            Poll,
            succeeded(json!("file:///etc/passwd")),
            Foreign,
            "createSession operation pointed to \"file:///etc/passwd\"",
        )
        .sent(1),
        Row::mock(
            "poll running forever",
            Poll,
            ResponseTemplate::new(200)
                .insert_header("retry-after", "3600")
                .set_body_json(json!({ "id": "op-1", "status": "running" })),
            OperationTimedOut,
            "createSession operation did not finish within 3s",
        ),
        Row::mock(
            "poll running with Retry-After in the past",
            Poll,
            ResponseTemplate::new(200)
                .insert_header("retry-after", PAST_DATE)
                .set_body_json(json!({ "id": "op-1", "status": "running" })),
            OperationTimedOut,
            "createSession operation did not finish within 3s",
        )
        .sent_at_most(max_polls),
        // The sessionInfoResource.
        Row::mock(
            "session info empty 200",
            SessionInfo,
            ResponseTemplate::new(200),
            Invalid,
            "createSession sessionInfoResource: the body is empty",
        )
        .sent(1),
        Row::mock(
            "session info id with an escaped BEL",
            SessionInfo,
            json_body(200, br#"{"id":"abc\u0007def"}"#),
            Invalid,
            "session id contains characters other than visible ASCII",
        )
        .sent(1),
        Row::mock(
            "session info id of 10 KB",
            SessionInfo,
            json_body(200, long_id.as_bytes()),
            Invalid,
            "more than the limit of 4096",
        )
        .sent(1),
        Row::mock(
            "session info id is a number",
            SessionInfo,
            json_body(200, br#"{"id":42,"persistChanges":true}"#),
            Invalid,
            "field id is not a string",
        )
        .sent(1),
        // Requests through a guard.
        Row::mock(
            "send_json values not an array",
            GetJson,
            json_body(200, br#"{"values":"A1"}"#),
            Deserialize,
            "failed to deserialize the response to GET worksheets",
        )
        .at_once(),
        Row::mock(
            "send_json truncated JSON",
            GetJson,
            json_body(200, br#"{"values":[[1,2],[3"#),
            Deserialize,
            "failed to deserialize the response to GET worksheets",
        )
        .at_once(),
        Row::mock(
            "send_json HTML page with 200",
            GetJson,
            html(200),
            Deserialize,
            "failed to deserialize the response to GET worksheets",
        )
        .at_once(),
        Row::mock(
            "guarded GET 1 MiB with Content-Length",
            Get,
            json_body(200, &huge_body),
            TooLarge,
            "exceeds the limit of 65536 bytes",
        )
        .at_once(),
        Row::raw(
            "guarded GET chunked body without end",
            Get,
            Raw::EndlessChunks,
            TooLarge,
            "exceeds the limit of 65536 bytes",
        )
        .sent(1),
        Row::mock(
            "guarded GET 302 to the foreign origin",
            Get,
            redirect(302, &foreign_sheet),
            Invalid,
            "unexpected redirect 302 Found",
        )
        .at_once(),
        Row::mock(
            "guarded GET 307 to the foreign origin",
            Get,
            redirect(307, &foreign_sheet),
            Invalid,
            "unexpected redirect 307 Temporary Redirect",
        )
        .at_once(),
        Row::raw(
            "guarded GET body cut after 10 bytes",
            Get,
            Raw::CutBody,
            Transport,
            "GET worksheets('Sheet1')/usedRange failed: the connection broke while the response body was read",
        )
        .sent(attempts),
        Row::raw(
            "guarded GET never answered",
            Get,
            Raw::Silent,
            TransportTimeout,
            "GET worksheets('Sheet1')/usedRange failed: no complete response within the request timeout",
        )
        .sent(attempts),
        Row::raw(
            "guarded POST body dripping",
            Post,
            Raw::Drip,
            TransportTimeout,
            "POST worksheets('Sheet1')/usedRange failed: no complete response within the request timeout",
        )
        .sent(1),
        Row::mock(
            "guarded POST 202 with a foreign Location",
            Post,
            accepted(&foreign_sheet),
            Accepted,
            "",
        )
        .sent(1),
        Row::mock(
            "guarded PATCH 503 asking to wait hours",
            Patch,
            throttled(503, "7200"),
            Throttled,
            "throttled: the server asked to wait 7200s",
        )
        .at_once(),
        Row::mock(
            "guarded GET 429 with garbage Retry-After",
            Get,
            throttled(429, "soon"),
            Graph(429),
            "returned 429 Too Many Requests: tooManyRequestsUncategorized",
        )
        .sent(attempts)
        .backs_off(),
        Row::mock(
            "guarded GET 503 HTML page",
            Get,
            html(503),
            BareGraph(503),
            "returned 503 Service Unavailable",
        )
        .sent(2 * attempts)
        .recreates(),
        Row::mock(
            "guarded GET session gone every time",
            Get,
            ResponseTemplate::new(404).set_body_json(session_gone),
            Graph(404),
            "itemNotFound/invalidSessionReCreatable: gone",
        )
        .sent(2)
        .recreates(),
        // refreshSession.
        Row::mock(
            "refresh 429 with negative Retry-After",
            Refresh,
            throttled(429, "-30"),
            Graph(429),
            "refreshSession returned 429 Too Many Requests",
        )
        .sent(attempts)
        .backs_off(),
        Row::mock(
            "refresh 500 with a 10 MB error body",
            Refresh,
            json_body(500, huge_error.as_bytes()),
            BareGraph(500),
            "refreshSession returned 500 Internal Server Error",
        )
        .at_once(),
        Row::mock(
            "refresh 303 to the foreign origin",
            Refresh,
            redirect(303, &foreign_refresh),
            Invalid,
            "unexpected redirect 303 See Other",
        )
        .at_once(),
        // closeSession.
        Row::mock(
            "close 307 to the foreign origin",
            Close,
            redirect(307, &foreign_close),
            Invalid,
            "invalid response to closeSession: unexpected redirect 307",
        )
        .at_once(),
        Row::mock(
            "close 308 to the foreign origin",
            Close,
            redirect(308, &foreign_close),
            Invalid,
            "invalid response to closeSession: unexpected redirect 308",
        )
        .at_once(),
        Row::mock(
            "close 429 with Retry-After in the past",
            Close,
            throttled(429, PAST_DATE),
            Graph(429),
            "closeSession returned 429 Too Many Requests",
        )
        // A close outlasts the attempt limit, up to the close timeout, because giving up
        // leaves the session open on the server.
        .sent_at_least(attempts + 1)
        .backs_off(),
        Row::raw(
            "close never answered",
            Close,
            Raw::Silent,
            TimedOut,
            "closeSession timed out: no response within 3s",
        )
        .sent(attempts),
    ]
}

/// Builds a client for `origin` with the short settings above.
fn client(origin: &str) -> WorkbookClient {
    let retry = RetryPolicy::default()
        .max_attempts(ATTEMPTS)
        .max_elapsed(RETRY_BUDGET)
        .initial_backoff(INITIAL_BACKOFF)
        .max_backoff(MAX_BACKOFF);
    WorkbookClient::builder()
        .base_url(format!("{origin}/v1.0"))
        .bearer_token(TOKEN)
        .keep_alive(None)
        .respond_async(true)
        .connect_timeout(REQUEST_TIMEOUT)
        .request_timeout(REQUEST_TIMEOUT)
        .create_timeout(CREATE_TIMEOUT)
        .close_timeout(CLOSE_TIMEOUT)
        .poll_interval(POLL_INTERVAL, MAX_POLL_INTERVAL)
        .max_response_bytes(MAX_RESPONSE_BYTES)
        .retry_policy(retry)
        .build()
        .expect("a valid client")
}

/// Mounts on `server` a normal session life, with `hostile` on the route of `stage`.
async fn mount_stage(server: &MockServer, stage: Stage, hostile: ResponseTemplate) {
    server.reset().await;
    let own_operation = format!("{}{ROOT}{OPERATION}", server.uri());
    let own_info = format!("{}{ROOT}/sessionInfoResource(key='k-1')", server.uri());
    let create = match stage {
        Stage::Create => hostile.clone(),
        Stage::Poll | Stage::SessionInfo => accepted(&own_operation),
        _ => json_body(201, json!({ "id": SESSION_ID }).to_string().as_bytes()),
    };
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/createSession")))
        .respond_with(create)
        .mount(server)
        .await;

    let route = match stage {
        Stage::Create => None,
        Stage::Poll => Some(format!("^{ROOT}{OPERATION}$")),
        Stage::SessionInfo => Some("/sessionInfoResource".to_owned()),
        Stage::Get | Stage::GetJson | Stage::Post | Stage::Patch => {
            Some(format!("^{ROOT}/worksheets"))
        }
        Stage::Refresh => Some(format!("^{ROOT}/refreshSession$")),
        Stage::Close => Some(format!("^{ROOT}/closeSession$")),
    };
    if let Some(route) = route {
        Mock::given(path_regex(route))
            .respond_with(hostile)
            .mount(server)
            .await;
    }
    if stage == Stage::SessionInfo {
        Mock::given(method("GET"))
            .and(path(format!("{ROOT}{OPERATION}")))
            .respond_with(succeeded(json!(own_info)))
            .mount(server)
            .await;
    }
    if stage != Stage::Close {
        mount_close(server).await;
    }
}

/// Mounts on the foreign origin a response that looks like success to any call.
async fn mount_foreign(foreign: &MockServer) {
    let body = json!({
        "id": "foreign-session",
        "status": "succeeded",
        "persistChanges": true,
        "values": [[1]]
    });
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(foreign)
        .await;
}

/// Makes the row's call: createSession when there is no guard, else the stage's call through
/// `guard`. Returns the guard too, unless the call consumed it.
async fn act(
    client: WorkbookClient,
    guard: Option<SessionGuard>,
    stage: Stage,
) -> (Result<Outcome, Error>, Option<SessionGuard>) {
    let Some(guard) = guard else {
        let created = client
            .create_session(&workbook(), SessionOptions::persistent())
            .await;
        return (created.map(|_| Outcome::Created), None);
    };
    let result = match stage {
        Stage::Get => guard
            .get(SHEET)
            .send()
            .await
            .map(|response| Outcome::Status(response.status())),
        Stage::GetJson => guard
            .get(SHEET)
            .send_json::<Range>()
            .await
            .map(|range| Outcome::Rows(range.values.len())),
        Stage::Post => guard
            .post(SHEET)
            .send()
            .await
            .map(|response| Outcome::Status(response.status())),
        Stage::Patch => guard
            .patch(SHEET)
            .json(&json!({ "values": [[1]] }))
            .send()
            .await
            .map(|response| Outcome::Status(response.status())),
        Stage::Refresh => guard.refresh().await.map(|()| Outcome::Done),
        Stage::Close => return (guard.close().await.map(|_| Outcome::Done), None),
        Stage::Create | Stage::Poll | Stage::SessionInfo => {
            unreachable!("stage {stage:?} makes no guarded call")
        }
    };
    (result, Some(guard))
}

/// The origin the client is configured with for one row.
enum Origin<'a> {
    Mock(&'a MockServer),
    Raw(RawServer),
}

impl Origin<'_> {
    fn uri(&self) -> String {
        match self {
            Origin::Mock(server) => server.uri(),
            Origin::Raw(server) => server.origin.clone(),
        }
    }

    /// Returns the path and query of every request received.
    async fn targets(&self) -> Vec<String> {
        match self {
            Origin::Mock(server) => server
                .received_requests()
                .await
                .unwrap_or_default()
                .iter()
                .map(|request| match request.url.query() {
                    Some(query) => format!("{}?{query}", request.url.path()),
                    None => request.url.path().to_owned(),
                })
                .collect(),
            Origin::Raw(server) => server.targets.lock().clone(),
        }
    }
}

/// Runs one row and asserts everything the table promises about it.
async fn run_row(row: Row, own: &MockServer, foreign: &MockServer) {
    let name = row.name;
    let foreign_before = foreign.received_requests().await.unwrap_or_default().len();
    let origin = match row.behaviour {
        Behaviour::Mock(response) => {
            mount_stage(own, row.stage, response).await;
            Origin::Mock(own)
        }
        Behaviour::Raw(raw) => Origin::Raw(RawServer::start(row.stage.route(), raw).await),
    };
    let client = client(&origin.uri());
    let guard = if row.stage.needs_session() {
        let created = client
            .create_session(&workbook(), SessionOptions::persistent())
            .await;
        Some(created.unwrap_or_else(|error| panic!("{name}: the session must open: {error}")))
    } else {
        None
    };
    let deadline = row.stage.deadline(row.recreates);

    let started = Instant::now();
    let mut call = tokio::spawn(act(client.clone(), guard, row.stage));
    let joined = tokio::time::timeout(deadline, &mut call).await;
    let elapsed = started.elapsed();

    if joined.is_err() {
        call.abort();
    }
    let joined =
        joined.unwrap_or_else(|_| panic!("{name}: no result within the deadline {deadline:?}"));
    let (result, guard) =
        joined.unwrap_or_else(|error| panic!("{name}: the call panicked: {error}"));
    assert!(
        row.expected.matches(&result),
        "{name}: expected {:?}, got {result:?}",
        row.expected
    );
    if let Err(error) = &result {
        let message = error.to_string();
        assert!(
            message.contains(row.fragment),
            "{name}: the message {message:?} lacks {:?}",
            row.fragment
        );
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "{name}: the message is not one line: {message:?}"
        );
        assert!(
            !format!("{error:?}").contains(TOKEN),
            "{name}: the error shows the token"
        );
    }
    if row.at_once {
        assert!(
            elapsed < AT_ONCE,
            "{name}: took {elapsed:?}, expected no retry and no wait"
        );
    }
    if row.backs_off {
        // The first backoff is at least half of the initial backoff, jitter included.
        let first_backoff = INITIAL_BACKOFF / 2;
        assert!(
            elapsed >= first_backoff,
            "{name}: took {elapsed:?}, less than the first backoff {first_backoff:?}"
        );
    }

    drop(guard);
    let shutdown = tokio::time::timeout(CLOSE_TIMEOUT + SLACK, client.shutdown(CLOSE_TIMEOUT));
    assert!(
        shutdown.await.is_ok(),
        "{name}: shutdown did not return within its deadline"
    );
    let targets = origin.targets().await;
    let route = row.stage.route();
    let sent = targets
        .iter()
        .filter(|target| target.contains(route))
        .count();
    match row.sent {
        Some(Sent::Exactly(expected)) => {
            assert_eq!(sent, expected, "{name}: requests to {route}: {targets:?}");
        }
        Some(Sent::AtMost(limit)) => {
            assert!(
                sent <= limit,
                "{name}: {sent} requests to {route}, more than {limit}"
            );
        }
        Some(Sent::AtLeast(limit)) => {
            assert!(
                sent >= limit,
                "{name}: {sent} requests to {route}, fewer than {limit}"
            );
        }
        None => {}
    }
    assert!(
        targets.iter().all(|target| !target.contains(TOKEN)),
        "{name}: a request URL carried the token: {targets:?}"
    );
    let foreign_requests = foreign.received_requests().await.unwrap_or_default();
    assert_eq!(
        foreign_requests.len(),
        foreign_before,
        "{name}: the foreign origin received {foreign_requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_give_typed_errors_in_time() {
    let own = Arc::new(MockServer::start().await);
    let foreign = Arc::new(MockServer::start().await);
    mount_foreign(&foreign).await;
    let rows = rows(&own, &foreign);
    assert!(rows.len() >= 30, "the table covers at least 30 cases");

    // Each row runs in its own task, so that one failing row does not hide the others.
    let mut failed = Vec::new();
    for row in rows {
        let name = row.name;
        let (own, foreign) = (Arc::clone(&own), Arc::clone(&foreign));
        let run = tokio::spawn(async move { run_row(row, &own, &foreign).await });
        if run.await.is_err() {
            failed.push(name);
        }
    }

    assert_eq!(
        failed,
        Vec::<&str>::new(),
        "rows that failed, each with its panic above"
    );
    let foreign_requests = foreign.received_requests().await.unwrap_or_default();
    assert_eq!(
        foreign_requests.len(),
        0,
        "the foreign origin received requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_server_serves_normal_session() {
    let server = RawServer::start("/worksheets", Raw::Silent).await;
    let client = client(&server.origin);

    let session = client
        .create_session(&workbook(), SessionOptions::persistent())
        .await
        .expect("the raw server opens a session");
    let closed = session.close().await;

    assert!(closed.is_ok(), "the raw server closes it: {closed:?}");
    let targets = server.targets.lock().clone();
    assert_eq!(
        targets,
        [
            format!("{ROOT}/createSession"),
            format!("{ROOT}/closeSession")
        ],
        "one createSession and one closeSession"
    );
}

/// The maximum number of bytes of a request head that the raw server reads.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// How long the raw server keeps any one connection, whatever it is doing.
const RAW_CONNECTION_LIMIT: Duration = Duration::from_secs(30);

/// A loopback HTTP/1.1 server written at the byte level, for responses wiremock cannot send.
///
/// It responds to createSession with a session, to closeSession with 204, and to requests
/// whose path contains its route with its misbehaviour. Any other request gets 404. Every
/// response closes the connection. Dropping the server stops it and every connection.
struct RawServer {
    origin: String,
    /// The path and query of every request received, in order.
    targets: Arc<Mutex<Vec<String>>>,
    accept: JoinHandle<()>,
}

impl RawServer {
    async fn start(route: &'static str, raw: Raw) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let origin = format!("http://{}", listener.local_addr().expect("a local address"));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&targets);
        let accept = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                connections.spawn(tokio::time::timeout(
                    RAW_CONNECTION_LIMIT,
                    serve(stream, route, raw, recorded),
                ));
                while connections.try_join_next().is_some() {}
            }
        });
        RawServer {
            origin,
            targets,
            accept,
        }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.accept.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    route: &'static str,
    raw: Raw,
    targets: Arc<Mutex<Vec<String>>>,
) {
    let Some(target) = read_request(&mut stream).await else {
        return;
    };
    targets.lock().push(target.clone());
    let path = target.split('?').next().unwrap_or_default();

    // Write errors are expected, because several rows make the client hang up mid-response.
    let _ = if path.contains(route) {
        misbehave(&mut stream, raw).await
    } else if path.ends_with("/createSession") {
        let body = json!({ "id": SESSION_ID, "persistChanges": true }).to_string();
        answer(&mut stream, "201 Created", &body).await
    } else if path.ends_with("/closeSession") {
        answer(&mut stream, "204 No Content", "").await
    } else {
        answer(&mut stream, "404 Not Found", "").await
    };
}

/// Reads one request head and its `Content-Length` body, and returns the request target.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > MAX_REQUEST_HEAD {
            return None;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();

    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut remaining = length.saturating_sub(buffer.len() - head_end);
    while remaining > 0 {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        remaining = remaining.saturating_sub(read);
    }
    head.split(' ').nth(1).map(str::to_owned)
}

async fn answer(stream: &mut TcpStream, status: &str, body: &str) -> io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

async fn misbehave(stream: &mut TcpStream, raw: Raw) -> io::Result<()> {
    match raw {
        Raw::CutBody => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(br#"{"values":"#).await?;
            stream.shutdown().await
        }
        Raw::EndlessChunks => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            let size = 16 * 1024;
            let chunk = format!("{size:x}\r\n{}\r\n", " ".repeat(size));
            // The client should hang up at its limit. The 64 MiB bound only ends a client that does not.
            for _ in 0..4096 {
                stream.write_all(chunk.as_bytes()).await?;
            }
            Ok(())
        }
        Raw::HugeHeaders => {
            let mut head = String::from("HTTP/1.1 200 OK\r\n");
            for index in 0..64 {
                head.push_str(&format!("x-padding-{index}: {}\r\n", "p".repeat(8 * 1024)));
            }
            head.push_str("content-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.shutdown().await
        }
        Raw::NotHttp => {
            stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await?;
            stream.shutdown().await
        }
        Raw::Silent => {
            let mut sink = [0; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok(())
        }
        Raw::Drip => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            for _ in 0..1000 {
                stream.write_all(b" ").await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        }
    }
}
