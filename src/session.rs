//! [`SessionGuard`], the options a session is created with, and what dropping a guard does.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use tokio::sync::{mpsc, oneshot};

use crate::client::WorkbookClient;
use crate::close_queue::{CloseJob, CloseOutcome, CloseReason, CloseTarget, Message};
use crate::error::Error;
use crate::keep_alive;
use crate::request::SessionRequest;
use crate::retry::RetryPolicy;
use crate::session_id::Fingerprint;
use crate::state::{SessionState, Unusable};
use crate::transport::SESSION_HEADER;
use crate::workbook::Workbook;

/// The options a session is created with.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workbook_session::SessionOptions;
///
/// let options = SessionOptions::persistent()
///     .keep_alive(Some(Duration::from_secs(120)))
///     .max_concurrent_requests(1);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    pub(crate) persistent: bool,
    pub(crate) keep_alive: Option<Option<Duration>>,
    pub(crate) max_concurrent_requests: Option<usize>,
    pub(crate) respond_async: Option<bool>,
    pub(crate) retry: Option<RetryPolicy>,
}

impl SessionOptions {
    /// Returns options for a session whose edits are saved to the file
    /// (`persistChanges: true`).
    ///
    /// If it expires on the server, the guard recreates it once and repeats the request.
    pub fn persistent() -> SessionOptions {
        SessionOptions {
            persistent: true,
            keep_alive: None,
            max_concurrent_requests: None,
            respond_async: None,
            retry: None,
        }
    }

    /// Returns options for a session whose edits are never saved (`persistChanges: false`).
    ///
    /// If it expires on the server its edits are gone, so every later request fails with
    /// [`Error::SessionExpired`] instead of silently starting over.
    pub fn non_persistent() -> SessionOptions {
        SessionOptions {
            persistent: false,
            ..SessionOptions::persistent()
        }
    }

    /// Sets how long the session may stay idle before the client refreshes it; `None` turns
    /// keep-alive off for this session. Default is the client's
    /// [`keep_alive`](crate::WorkbookClientBuilder::keep_alive).
    pub fn keep_alive(mut self, interval: Option<Duration>) -> SessionOptions {
        self.keep_alive = Some(interval);
        self
    }

    /// Sets how many requests of this session may be in flight at once. Default is the
    /// client's [`max_concurrent_requests`](crate::WorkbookClientBuilder::max_concurrent_requests).
    pub fn max_concurrent_requests(mut self, limit: usize) -> SessionOptions {
        self.max_concurrent_requests = Some(limit);
        self
    }

    /// Sets whether createSession requests the long-running form (`Prefer: respond-async`).
    /// Default is the client's [`respond_async`](crate::WorkbookClientBuilder::respond_async).
    pub fn respond_async(mut self, respond_async: bool) -> SessionOptions {
        self.respond_async = Some(respond_async);
        self
    }

    /// Sets the retry policy of every call in this session, its close included. Default is
    /// the client's [`retry_policy`](crate::WorkbookClientBuilder::retry_policy).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> SessionOptions {
        self.retry = Some(policy);
        self
    }

    /// Returns `true` for a persistent session.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }
}

/// An open workbook session that is closed exactly once.
///
/// Every request made through the guard carries the bearer token and the
/// `workbook-session-id` header. Requests borrow the guard, so [`close`](SessionGuard::close)
/// cannot run while one is in flight. The guard is `Send + Sync`: share it by reference or in
/// an `Arc` across tasks, and requests queue fairly for the session's request slots (one at a
/// time by default, as Graph recommends for a workbook).
///
/// If neither [`close`](SessionGuard::close) is called nor the client shut down, dropping the
/// guard queues the close: a channel send to the client's close worker, which works on any
/// thread, with or without a tokio runtime, and during a panic unwind.
///
/// # Limitations
///
/// The close queue runs on the runtime the client was built in. If that runtime has shut
/// down, a dropped guard's close cannot run; it is counted in
/// [`Stats::abandoned`](crate::Stats::abandoned) and logged, and the session expires on the
/// server after its timeout.
#[must_use = "dropping a SessionGuard at once closes the session in the background"]
#[clippy::has_significant_drop]
pub struct SessionGuard {
    pub(crate) client: WorkbookClient,
    pub(crate) state: Arc<SessionState>,
    /// Cleared when `close` takes over, so `Drop` does not queue a second close.
    armed: bool,
}

impl SessionGuard {
    pub(crate) fn new(client: WorkbookClient, state: Arc<SessionState>) -> SessionGuard {
        SessionGuard {
            client,
            state,
            armed: true,
        }
    }

    /// Hands the session to the close queue as part of shutdown.
    pub(crate) fn close_on_shutdown(mut self) {
        self.armed = false;
        let _ = self
            .client
            .queue()
            .send(Message::Close(self.close_job(CloseReason::Shutdown)));
    }

