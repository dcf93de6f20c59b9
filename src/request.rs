//! Requests sent through a [`SessionGuard`]: building them, and sending them with the session
//! header, the per-session request slots, and recovery when the session expired.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tracing::{Instrument, debug_span, info, warn};

use crate::close_queue::{CloseJob, CloseReason, CloseTarget, Message};
use crate::create;
use crate::error::{Error, truncate};
use crate::response::Response;
use crate::retry::{RetryClass, RetryPolicy};
use crate::session::SessionGuard;
use crate::state::{SessionState, Unusable, Usable};
use crate::stats::Counters;
use crate::transport::{self, Call, SESSION_HEADER, SessionContext};

/// Operations at most this long, without control characters, are used as they are; longer
/// ones are cut by [`truncate`].
const MAX_OPERATION_LEN: usize = 256;

/// A request being built on a [`SessionGuard`]; send it with [`send`](SessionRequest::send)
/// or [`send_json`](SessionRequest::send_json).
///
/// It borrows the guard, so the session cannot be closed while the request is alive.
#[must_use = "a request does nothing until it is sent"]
pub struct SessionRequest<'a> {
    guard: &'a SessionGuard,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Bytes>,
    idempotent: Option<bool>,
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    /// The first error met while building, returned by `send`.
    error: Option<Error>,
}

impl<'a> SessionRequest<'a> {
    pub(crate) fn new(guard: &'a SessionGuard, method: Method, path: &str) -> SessionRequest<'a> {
        SessionRequest {
            guard,
            method,
            path: path.to_owned(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            idempotent: None,
            timeout: None,
            retry: None,
            error: None,
        }
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> SessionRequest<'a> {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = Some(Bytes::from(bytes));
                self.headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Err(source) => {
                let operation = self.operation();
                self.error
                    .get_or_insert(Error::Serialize { operation, source });
            }
        }
        self
    }

    /// Sets a raw body; set its `Content-Type` with [`header`](SessionRequest::header).
    pub fn body(mut self, body: impl Into<Bytes>) -> SessionRequest<'a> {
        self.body = Some(body.into());
        self
    }

    /// Adds a header. `Authorization` and `workbook-session-id` are set by the guard and
    /// cannot be replaced; `send` returns [`Error::InvalidArgument`] for them.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> SessionRequest<'a> {
        if name == AUTHORIZATION || name == SESSION_HEADER {
            let error = Error::invalid_argument(
                "header",
                name.as_str(),
                "the guard sets it; it cannot be replaced",
            );
            self.error.get_or_insert(error);
        } else {
            self.headers.append(name, value);
        }
        self
    }

    /// Appends query parameters, percent-encoded.
    pub fn query(mut self, pairs: &[(&str, &str)]) -> SessionRequest<'a> {
        self.query.extend(
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        self
    }

    /// Declares whether repeating the request has the same effect as sending it once, which
    /// lets a 504 or a broken connection be retried. Default is the method's HTTP semantics
    /// (`GET`, `PUT`, `DELETE` yes; `POST`, `PATCH` no).
    pub fn idempotent(mut self, idempotent: bool) -> SessionRequest<'a> {
        self.idempotent = Some(idempotent);
        self
    }

    /// Sets the timeout of each attempt. Default is the client's
    /// [`request_timeout`](crate::WorkbookClientBuilder::request_timeout).
    pub fn timeout(mut self, timeout: Duration) -> SessionRequest<'a> {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the retry policy of this request. Default is the session's, which defaults to the
    /// client's [`retry_policy`](crate::WorkbookClientBuilder::retry_policy).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> SessionRequest<'a> {
        self.retry = Some(policy);
        self
    }

    /// Sends the request in the session and returns the successful response.
    ///
    /// Requests wait for one of the session's request slots, then for any `Retry-After`
    /// cooldown the session is under. If the server reports the session gone
    /// (`invalidSessionReCreatable`, or a 502 or 503 without a listed code), a persistent
    /// session is recreated once and the request repeated in the new session.
    ///
    /// # Errors
    ///
    /// - [`Error::Graph`] for a non-success response, after the retry policy gave up.
    /// - [`Error::Throttled`] when the server asked to wait beyond the retry budget.
    /// - [`Error::SessionExpired`] when a non-persistent session expired: its edits are lost.
    /// - [`Error::SessionClosed`] after [`WorkbookClient::shutdown`](crate::WorkbookClient::shutdown).
    /// - [`Error::InvalidArgument`] for a path that leaves the workbook root or a header the
    ///   guard sets.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe in the sense that the session stays consistent: dropping
    /// the future frees its request slot, and a recreation already started finishes in the
    /// background. The request itself may or may not have reached the server.
    pub async fn send(self) -> Result<Response, Error> {
        let operation = self.operation();
        let span = debug_span!("session_request", session = %self.guard.fingerprint(), operation = %operation);
        self.send_inner(operation).instrument(span).await
    }

    /// Sends the request and deserializes the JSON response.
    ///
    /// # Errors
    ///
    /// The errors of [`send`](SessionRequest::send), and [`Error::Deserialize`] when the body
    /// is not JSON of the shape of `T`.
    ///
    /// # Cancel safety
    ///
    /// As for [`send`](SessionRequest::send).
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, Error> {
        let operation = self.operation();
        let response = self.send().await?;
        serde_json::from_slice(&response.into_body())
            .map_err(|source| Error::Deserialize { operation, source })
    }

    fn operation(&self) -> String {
        let operation = format!("{} {}", self.method, self.path);
        if operation.len() <= MAX_OPERATION_LEN && !operation.contains(char::is_control) {
            operation
        } else {
            truncate(&operation)
        }
    }

    async fn send_inner(self, operation: String) -> Result<Response, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let guard = self.guard;
        let core = guard.client.core();
        let state = &guard.state;
        let mut url = transport::join_root(&state.root_url, &self.path)?;
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        let class = match self.idempotent {
            Some(true) => RetryClass::Idempotent,
            Some(false) => RetryClass::NonIdempotent,
            None => RetryClass::for_method(&self.method),
        };
        let mut call = Call::new(&operation, self.method, url, class);
        call.headers = self.headers;
        call.body = self.body;
        call.timeout = self.timeout;
        call.retry = self.retry.as_ref().or(state.settings.retry.as_ref());

        let _slot = state
            .permits
            .acquire()
            .await
            .map_err(|_| Error::SessionClosed {
                session: guard.fingerprint(),
            })?;
        let mut recreated = false;
        loop {
            let usable = match state.usable() {
                Ok(usable) => usable,
                Err(Unusable::Closed(session)) => return Err(Error::SessionClosed { session }),
                Err(Unusable::Expired(usable)) => {
                    recover(guard, &usable, recreated).await?;
                    recreated = true;
                    continue;
                }
            };
            let context = SessionContext {
                id: usable.id.header(),
                cooldown: &state.cooldown,
            };
            let result = core.execute(&call, Some(context)).await;
            // Only a success proves the server saw activity: a throttled or failed request
            // may not have reset its inactivity timer.
            if result.is_ok() {
                state.touch(core);
            }

            let gone = matches!(&result, Err(Error::Graph(graph)) if graph.means_session_gone());
            if !gone {
                return result;
            }
            if state.mark_expired(usable.generation) {
                Counters::add(&core.counters.expired);
                warn!(session = %usable.id.fingerprint(), persistent = state.settings.persistent, "session expired on the server");
            }
            if recreated {
                return result;
            }
            recover(guard, &usable, recreated).await?;
            recreated = true;
        }
    }
}

