//! Sending one call with authentication, the retry policy, size limits and the session
//! cooldown, and turning the response into a [`Response`] or an [`Error`].
//!
//! Every request of the crate goes through [`Core::execute`]: session requests, the session
//! calls, operation polls and closes. It holds no lock across an `.await`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use reqwest::{Method, StatusCode};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::debug;
use url::Url;

use crate::auth::Auth;
use crate::client::Config;
use crate::error::{Error, GraphError, GraphErrorBody, truncate};
use crate::keep_alive::Schedule;
use crate::response::Response;
use crate::retry::{RetryClass, RetryPolicy, parse_retry_after};
use crate::shutdown::InFlight;
use crate::state::Registry;
use crate::stats::Counters;
use crate::workbook::Workbook;

/// The header that carries the session id.
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("workbook-session-id");

/// The maximum number of bytes read from an error response; a longer body is dropped, not failed on, because
/// the status alone identifies the failure.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The state shared by the client, its guards and its background tasks.
pub(crate) struct Core {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Url,
    pub(crate) auth: Auth,
    pub(crate) config: Config,
    pub(crate) counters: Counters,
    /// The instant that the `AtomicU64` timestamps of this client count from.
    pub(crate) epoch: Instant,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) schedule: Schedule,
    pub(crate) in_flight: Arc<InFlight>,
    /// Tells the close worker to stop every job, when shutdown's deadline passed.
    pub(crate) abort_closes: Notify,
}

/// One HTTP request to send, possibly several times.
pub(crate) struct Call<'a> {
    pub(crate) operation: &'a str,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) class: RetryClass,
    pub(crate) timeout: Option<Duration>,
    /// A policy that replaces the client's for this call.
    pub(crate) retry: Option<&'a RetryPolicy>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(operation: &'a str, method: Method, url: Url, class: RetryClass) -> Call<'a> {
        Call {
            operation,
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            class,
            timeout: None,
            retry: None,
        }
    }

    pub(crate) fn json_body(mut self, body: Bytes) -> Call<'a> {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Some(body);
        self
    }
}

/// A session's `Retry-After` cooldown: no request of the session is sent before it ends.
#[derive(Debug, Default)]
pub(crate) struct Cooldown {
    /// Nanoseconds after [`Core::epoch`]; 0 means none.
    until: AtomicU64,
}

impl Cooldown {
    fn extend(&self, core: &Core, until: Instant) {
        let nanos = core.nanos_since_epoch(until).max(1);
        self.until.fetch_max(nanos, Ordering::AcqRel);
    }

    pub(crate) fn remaining(&self, core: &Core) -> Duration {
        let until = self.until.load(Ordering::Acquire);
        let now = core.nanos_since_epoch(Instant::now());
        Duration::from_nanos(until.saturating_sub(now))
    }
}

/// The session a call is sent in: the session id to attach and the cooldown to honour.
#[derive(Clone, Copy)]
pub(crate) struct SessionContext<'a> {
    pub(crate) id: &'a HeaderValue,
    pub(crate) cooldown: &'a Cooldown,
}