    /// Builds the job that closes this guard's session.
    fn close_job(&self, reason: CloseReason) -> CloseJob {
        let core = Arc::clone(self.client.core());
        CloseJob::new(core, CloseTarget::Session(Arc::clone(&self.state)), reason)
    }

    /// Returns the short fingerprint of the current session id, safe to log.
    pub fn fingerprint(&self) -> Fingerprint {
        self.state.fingerprint()
    }

    /// Returns `true` if the session saves its edits to the file.
    pub fn is_persistent(&self) -> bool {
        self.state.settings.persistent
    }

    /// Returns the workbook this session edits.
    pub fn workbook(&self) -> &Workbook {
        &self.state.workbook
    }

    /// Returns the `workbook-session-id` header, for requests sent with another HTTP client.
    ///
    /// The value is marked sensitive. A persistent session may be recreated under a new id,
    /// so ask again rather than keeping the value.
    ///
    /// # Errors
    ///
    /// Returns [`Error::SessionExpired`] or [`Error::SessionClosed`] when the session has no
    /// usable id.
    pub fn session_header(&self) -> Result<(HeaderName, HeaderValue), Error> {
        let usable = self.state.usable().map_err(Unusable::into_error)?;
        Ok((SESSION_HEADER, usable.id.header().clone()))
    }

    /// Starts a `GET` of `path`, relative to the workbook root.
    pub fn get(&self, path: &str) -> SessionRequest<'_> {
        self.request(Method::GET, path)
    }

    /// Starts a `POST` to `path`, relative to the workbook root.
    pub fn post(&self, path: &str) -> SessionRequest<'_> {
        self.request(Method::POST, path)
    }

    /// Starts a `PATCH` of `path`, relative to the workbook root.
    pub fn patch(&self, path: &str) -> SessionRequest<'_> {
        self.request(Method::PATCH, path)
    }

    /// Starts a `PUT` to `path`, relative to the workbook root.
    pub fn put(&self, path: &str) -> SessionRequest<'_> {
        self.request(Method::PUT, path)
    }

    /// Starts a `DELETE` of `path`, relative to the workbook root.
    pub fn delete(&self, path: &str) -> SessionRequest<'_> {
        self.request(Method::DELETE, path)
    }

    /// Starts a request with any method to `path`, relative to the workbook root, such as
    /// `worksheets('Sheet1')/range(address='A1:B2')`.
    pub fn request(&self, method: Method, path: &str) -> SessionRequest<'_> {
        SessionRequest::new(self, method, path)
    }

    /// Sends refreshSession now, as the keep-alive task does for idle sessions.
    ///
    /// # Errors
    ///
    /// Returns [`Error::SessionExpired`] when the server no longer has the session, and the
    /// errors of a request otherwise.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: dropping the future leaves the session as it was.
    pub async fn refresh(&self) -> Result<(), Error> {
        let _slot = self
            .state
            .permits
            .acquire()
            .await
            .map_err(|_| Error::SessionClosed {
                session: self.fingerprint(),
            })?;
        keep_alive::refresh(self.client.core(), &self.state).await
    }

    /// Closes the session and returns the outcome.
    ///
    /// A 404 or `invalidSessionReCreatable` response means the session is already gone, which
    /// is a success: [`CloseOutcome::AlreadyGone`].
    ///
    /// # Errors
    ///
    /// Returns the error of the last closeSession attempt once the retry policy or the
    /// client's close timeout gives up. The failure is also counted and logged.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: the close runs on the client's close worker, so dropping
    /// the future does not stop it, and the session is still closed exactly once.
    pub async fn close(mut self) -> Result<CloseOutcome, Error> {
        self.armed = false;
        let session = self.fingerprint();
        let (reply, answer) = oneshot::channel();
        let job = self.close_job(CloseReason::Explicit).with_reply(reply);
        if let Err(mpsc::error::SendError(Message::Close(job))) =
            self.client.queue().send(Message::Close(job))
        {
            // The worker is gone (its runtime shut down); close from this task instead.
            job.run().await;
        }
        answer
            .await
            .unwrap_or(Err(Error::WorkerStopped { session }))
    }
}

impl Drop for SessionGuard {
    /// Queues the close of a session that was not closed explicitly.
    ///
    /// This is one send on an unbounded channel: it never blocks, needs no runtime and cannot
    /// panic. If the worker is gone, the returned job is dropped here, where it counts itself
    /// as abandoned and logs a warning.
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = self
            .client
            .queue()
            .send(Message::Close(self.close_job(CloseReason::Drop)));
    }
}

impl fmt::Debug for SessionGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionGuard")
            .field("session", &self.fingerprint())
            .field("workbook", &self.state.workbook)
            .field("persistent", &self.state.settings.persistent)
            .finish()
    }
}
