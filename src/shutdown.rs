//! Graceful shutdown: refusing new sessions, closing open ones, draining the close queue,
//! and the tickets that let shutdown wait for creations still under way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::client::WorkbookClient;
use crate::close_queue::{CloseJob, CloseReason, CloseTarget, Message};
use crate::stats::Stats;

/// The outcome of [`WorkbookClient::shutdown`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Sessions the server closed during shutdown, by any path.
    pub closed: u64,
    /// Sessions the server no longer knew.
    pub already_gone: u64,
    /// Sessions whose close failed after every retry.
    pub failed: u64,
    /// Sessions whose close was stopped at the deadline or could not run.
    pub abandoned: u64,
    /// `true` when the deadline passed before every close finished.
    pub timed_out: bool,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

impl ShutdownReport {
    fn between(
        before: &Stats,
        after: &Stats,
        timed_out: bool,
        elapsed: Duration,
    ) -> ShutdownReport {
        let closed = |stats: &Stats| {
            stats.closed_explicitly + stats.closed_on_drop + stats.closed_at_shutdown
        };
        ShutdownReport {
            closed: closed(after) - closed(before),
            already_gone: after.already_gone - before.already_gone,
            failed: after.close_failures - before.close_failures,
            abandoned: after.abandoned - before.abandoned,
            timed_out,
            elapsed,
        }
    }
}

/// Counts background work that shutdown waits for: creations and recreations under way.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// One unit of work counted by [`InFlight`], released on drop.
pub(crate) struct Ticket(Arc<InFlight>);

impl InFlight {
    pub(crate) fn ticket(self: &Arc<InFlight>) -> Ticket {
        self.count.fetch_add(1, Ordering::AcqRel);
        Ticket(Arc::clone(self))
    }

    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// How long shutdown waits for the worker to stop aborted jobs after the deadline.
const ABORT_GRACE: Duration = Duration::from_secs(1);

impl WorkbookClient {
    /// Closes every open session and drains the close queue, within `deadline`.
    ///
    /// From the call on, [`create_session`](WorkbookClient::create_session) fails with
    /// [`Error::ShutDown`](crate::Error::ShutDown), keep-alive stops, and the guards of the
    /// sessions closed here fail requests with
    /// [`Error::SessionClosed`](crate::Error::SessionClosed). Creations under way finish
    /// first, and their sessions are closed too. When the deadline passes, the closes still
    /// running are stopped and counted as abandoned.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the waiting, not the closes already queued: they finish on
    /// the close worker.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let started = Instant::now();
        let core = self.core();
        let before = self.stats();
        self.stop_keep_alive();
        let open = core.registry.lock().begin_shutdown();
        info!(open = open.len(), ?deadline, "shutting down");

        let drain = async {
            for state in open {
                let job = CloseJob::new(
                    Arc::clone(core),
                    CloseTarget::Session(state),
                    CloseReason::Shutdown,
                );
                let _ = self.queue().send(Message::Close(job));
            }
            core.in_flight.wait_idle().await;
            self.flush().await;
        };
        let timed_out = tokio::time::timeout(deadline, drain).await.is_err();
        if timed_out {
            warn!(
                ?deadline,
                "shutdown deadline passed; stopping the closes still running"
            );
            core.abort_closes.notify_one();
            let _ = tokio::time::timeout(ABORT_GRACE, self.flush()).await;
        }

        let report = ShutdownReport::between(&before, &self.stats(), timed_out, started.elapsed());
        info!(
            closed = report.closed,
            already_gone = report.already_gone,
            failed = report.failed,
            abandoned = report.abandoned,
            "shutdown finished"
        );
        report
    }

    /// Waits until every close job queued before this call has finished.
    async fn flush(&self) {
        let (reply, done) = oneshot::channel();
        if self.queue().send(Message::Flush(reply)).is_ok() {
            let _ = done.await;
        }
    }
}
