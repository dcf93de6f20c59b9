//! createSession: the synchronous response (201) and the long-running one (202, then polling
//! the operation and fetching the session it points to).
//!
//! Everything here is untrusted input. The 202's `Location` and the operation's
//! `resourceLocation` are followed only on the configured origin. The operation's status is
//! compared without case, and anything unknown is an error. A session id must be a valid,
//! bounded header value.

use std::time::Duration;

use reqwest::header::{HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};
use tokio::time::Instant;
use tracing::{debug, warn};
use url::Url;

use crate::error::{Error, GraphErrorBody, truncate};
use crate::response::Response;
use crate::retry::{RetryClass, parse_retry_after};
use crate::session_id::SessionId;
use crate::transport::{Call, Core};
use crate::workbook::Workbook;

const CREATE: &str = "createSession";
const POLL: &str = "createSession operation";
const SESSION_INFO: &str = "createSession sessionInfoResource";

/// A session the server created.
pub(crate) struct Created {
    pub(crate) id: SessionId,
    /// The `persistChanges` the server reported, when it reported one.
    pub(crate) persist_reported: Option<bool>,
}

/// Creates a session and returns its id, within the client's create timeout.
pub(crate) async fn create_session(
    core: &Core,
    workbook: &Workbook,
    persistent: bool,
    respond_async: bool,
) -> Result<Created, Error> {
    let limit = core.config.create_timeout;
    let deadline = Instant::now() + limit;
    let work = create_until(core, workbook, persistent, respond_async, deadline);
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or(Err(Error::OperationTimedOut { after: limit }))
}

async fn create_until(
    core: &Core,
    workbook: &Workbook,
    persistent: bool,
    respond_async: bool,
    deadline: Instant,
) -> Result<Created, Error> {
    let url = core.workbook_url(workbook, CREATE)?;
    // Always explicit: a client that left the field out once made sessions read-only.
    let body = if persistent {
        &br#"{"persistChanges":true}"#[..]
    } else {
        &br#"{"persistChanges":false}"#[..]
    };
    let mut call = Call::new(CREATE, Method::POST, url, RetryClass::SessionCall)
        .json_body(bytes::Bytes::from_static(body));
    if respond_async {
        call.headers
            .insert("prefer", HeaderValue::from_static("respond-async"));
    }

    // NOTE: Graph documents repeating a createSession that got 504, and a broken connection
    // is repeated too. If the first attempt did create a session, its id never arrives and
    // that session stays open on the server until it expires.
    let response = core.execute(&call, None).await?;
    match response.status() {
        StatusCode::CREATED | StatusCode::OK => parse_session_info(CREATE, response.bytes()),
        StatusCode::ACCEPTED => {
            let location = operation_location(core, &response)?;
            poll_operation(core, location, deadline).await
        }
        other => Err(Error::invalid_response(
            CREATE,
            format!("unexpected status {other}, expected 201 or 202"),
        )),
    }
}

fn operation_location(core: &Core, response: &Response) -> Result<Url, Error> {
    let location = response
        .headers()
        .get(LOCATION)
        .ok_or_else(|| Error::invalid_response(CREATE, "202 Accepted without a Location header"))?
        .to_str()
        .map_err(|_| Error::invalid_response(CREATE, "Location header is not visible ASCII"))?;
    core.same_origin_url(CREATE, location)
}

/// Polls the operation until it succeeds, fails, or `deadline` passes.
async fn poll_operation(core: &Core, location: Url, deadline: Instant) -> Result<Created, Error> {
    let mut interval = core.config.poll_interval;
    loop {
        let call = Call::new(POLL, Method::GET, location.clone(), RetryClass::SessionCall);
        let wait = match persist(core, &call, interval).await? {
            Persisted::Response(response) => {
                match parse_operation(response.bytes())? {
                    Operation::Pending(status) => debug!(status, "createSession still running"),
                    Operation::Succeeded { resource_location } => {
                        return fetch_session_info(core, &resource_location, deadline).await;
                    }
                }
                poll_wait(&response, interval, core.config.max_poll_interval)
            }
            Persisted::Wait(wait) => wait,
        };

        if Instant::now() + wait > deadline {
            return Err(Error::OperationTimedOut {
                after: core.config.create_timeout,
            });
        }
        tokio::time::sleep(wait).await;
        interval = interval.mul_f64(1.5).min(core.config.max_poll_interval);
    }
}

/// The outcome of one call that the caller repeats until its deadline.
enum Persisted {
    Response(Response),
    /// The call failed in a way that may pass; try again after this wait.
    Wait(Duration),
}

/// Sends `call` once, through the retry policy, and turns a failure that may pass into a
/// wait instead of an error.
///
/// Once the server has accepted a long-running createSession, the session will exist whether
/// or not this client learns its id, and a session whose id is never learnt cannot be closed.
/// So the operation polls and the session lookup outlast the retry policy, up to the create
/// deadline, rather than give up after its last attempt.
async fn persist(core: &Core, call: &Call<'_>, interval: Duration) -> Result<Persisted, Error> {
    match core.execute(call, None).await {
        Ok(response) => Ok(Persisted::Response(response)),
        Err(error) if error.is_retryable() => {
            let wait = error
                .graph()
                .and_then(|graph| graph.retry_after)
                .filter(|wait| !wait.is_zero())
                .unwrap_or(interval)
                .min(core.config.max_poll_interval);
            warn!(operation = call.operation, %error, ?wait, "still trying, so the session that the server creates is not lost");
            Ok(Persisted::Wait(wait))
        }
        Err(error) => Err(error),
    }
}

