//! Close jobs and the worker task that drains them.
//!
//! Dropping a guard sends a [`CloseJob`] on an unbounded channel. That send needs no runtime
//! and never blocks. The worker receives jobs in order and runs each as its own task. Jobs
//! from drops wait in a queue for one of a fixed number of slots, and explicit and shutdown
//! closes do not wait behind them. The worker answers a flush request once every job received
//! before it has finished. A job dropped before it ran, because the runtime or the worker
//! went away, counts itself as abandoned.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use reqwest::Method;
use reqwest::StatusCode;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

use crate::error::Error;
use crate::retry::{RetryClass, RetryPolicy};
use crate::session_id::{Fingerprint, SessionId};
use crate::state::SessionState;
use crate::stats::Counters;
use crate::transport::{self, Call, Cooldown, Core, SessionContext};
use crate::workbook::Workbook;
use url::Url;

/// The path that requested a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    Explicit,
    Drop,
    Shutdown,
}

/// The result of a successful close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseOutcome {
    /// The server closed the session.
    Closed,
    /// The server no longer knew the session (it expired, or another path closed it first).
    AlreadyGone,
}

/// The session a job closes.
pub(crate) enum CloseTarget {
    /// A guarded session: its current id, if no other path closed it first.
    Session(Arc<SessionState>),
    /// A session no guard owns, such as one recreated after its guard was closed.
    Orphan { workbook: Workbook, id: SessionId },
}

/// The reply channel of an explicit close.
pub(crate) type CloseReply = oneshot::Sender<Result<CloseOutcome, Error>>;

/// One session to close.
pub(crate) struct CloseJob {
    pub(crate) core: Arc<Core>,
    pub(crate) target: CloseTarget,
    pub(crate) reason: CloseReason,
    pub(crate) reply: Option<CloseReply>,
    /// The id this job closes and whether the server had already dropped it, once claimed.
    claimed: Option<(SessionId, bool)>,
    settled: bool,
}

/// A message to the worker.
pub(crate) enum Message {
    Close(CloseJob),
    /// Replied to once every job received before it has finished.
    Flush(oneshot::Sender<()>),
}

impl CloseJob {
    pub(crate) fn new(core: Arc<Core>, target: CloseTarget, reason: CloseReason) -> CloseJob {
        CloseJob {
            core,
            target,
            reason,
            reply: None,
            claimed: None,
            settled: false,
        }
    }

    pub(crate) fn with_reply(mut self, reply: CloseReply) -> CloseJob {
        self.reply = Some(reply);
        self
    }

    /// Takes ownership of the close: the first job to claim a session closes it, and every
    /// later claim fails. The worker claims in the order jobs arrive, so a guard dropped
    /// before shutdown began is counted as closed on drop. Calling it again is a no-op.
    pub(crate) fn claim(&mut self) -> bool {
        if self.claimed.is_some() {
            return true;
        }
        self.claimed = match &self.target {
            CloseTarget::Session(state) => {
                let claimed = state.begin_close();
                if claimed.is_some() {
                    self.core.registry.lock().remove(state.key);
                }
                claimed
            }
            CloseTarget::Orphan { id, .. } => Some((id.clone(), false)),
        };
        self.claimed.is_some()
    }

    /// Closes the target, if this job claims it, and records the outcome.
    pub(crate) async fn run(mut self) {
        let result = if self.claim() {
            let result = self.close_claimed().await;
            if let Some((id, _)) = &self.claimed {
                self.record(id.fingerprint(), &result);
            }
            result
        } else {
            // Shutdown or an earlier job closed it; that path counted it.
            Ok(CloseOutcome::AlreadyGone)
        };
        self.settled = true;
        if let Some(reply) = self.reply.take() {
            // The caller may have stopped waiting; the session is closed all the same.
            let _ = reply.send(result);
        }
    }

