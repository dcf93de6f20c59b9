//! The crate's error type and the parsed Graph error body.
//!
//! Server responses are untrusted, so everything taken from them is bounded in length and
//! stripped of control characters before it is stored in an error.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::session_id::Fingerprint;

/// A boxed error from a [`TokenProvider`](crate::TokenProvider) or another caller-supplied part.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The maximum number of characters kept from a server-supplied message or code.
const MAX_SERVER_TEXT: usize = 512;

/// The second-level codes that Graph documents for a session that is gone or unusable.
const SESSION_RECREATABLE: &str = "invalidSessionReCreatable";

/// Codes listed by Graph's error documentation; a 502 or 503 inside a session without any of
/// them means the session is gone.
const LISTED_CODES: &[&str] = &[
    "invalidSessionReCreatable",
    "invalidSessionNotFound",
    "invalidSessionAuthentication",
    "invalidSessionAccessConflict",
    "invalidSessionRestricted",
    "invalidSessionUnexpected",
    "invalidSessionUnsupportedWorkbook",
    "tooManyRequestsUncategorized",
    "serviceUnavailableUncategorized",
    "transientFailure",
    "internalServerErrorUncategorized",
    "accessConflict",
    "gatewayTimeoutUncategorized",
];

/// Errors returned by this crate.
///
/// Use the predicates ([`is_retryable`](Error::is_retryable),
/// [`is_session_expired`](Error::is_session_expired), [`status`](Error::status),
/// [`graph`](Error::graph)) rather than matching on every variant: new variants may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting or argument is invalid.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        /// The kind of value (for example `base URL`).
        what: &'static str,
        /// The rejected value, never a secret.
        value: String,
        /// The reason it was rejected.
        reason: String,
    },

    /// The client was built or used outside a tokio runtime.
    #[error("no tokio runtime is running: build the client inside a tokio runtime")]
    NoRuntime,

    /// The request could not be sent or its response could not be read.
    #[error("{operation} failed: {}", transport_failure(source))]
    Transport {
        /// The operation, such as `createSession` or `GET worksheets`.
        operation: String,
        /// The underlying HTTP client error.
        #[source]
        source: reqwest::Error,
    },

    /// The server responded with a non-success status.
    #[error(transparent)]
    Graph(Box<GraphError>),

    /// The server's response could not be understood.
    #[error("invalid response to {operation}: {reason}")]
    InvalidResponse {
        /// The operation whose response was invalid.
        operation: String,
        /// The problem found in it.
        reason: String,
    },

    /// The response body was larger than the configured limit.
    #[error("response to {operation} exceeds the limit of {limit} bytes")]
    ResponseTooLarge {
        /// The operation whose response was too large.
        operation: String,
        /// The configured limit in bytes.
        limit: usize,
    },

    /// The server pointed to a URL outside the configured Graph origin; nothing was sent there.
    #[error(
        "{operation} pointed to {url:?}, outside the configured origin {expected}; nothing was sent there"
    )]
    ForeignOrigin {
        /// The operation whose response contained the URL.
        operation: String,
        /// The URL, truncated.
        url: String,
        /// The configured origin (scheme, host and port).
        expected: String,
    },

    /// A long-running createSession finished with the status `failed`.
    #[error("createSession operation failed: {error}")]
    OperationFailed {
        /// The error object of the operation.
        error: GraphErrorBody,
    },

    /// A long-running createSession reported a status this crate does not know.
    #[error("createSession operation reported the unknown status {status:?}")]
    UnknownOperationStatus {
        /// The status, truncated.
        status: String,
    },

    /// A long-running createSession did not finish within the configured deadline.
    #[error("createSession operation did not finish within {after:?}")]
    OperationTimedOut {
        /// The configured deadline.
        after: Duration,
    },

    /// An operation got no response within its time limit, such as a closeSession that ran
    /// past the client's close timeout.
    #[error("{operation} timed out: no response within {after:?}")]
    TimedOut {
        /// The operation, such as `closeSession`.
        operation: String,
        /// The time limit that passed.
        after: Duration,
    },

    /// The server asked to wait longer than the remaining retry budget.
    #[error(
        "{operation} throttled: the server asked to wait {retry_after:?}, beyond the retry budget"
    )]
    Throttled {
        /// The throttled operation.
        operation: String,
        /// How long the server asked to wait.
        retry_after: Duration,
        /// The response that asked for the wait.
        #[source]
        source: Box<GraphError>,
    },

    /// A non-persistent session expired on the server: its edits are lost.
    #[error("session {session} expired on the server and its unsaved edits are lost")]
    SessionExpired {
        /// The session's fingerprint.
        session: Fingerprint,
    },

    /// The session was closed (by [`WorkbookClient::shutdown`](crate::WorkbookClient::shutdown)
    /// or a terminal error), so it takes no more requests.
    #[error("session {session} is closed")]
    SessionClosed {
        /// The session's fingerprint.
        session: Fingerprint,
    },

    /// The client is shutting down and takes no new sessions.
    #[error("the client is shut down and takes no new sessions")]
    ShutDown,

    /// The token provider failed.
    #[error("failed to get an access token")]
    Token {
        /// The provider's error.
        #[source]
        source: BoxError,
    },

    /// The background close worker stopped before it could reply, usually because its runtime
    /// shut down.
    #[error("the close worker stopped before closing session {session}")]
    WorkerStopped {
        /// The session's fingerprint.
        session: Fingerprint,
    },

    /// A request body could not be serialized to JSON.
    #[error("failed to serialize the request body of {operation}")]
    Serialize {
        /// The operation whose body failed.
        operation: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// A response body could not be deserialized into the requested type.
    #[error("failed to deserialize the response to {operation}")]
    Deserialize {
        /// The operation whose response failed.
        operation: String,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Returns the HTTP status of a Graph error, if the server responded.
    pub fn status(&self) -> Option<StatusCode> {
        self.graph().map(|graph| graph.status)
    }

    /// Returns the Graph error, if this error is a non-success response from the server.
    pub fn graph(&self) -> Option<&GraphError> {
        match self {
            Error::Graph(graph) => Some(graph),
            Error::Throttled { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Returns `true` when repeating the same request later may succeed: throttling, 503, 504
    /// and transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Graph(graph) => graph.is_retryable(),
            Error::Throttled { .. } | Error::Transport { .. } => true,
            _ => false,
        }
    }

    /// Returns `true` when the session is gone on the server: the response was
    /// `invalidSessionReCreatable`, or the session was found expired.
    pub fn is_session_expired(&self) -> bool {
        match self {
            Error::SessionExpired { .. } => true,
            Error::Graph(graph) => graph.has_code(SESSION_RECREATABLE),
            _ => false,
        }
    }

    /// Returns `true` for a request or response that timed out.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Transport { source, .. } => source.is_timeout(),
            Error::OperationTimedOut { .. } | Error::TimedOut { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn invalid_response(operation: &str, reason: impl Into<String>) -> Error {
        Error::InvalidResponse {
            operation: operation.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_argument(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        Error::InvalidArgument {
            what,
            value: truncate(&value.into()),
            reason: reason.into(),
        }
    }
}

/// A non-success response from Graph, with the parsed error body.
#[derive(Debug, Clone)]
pub struct GraphError {
    /// The operation, such as `createSession` or `PATCH worksheets('Sheet1')/range(...)`.
    pub operation: String,
    /// The HTTP status.
    pub status: StatusCode,
    /// The error body, when the server sent one in Graph's shape.
    pub body: Option<GraphErrorBody>,
    /// The `request-id` from the body or the response headers.
    pub request_id: Option<String>,
    /// The delay from the `Retry-After` header, when present and valid.
    pub retry_after: Option<Duration>,
}

impl GraphError {
    /// Returns the codes from the top level to the innermost, as the server sent them.
    pub fn codes(&self) -> &[String] {
        self.body.as_ref().map_or(&[], |body| &body.codes)
    }

    /// Returns the second-level code when present, else the top-level code.
    ///
    /// Graph documents that clients decide on the second-level code first.
    pub fn code(&self) -> Option<&str> {
        let codes = self.codes();
        codes.get(1).or_else(|| codes.first()).map(String::as_str)
    }

    /// Returns `true` when any code in the chain equals `code`, ignoring ASCII case.
    pub fn has_code(&self, code: &str) -> bool {
        self.codes().iter().any(|c| c.eq_ignore_ascii_case(code))
    }

    /// Returns `true` for 429, 503 and 504 responses.
    pub fn is_retryable(&self) -> bool {
        matches!(self.status.as_u16(), 429 | 503 | 504)
    }

    /// Returns `true` when the answer, received inside a session, means the session is gone:
    /// `invalidSessionReCreatable`, or a 502 or 503 that carries none of Graph's listed codes
    /// and no `Retry-After`.
    pub(crate) fn means_session_gone(&self) -> bool {
        if self.has_code(SESSION_RECREATABLE) {
            return true;
        }
        let unlisted = !self
            .codes()
            .iter()
            .any(|code| LISTED_CODES.iter().any(|l| l.eq_ignore_ascii_case(code)));
        match self.status.as_u16() {
            502 => unlisted,
            503 => unlisted && self.retry_after.is_none(),
            _ => false,
        }
    }

    /// Returns `true` for a terminal session code other than `invalidSessionReCreatable`.
    pub fn is_session_terminal(&self) -> bool {
        self.codes().iter().any(|code| {
            let prefix = "invalidSession";
            code.len() > prefix.len()
                && code
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
                && !code.eq_ignore_ascii_case(SESSION_RECREATABLE)
        })
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} returned {}", self.operation, self.status)?;
        if let Some(body) = &self.body {
            write!(f, ": {body}")?;
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " (request-id {request_id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphError {}

/// A Graph error object: `{"code", "message", "innerError": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphErrorBody {
    /// The codes from the top level to the innermost.
    pub codes: Vec<String>,
    /// The innermost non-empty message.
    pub message: String,
    /// The `request-id` found at any level.
    pub request_id: Option<String>,
    /// The `client-request-id` found at any level.
    pub client_request_id: Option<String>,
    /// The `date` found at any level.
    pub date: Option<String>,
}

impl fmt::Display for GraphErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.codes.is_empty() {
            f.write_str("no error code")?;
        } else {
            f.write_str(&self.codes.join("/"))?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// The maximum depth of nested `innerError` objects that is followed.
const MAX_ERROR_DEPTH: usize = 8;

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: RawErrorObject,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawErrorObject {
    code: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
    #[serde(rename = "innerError", alias = "innererror")]
    inner_error: Option<Box<RawErrorObject>>,
    #[serde(rename = "request-id")]
    request_id: Option<serde_json::Value>,
    #[serde(rename = "client-request-id")]
    client_request_id: Option<serde_json::Value>,
    date: Option<serde_json::Value>,
}

impl GraphErrorBody {
    /// Parses a response body of the shape `{"error": {...}}`.
    ///
    /// Returns `None` when the body is not JSON or has no `error` object. Values of unexpected
    /// types are ignored rather than rejected, because an error body only adds detail to a
    /// status that is already known.
    pub fn parse(body: &[u8]) -> Option<GraphErrorBody> {
        let envelope: ErrorEnvelope = serde_json::from_slice(body).ok()?;
        Some(Self::from_object(&envelope.error))
    }

    /// Parses an error object without the `{"error": ...}` envelope, as a long-running
    /// operation carries it.
    pub(crate) fn from_value(value: serde_json::Value) -> Option<GraphErrorBody> {
        let object: RawErrorObject = serde_json::from_value(value).ok()?;
        Some(Self::from_object(&object))
    }

    fn from_object(top: &RawErrorObject) -> GraphErrorBody {
        let mut body = GraphErrorBody::default();
        let mut level = Some(top);
        let mut depth = 0;
        while let Some(object) = level {
            if depth == MAX_ERROR_DEPTH {
                break;
            }
            if let Some(code) = text_of(&object.code) {
                body.codes.push(code);
            }
            if let Some(message) = text_of(&object.message) {
                body.message = message;
            }
            body.request_id = text_of(&object.request_id).or(body.request_id.take());
            body.client_request_id =
                text_of(&object.client_request_id).or(body.client_request_id.take());
            body.date = text_of(&object.date).or(body.date.take());
            level = object.inner_error.as_deref();
            depth += 1;
        }
        body
    }
}

/// Describes at which step a transport error happened, without repeating the source's text.
fn transport_failure(source: &reqwest::Error) -> &'static str {
    if source.is_connect() {
        "could not connect to the server"
    } else if source.is_timeout() {
        "no complete response within the request timeout"
    } else if source.is_body() || source.is_decode() {
        "the connection broke while the response body was read"
    } else {
        "the connection broke or the response was not valid HTTP"
    }
}

fn text_of(value: &Option<serde_json::Value>) -> Option<String> {
    match value {
        Some(serde_json::Value::String(text)) if !text.is_empty() => Some(truncate(text)),
        _ => None,
    }
}

/// Returns `text` cut to [`MAX_SERVER_TEXT`] characters, with control characters replaced, so
/// that server-supplied text cannot forge log lines or grow without bound.
pub(crate) fn truncate(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_SERVER_TEXT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_SERVER_TEXT).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_code_chain_and_request_id() {
        let body = br#"{"error":{"code":"itemNotFound","message":"outer","innerError":{"code":"invalidSessionReCreatable","message":"inner","request-id":"r-1","date":"2026-01-01"}}}"#;

        let parsed = GraphErrorBody::parse(body).expect("a Graph error body");

        assert_eq!(parsed.codes, ["itemNotFound", "invalidSessionReCreatable"]);
        assert_eq!(parsed.message, "inner", "the innermost message wins");
        assert_eq!(parsed.request_id.as_deref(), Some("r-1"));
    }

    #[test]
    fn parse_ignores_wrong_types() {
        let body = br#"{"error":{"code":42,"message":["x"],"innerError":"nope"}}"#;

        let parsed = GraphErrorBody::parse(body);

        assert_eq!(
            parsed, None,
            "an innerError of the wrong type fails the parse"
        );
    }

    #[test]
    fn parse_stops_at_max_depth() {
        let mut body = String::from(r#"{"error":"#);
        for _ in 0..50 {
            body.push_str(r#"{"code":"c","innerError":"#);
        }
        body.push_str("{}");
        body.push_str(&"}".repeat(51));

        let parsed = GraphErrorBody::parse(body.as_bytes()).expect("a Graph error body");

        assert_eq!(parsed.codes.len(), MAX_ERROR_DEPTH);
    }

    #[test]
    fn truncate_replaces_control_characters() {
        assert_eq!(truncate("a\r\nb"), "a  b");
        assert_eq!(
            truncate(&"x".repeat(600)).chars().count(),
            MAX_SERVER_TEXT + 1
        );
    }
}