/// Returns how long to wait before the next poll: the server's `Retry-After` when it sent
/// one, else the growing interval, never more than `max`.
///
/// A zero `Retry-After` (`0` or a date in the past) counts as none, because following it
/// would poll without any pause until the create timeout.
fn poll_wait(response: &Response, interval: Duration, max: Duration) -> Duration {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| parse_retry_after(value, std::time::SystemTime::now()))
        .filter(|wait| !wait.is_zero())
        .unwrap_or(interval)
        .min(max)
}

/// The state of a long-running createSession, from one poll.
#[derive(Debug)]
pub(crate) enum Operation {
    /// `notStarted` or `running`, as the server spelled it.
    Pending(String),
    Succeeded {
        resource_location: String,
    },
}

/// Parses a workbookOperation: `{"id", "status", "resourceLocation"?, "error"?}`.
///
/// `failed` and every status this crate does not know are errors, never "ready".
pub(crate) fn parse_operation(body: &[u8]) -> Result<Operation, Error> {
    let operation = parse_object(POLL, body)?;
    let status = string_field(POLL, &operation, "status")?
        .ok_or_else(|| Error::invalid_response(POLL, "operation has no status"))?;

    match status.to_ascii_lowercase().as_str() {
        "notstarted" | "running" => Ok(Operation::Pending(truncate(status))),
        // `completed` is the name an older page of the documentation uses for success.
        "succeeded" | "completed" => {
            let location =
                string_field(POLL, &operation, "resourceLocation")?.ok_or_else(|| {
                    Error::invalid_response(POLL, "operation succeeded without a resourceLocation")
                })?;
            Ok(Operation::Succeeded {
                resource_location: location.to_owned(),
            })
        }
        "failed" => Err(operation_failure(&operation)),
        _ => Err(Error::UnknownOperationStatus {
            status: truncate(status),
        }),
    }
}

async fn fetch_session_info(
    core: &Core,
    resource_location: &str,
    deadline: Instant,
) -> Result<Created, Error> {
    // Used exactly as given, query string included.
    let url = core.same_origin_url(POLL, resource_location)?;
    let call = Call::new(SESSION_INFO, Method::GET, url, RetryClass::SessionCall);
    let interval = core.config.poll_interval;
    loop {
        match persist(core, &call, interval).await? {
            Persisted::Response(response) => {
                return parse_session_info(SESSION_INFO, response.bytes());
            }
            Persisted::Wait(wait) => {
                if Instant::now() + wait > deadline {
                    return Err(Error::OperationTimedOut {
                        after: core.config.create_timeout,
                    });
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

fn operation_failure(operation: &Map<String, Value>) -> Error {
    let error = operation
        .get("error")
        .cloned()
        .and_then(GraphErrorBody::from_value)
        .unwrap_or_else(|| GraphErrorBody {
            message: "the operation reported no error details".to_owned(),
            ..GraphErrorBody::default()
        });
    Error::OperationFailed { error }
}

/// Parses `{"id": "...", "persistChanges": bool}`, ignoring other fields.
pub(crate) fn parse_session_info(operation: &str, body: &[u8]) -> Result<Created, Error> {
    let object = parse_object(operation, body)?;
    let id = string_field(operation, &object, "id")?
        .ok_or_else(|| Error::invalid_response(operation, "session id is missing"))?;
    let id = SessionId::parse(id, operation)?;
    let persist_reported = match object.get("persistChanges") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(persist)) => Some(*persist),
        Some(_) => {
            return Err(Error::invalid_response(
                operation,
                "persistChanges is not a boolean",
            ));
        }
    };
    Ok(Created {
        id,
        persist_reported,
    })
}

fn parse_object(operation: &str, body: &[u8]) -> Result<Map<String, Value>, Error> {
    if body.is_empty() {
        return Err(Error::invalid_response(operation, "the body is empty"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(Error::invalid_response(
            operation,
            "the body is not a JSON object",
        )),
        Err(error) => Err(Error::invalid_response(
            operation,
            format!("the body is not valid JSON: {error}"),
        )),
    }
}

/// Returns a string field, `None` when it is absent or null, and an error for another type.
fn string_field<'a>(
    operation: &str,
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, Error> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Error::invalid_response(
            operation,
            format!("field {name} is not a string"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_info_needs_a_string_id() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "empty"),
            (b"[]", "not a JSON object"),
            (b"{\"id\":", "not valid JSON"),
            (b"{}", "missing"),
            (b"{\"id\":7}", "not a string"),
            (
                b"{\"id\":\"a\",\"persistChanges\":\"yes\"}",
                "not a boolean",
            ),
        ];

        for (body, expected) in cases {
            let error = parse_session_info(CREATE, body).err().expect("an error");
            assert!(
                error.to_string().contains(expected),
                "{:?} gave {error}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn session_info_ignores_unknown_fields() {
        let body = br#"{"@odata.context":"x","id":"abc","persistChanges":true}"#;

        let created = parse_session_info(CREATE, body).expect("a valid session");

        assert_eq!(created.persist_reported, Some(true));
    }
}