/// Recovers an expired session: a persistent one is recreated, a non-persistent one fails
/// with [`Error::SessionExpired`] because its edits are lost.
async fn recover(guard: &SessionGuard, expired: &Usable, recreated: bool) -> Result<(), Error> {
    let session = expired.id.fingerprint();
    if !guard.state.settings.persistent || recreated {
        return Err(Error::SessionExpired { session });
    }
    recreate(guard, expired.generation).await
}

/// Creates a new session for a persistent guard whose session expired.
///
/// The creation runs in its own task, so that a caller who stops waiting does not leak the
/// new session: the task installs it in the guard's state, or closes it if the guard was
/// closed meanwhile.
async fn recreate(guard: &SessionGuard, expired_generation: u64) -> Result<(), Error> {
    let state = &guard.state;
    let _recreating = state.recreating.lock().await;
    if state.generation() != expired_generation {
        // Another request recreated the session while this one waited.
        return Ok(());
    }
    let core = guard.client.core();
    core.registry.lock().check_open()?;

    let (reply, answer) = oneshot::channel();
    let ticket = core.in_flight.ticket();
    let client = guard.client.clone();
    let state = Arc::clone(state);
    let old = state.fingerprint();
    tokio::spawn(async move {
        let _ticket = ticket;
        let _ = reply.send(install_new_session(&client, &state).await);
    });
    let result = answer
        .await
        .unwrap_or(Err(Error::WorkerStopped { session: old }));
    if result.is_ok() {
        info!(old = %old, new = %guard.fingerprint(), "expired persistent session recreated");
    }
    result
}

async fn install_new_session(
    client: &crate::WorkbookClient,
    state: &Arc<SessionState>,
) -> Result<(), Error> {
    let core = client.core();
    let settings = &state.settings;
    let created =
        create::create_session(core, &state.workbook, true, settings.respond_async).await?;
    let counters = &core.counters;
    Counters::add(&counters.created);

    match state.install(created.id) {
        Ok(()) => {
            Counters::add(&counters.recreated);
            // The expired id is never closed; it ends here, as a session the server dropped.
            // When the install fails instead, the close of the guard counts the expired id.
            Counters::add(&counters.already_gone);
            state.touch(core);
            core.schedule.track(core, state);
            Ok(())
        }
        Err(id) => {
            let session = id.fingerprint();
            let target = CloseTarget::Orphan {
                workbook: state.workbook.clone(),
                id,
            };
            let job = CloseJob::new(Arc::clone(core), target, CloseReason::Drop);
            let _ = client.queue().send(Message::Close(job));
            Err(Error::SessionClosed { session })
        }
    }
}

impl fmt::Debug for SessionRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRequest")
            .field("session", &self.guard.fingerprint())
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