    async fn close_claimed(&self) -> Result<CloseOutcome, Error> {
        let Some((id, was_expired)) = &self.claimed else {
            return Ok(CloseOutcome::AlreadyGone);
        };
        match &self.target {
            CloseTarget::Session(state) => {
                let result = if *was_expired {
                    Ok(CloseOutcome::AlreadyGone)
                } else {
                    close_session(
                        &self.core,
                        &state.root_url,
                        id,
                        &state.cooldown,
                        state.settings.retry.as_ref(),
                    )
                    .await
                };
                state.finish_close();
                result
            }
            CloseTarget::Orphan { workbook, .. } => {
                match transport::root_url(&self.core.base, workbook) {
                    Ok(root) => {
                        close_session(&self.core, &root, id, &Cooldown::default(), None).await
                    }
                    Err(error) => Err(error),
                }
            }
        }
    }

    fn record(&self, session: Fingerprint, result: &Result<CloseOutcome, Error>) {
        let counters = &self.core.counters;
        match result {
            Ok(CloseOutcome::Closed) => {
                let counter = match self.reason {
                    CloseReason::Explicit => &counters.closed_explicitly,
                    CloseReason::Drop => &counters.closed_on_drop,
                    CloseReason::Shutdown => &counters.closed_at_shutdown,
                };
                Counters::add(counter);
                info!(%session, reason = ?self.reason, "session closed");
            }
            Ok(CloseOutcome::AlreadyGone) => {
                Counters::add(&counters.already_gone);
                info!(%session, reason = ?self.reason, "session was already gone on the server");
            }
            Err(error) => {
                Counters::add(&counters.close_failures);
                warn!(%session, reason = ?self.reason, %error, "gave up closing session");
            }
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        match &self.target {
            CloseTarget::Session(state) => state.fingerprint(),
            CloseTarget::Orphan { id, .. } => id.fingerprint(),
        }
    }
}

impl Drop for CloseJob {
    /// Counts a job that never ran. This runs on whatever thread drops the job, so it only
    /// touches atomics, a short `parking_lot` lock and a log line: no blocking, no panics.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let live = match &self.target {
            _ if self.claimed.is_some() => true,
            CloseTarget::Session(state) => state.is_live(),
            CloseTarget::Orphan { .. } => true,
        };
        if live {
            Counters::add(&self.core.counters.abandoned);
            warn!(session = %self.fingerprint(), reason = ?self.reason, "close job abandoned: the close worker or its runtime is gone");
        }
    }
}

/// Sends closeSession with the retry policy, after the session's `Retry-After` cooldown unless
/// that outlasts the client's close timeout, which bounds the whole close.
pub(crate) async fn close_session(
    core: &Core,
    root: &Url,
    id: &SessionId,
    cooldown: &Cooldown,
    retry: Option<&RetryPolicy>,
) -> Result<CloseOutcome, Error> {
    let operation = "closeSession";
    let url = transport::join_root(root, operation)?;
    let mut call = Call::new(operation, Method::POST, url, RetryClass::SessionCall)
        .json_body(bytes::Bytes::from_static(b"{}"));
    let limit = core.config.close_timeout;

    // A close that gives up leaves the session open on the server until it expires, so
    // failures that may pass are retried for as long as the close timeout allows, whatever
    // the attempt limit of the policy. The retry budget ends before the timeout, so a server
    // that keeps failing is reported with its last response rather than as a timeout.
    let policy = retry
        .unwrap_or(&core.config.retry)
        .clone()
        .max_attempts(u32::MAX)
        .max_elapsed(limit.mul_f64(0.9));
    call.retry = Some(&policy);

    // A cooldown longer than the close may take would fail the close at once, and the session
    // would linger until it expires. Sending the close anyway is the lesser harm.
    let fresh = Cooldown::default();
    let cooldown = if cooldown.remaining(core) >= limit {
        &fresh
    } else {
        cooldown
    };
    let context = SessionContext {
        id: id.header(),
        cooldown,
    };

    let span = info_span!("close_session", session = %id.fingerprint());
    let result = tokio::time::timeout(limit, core.execute(&call, Some(context)))
        .instrument(span)
        .await;

    match result {
        Ok(Ok(_)) => Ok(CloseOutcome::Closed),
        Ok(Err(error)) if is_gone(&error) => Ok(CloseOutcome::AlreadyGone),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(Error::TimedOut {
            operation: operation.to_owned(),
            after: limit,
        }),
    }
}