impl Core {
    pub(crate) fn nanos_since_epoch(&self, instant: Instant) -> u64 {
        let nanos = instant.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    pub(crate) fn workbook_url(&self, workbook: &Workbook, path: &str) -> Result<Url, Error> {
        workbook_url(&self.base, workbook, path)
    }

    pub(crate) fn same_origin_url(&self, operation: &str, text: &str) -> Result<Url, Error> {
        same_origin_url(&self.base, operation, text)
    }

    fn policy<'a>(&'a self, call: &Call<'a>) -> &'a RetryPolicy {
        call.retry.unwrap_or(&self.config.retry)
    }

    /// Sends `call`, retrying per its policy (by default the client's), and returns the
    /// successful response.
    pub(crate) async fn execute(
        &self,
        call: &Call<'_>,
        session: Option<SessionContext<'_>>,
    ) -> Result<Response, Error> {
        let policy = self.policy(call);
        let started = Instant::now();
        let mut attempt = 0;
        let mut token_renewed = false;
        loop {
            attempt += 1;
            if let Some(session) = session {
                self.wait_cooldown(call, session.cooldown, started).await?;
            }

            let failure = match self.send_once(call, session, token_renewed).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };

            if failure.unauthorized() && self.auth.can_refresh() && !token_renewed {
                debug!(
                    operation = call.operation,
                    "token rejected, asking the provider again"
                );
                token_renewed = true;
                attempt -= 1;
                continue;
            }
            // The cooldown binds the session's next requests too, so it is set even when
            // this call is not retried.
            if let (Some(session), Some(retry_after)) = (session, failure.retry_after()) {
                session.cooldown.extend(self, Instant::now() + retry_after);
            }
            let Some(delay) = self.retry_delay(call, &failure, attempt) else {
                return Err(failure.into_error(call.operation));
            };
            if started.elapsed() + delay > policy.budget() {
                return Err(failure.into_budget_error(call.operation, delay));
            }

            Counters::add(&self.counters.retries);
            debug!(operation = call.operation, attempt, ?delay, error = %failure.describe(), "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn wait_cooldown(
        &self,
        call: &Call<'_>,
        cooldown: &Cooldown,
        started: Instant,
    ) -> Result<(), Error> {
        let remaining = cooldown.remaining(self);
        if remaining.is_zero() {
            return Ok(());
        }
        if started.elapsed() + remaining > self.policy(call).budget() {
            return Err(Error::Throttled {
                operation: call.operation.to_owned(),
                retry_after: remaining,
                source: Box::new(GraphError {
                    operation: call.operation.to_owned(),
                    status: StatusCode::TOO_MANY_REQUESTS,
                    body: None,
                    request_id: None,
                    retry_after: Some(remaining),
                }),
            });
        }
        debug!(
            operation = call.operation,
            ?remaining,
            "waiting for the session's cooldown"
        );
        tokio::time::sleep(remaining).await;
        Ok(())
    }

    /// Returns the wait before the next attempt, or `None` when `failure` is final.
    fn retry_delay(&self, call: &Call<'_>, failure: &Failure, attempt: u32) -> Option<Duration> {
        let policy = self.policy(call);
        if attempt >= policy.attempts() {
            return None;
        }
        let retryable = match failure {
            Failure::Status(graph) => match graph.status.as_u16() {
                429 | 503 => true,
                504 => call.class.repeats_safely(),
                _ => false,
            },
            Failure::Transport(error) if error.is_connect() => true,
            Failure::Transport(_) => call.class.repeats_safely(),
            Failure::Final(_) => false,
        };
        if !retryable {
            return None;
        }
        // A zero `Retry-After` (`0` or a date in the past) falls back to the backoff, so that
        // an overloaded server does not get every remaining attempt at once.
        Some(
            failure
                .retry_after()
                .filter(|wait| !wait.is_zero())
                .unwrap_or_else(|| policy.backoff(attempt)),
        )
    }

    async fn send_once(
        &self,
        call: &Call<'_>,
        session: Option<SessionContext<'_>>,
        force_refresh: bool,
    ) -> Result<Response, Failure> {
        let authorization = self
            .auth
            .header(force_refresh)
            .await
            .map_err(Failure::Final)?;
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .headers(call.headers.clone())
            .header(AUTHORIZATION, authorization)
            .timeout(call.timeout.unwrap_or(self.config.request_timeout));
        if let Some(session) = session {
            request = request.header(SESSION_HEADER, session.id.clone());
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }

        let mut response = request.send().await.map_err(Failure::Transport)?;
        let status = response.status();
        // Reading the body does not need the headers, so they are moved out, not copied.
        let headers = std::mem::take(response.headers_mut());
        if status.is_success() {
            let body = read_body(response, self.config.max_response_bytes, call.operation).await?;
            return Ok(Response::new(status, headers, body));
        }
        if status.is_redirection() {
            return Err(Failure::Final(redirect_error(
                call.operation,
                status,
                &headers,
            )));
        }
        let body = read_body(response, MAX_ERROR_BODY, call.operation)
            .await
            .ok();
        Err(Failure::Status(Box::new(graph_error(
            call.operation,
            status,
            &headers,
            body,
        ))))
    }
}

/// The failure of one attempt.
enum Failure {
    Status(Box<GraphError>),
    Transport(reqwest::Error),
    Final(Error),
}

impl Failure {
    fn unauthorized(&self) -> bool {
        matches!(self, Failure::Status(graph) if graph.status == StatusCode::UNAUTHORIZED)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status(graph) => graph.retry_after,
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Failure::Status(graph) => graph.to_string(),
            Failure::Transport(error) => error.to_string(),
            Failure::Final(error) => error.to_string(),
        }
    }

    fn into_error(self, operation: &str) -> Error {
        match self {
            Failure::Status(graph) => Error::Graph(graph),
            Failure::Transport(source) => Error::Transport {
                operation: operation.to_owned(),
                source,
            },
            Failure::Final(error) => error,
        }
    }

    /// Returns the error for a wait that would end after the retry budget.
    fn into_budget_error(self, operation: &str, delay: Duration) -> Error {
        match self {
            // Only a wait the server asked for is reported as throttling. A backoff of this
            // crate's own that runs past the budget reports the last response instead.
            Failure::Status(graph) if graph.retry_after.is_some_and(|wait| !wait.is_zero()) => {
                Error::Throttled {
                    operation: operation.to_owned(),
                    retry_after: delay,
                    source: graph,
                }
            }
            other => other.into_error(operation),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        match error {
            // A connection broken while the body was read may be retried like one broken
            // before the headers arrived.
            Error::Transport { source, .. } => Failure::Transport(source),
            other => Failure::Final(other),
        }
    }
}

/// Reads a response body, failing once it grows past `limit` bytes.
async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    operation: &str,
) -> Result<Bytes, Error> {
    let too_large = || Error::ResponseTooLarge {
        operation: operation.to_owned(),
        limit,
    };
    let length = response.content_length();
    if length.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    // The declared length is at most `limit` here, so reserving it up front is bounded.
    let capacity = length.map_or(0, |length| length as usize);
    let mut body = BytesMut::with_capacity(capacity);
    loop {
        let chunk = response.chunk().await.map_err(|source| Error::Transport {
            operation: operation.to_owned(),
            source,
        })?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn graph_error(
    operation: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: Option<Bytes>,
) -> GraphError {
    let body = body.as_deref().and_then(GraphErrorBody::parse);
    let header_request_id = headers
        .get("request-id")
        .and_then(|value| value.to_str().ok())
        .map(truncate);
    let request_id = body
        .as_ref()
        .and_then(|body| body.request_id.clone())
        .or(header_request_id);
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    GraphError {
        operation: operation.to_owned(),
        status,
        body,
        request_id,
        retry_after,
    }
}

fn redirect_error(operation: &str, status: StatusCode, headers: &HeaderMap) -> Error {
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map_or_else(|| "no Location".to_owned(), truncate);
    Error::invalid_response(
        operation,
        format!(
            "unexpected redirect {status} to {location:?}; redirects are not followed so that \
             the token stays on the configured origin"
        ),
    )
}

/// Builds the URL of `path` below the workbook root and checks that it stays there.
///
/// `path` is relative to the workbook root (`worksheets('Sheet1')/range(address='A1')`);
/// a leading `/` is ignored. `#` is encoded because a fragment is never sent.
pub(crate) fn workbook_url(base: &Url, workbook: &Workbook, path: &str) -> Result<Url, Error> {
    join_root(&root_url(base, workbook)?, path)
}

/// Parses a URL the server sent (a `Location` or `resourceLocation`) and accepts it only on
/// the configured origin and without user credentials, so that neither the token nor the
/// session id goes elsewhere.
pub(crate) fn same_origin_url(base: &Url, operation: &str, text: &str) -> Result<Url, Error> {
    let url = base
        .join(text)
        .map_err(|error| Error::invalid_response(operation, format!("invalid URL: {error}")))?;
    if url.origin() != base.origin() {
        return Err(Error::ForeignOrigin {
            operation: operation.to_owned(),
            url: truncate(text),
            expected: base.origin().ascii_serialization(),
        });
    }
    // reqwest would send these credentials as a second `Authorization` header next to the token.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid_response(
            operation,
            "the URL contains user credentials, so nothing was sent to it",
        ));
    }
    Ok(url)
}