/// Returns `true` when a close failed because the session no longer exists.
fn is_gone(error: &Error) -> bool {
    error.status() == Some(StatusCode::NOT_FOUND) || error.is_session_expired()
}

/// Runs until every sender is gone and every job has finished.
pub(crate) async fn run_worker(
    core: Arc<Core>,
    mut receiver: mpsc::UnboundedReceiver<Message>,
    concurrency: usize,
) {
    let mut worker = Worker {
        slots: concurrency.max(1),
        tasks: JoinSet::new(),
        running: FuturesUnordered::new(),
        backlog: VecDeque::new(),
    };
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        tokio::select! {
            biased;
            () = core.abort_closes.notified() => worker.abort(&mut receiver).await,
            message = receiver.recv() => match message {
                None => break,
                Some(Message::Close(job)) => worker.accept(job),
                Some(Message::Flush(reply)) => flushes.push(reply),
            },
            Some(()) = worker.running.next(), if !worker.running.is_empty() => {}
            Some(joined) = worker.tasks.join_next(), if !worker.tasks.is_empty() => log_panic(joined),
        }
        worker.start_ready();
        if worker.is_idle() {
            for reply in flushes.drain(..) {
                let _ = reply.send(());
            }
        }
    }
    worker.finish().await;
    tracing::debug!("close worker stopped: every client handle is gone");
}

/// A close of a dropped guard, run inside the worker's task.
type QueuedClose = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The worker's jobs: those running, and the closes of dropped guards waiting for a slot.
///
/// The closes of dropped guards run inside the worker's own task, at most `slots` at once,
/// rather than one task each: a backlog of thousands costs a queue entry per guard, and a
/// close costs no task of its own. Explicit and shutdown closes, which a caller waits for, run
/// as tasks of their own so they never wait behind that backlog.
struct Worker {
    slots: usize,
    tasks: JoinSet<()>,
    running: FuturesUnordered<QueuedClose>,
    backlog: VecDeque<CloseJob>,
}

impl Worker {
    fn accept(&mut self, mut job: CloseJob) {
        // A job that claims nothing sends nothing, so it need not wait either.
        if job.claim() && job.reason == CloseReason::Drop {
            self.backlog.push_back(job);
        } else {
            self.tasks.spawn(job.run());
        }
    }

    /// Starts waiting jobs while close slots are free.
    fn start_ready(&mut self) {
        while self.running.len() < self.slots {
            let Some(job) = self.backlog.pop_front() else {
                return;
            };
            self.running.push(Box::pin(run_isolated(job)));
        }
    }

    fn is_idle(&self) -> bool {
        self.tasks.is_empty() && self.running.is_empty() && self.backlog.is_empty()
    }

    /// Stops every running job and drops every queued one; each counts itself abandoned.
    async fn abort(&mut self, receiver: &mut mpsc::UnboundedReceiver<Message>) {
        self.tasks.abort_all();
        self.running.clear();
        self.backlog.clear();
        while let Ok(message) = receiver.try_recv() {
            drop(message);
        }
        while let Some(joined) = self.tasks.join_next().await {
            log_panic(joined);
        }
    }

    /// Runs the backlog to the end, once no new job can arrive.
    async fn finish(mut self) {
        loop {
            self.start_ready();
            if self.running.next().await.is_none() {
                break;
            }
        }
        while let Some(joined) = self.tasks.join_next().await {
            log_panic(joined);
        }
    }
}

/// Runs a job, logging a panic instead of letting it stop the worker.
async fn run_isolated(job: CloseJob) {
    if let Err(panic) = AssertUnwindSafe(job.run()).catch_unwind().await {
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic without a message");
        warn!(panic = message, "a close job panicked");
    }
}

fn log_panic(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined
        && error.is_panic()
    {
        warn!(%error, "a close job panicked");
    }
}

/// How long [`WorkbookClient::shutdown`](crate::WorkbookClient::shutdown) gives a close job
/// by default.
pub(crate) const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(60);