/// Parses the URL of a workbook's root, with a trailing `/`, once per session, so that each
/// request only resolves its relative path against it.
pub(crate) fn root_url(base: &Url, workbook: &Workbook) -> Result<Url, Error> {
    // The base URL has no query or fragment (the builder rejects them), so its text ends with
    // its path, and the workbook root is made of encoded segments without dot segments.
    let expected_path = format!("{}{}/", base.path().trim_end_matches('/'), workbook.root());
    let text = format!(
        "{}{}/",
        base.as_str().trim_end_matches('/'),
        workbook.root()
    );
    let root = Url::parse(&text)
        .map_err(|error| Error::invalid_argument("workbook", workbook.root(), error.to_string()))?;
    if root.path() != expected_path {
        return Err(Error::invalid_argument(
            "workbook",
            workbook.root(),
            "its root does not parse to itself below the base URL",
        ));
    }
    Ok(root)
}

/// Resolves `path`, relative to the workbook root, against the parsed `root` from
/// [`root_url`]. It rejects control characters, encodes `#`, and accepts only a result on the
/// root's origin and below the root.
pub(crate) fn join_root(root: &Url, path: &str) -> Result<Url, Error> {
    let path = path.trim_start_matches('/');
    if path.chars().any(char::is_control) {
        return Err(Error::invalid_argument(
            "request path",
            path,
            "it contains control characters",
        ));
    }
    if path.is_empty() {
        let mut url = root.clone();
        let trimmed = root.path().trim_end_matches('/').to_owned();
        url.set_path(&trimmed);
        return Ok(url);
    }
    let joined = if path.contains('#') {
        root.join(&path.replace('#', "%23"))
    } else {
        root.join(path)
    };
    let url =
        joined.map_err(|error| Error::invalid_argument("request path", path, error.to_string()))?;
    let same_origin = url.scheme() == root.scheme()
        && url.host_str() == root.host_str()
        && url.port_or_known_default() == root.port_or_known_default();
    if !same_origin || !url.path().starts_with(root.path()) {
        return Err(Error::invalid_argument(
            "request path",
            path,
            "it leads outside the workbook root",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workbook_url_resolves_paths() {
        let base = Url::parse("https://graph.microsoft.com/v1.0").expect("a valid URL");
        let workbook = Workbook::drive_item("b!d", "i").expect("valid ids");
        let root = "https://graph.microsoft.com/v1.0/drives/b!d/items/i/workbook";
        let cases = [
            ("", root.to_owned()),
            ("closeSession", format!("{root}/closeSession")),
            (
                "/worksheets('Sheet 1')/range(address='A1:B2')",
                format!("{root}/worksheets('Sheet%201')/range(address='A1:B2')"),
            ),
            (
                "worksheets('Q#1')/usedRange?$select=address",
                format!("{root}/worksheets('Q%231')/usedRange?$select=address"),
            ),
            (
                "tables/item(name='T')",
                format!("{root}/tables/item(name='T')"),
            ),
        ];

        for (path, expected) in cases {
            let url = workbook_url(&base, &workbook, path).expect("a path below the root");
            assert_eq!(url.as_str(), expected, "{path:?}");
        }
    }

    #[test]
    fn join_root_rejects_escapes() {
        let base = Url::parse("https://graph.microsoft.com/v1.0").expect("a valid URL");
        let workbook = Workbook::me_item("i").expect("a valid id");
        let root = root_url(&base, &workbook).expect("a valid root");

        for path in [
            "../x",
            "a/../../x",
            "%2e%2e/x",
            "https://example.com/x",
            "a\nb",
        ] {
            assert!(join_root(&root, path).is_err(), "{path:?} must be rejected");
        }
    }
}
