//! Counters of what the client did with its sessions.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the client's session counters, from [`WorkbookClient::stats`].
///
/// Every session the client created ends in exactly one of `closed_explicitly`,
/// `closed_on_drop`, `closed_at_shutdown`, `already_gone`, `close_failures` and `abandoned`, or
/// is still `open`. Sessions recreated after expiry are counted in `created` too.
///
/// [`WorkbookClient::stats`]: crate::WorkbookClient::stats
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions currently registered as open.
    pub open: u64,
    /// Sessions created, including recreations.
    pub created: u64,
    /// Sessions closed by [`SessionGuard::close`](crate::SessionGuard::close).
    pub closed_explicitly: u64,
    /// Sessions closed by the background queue after their guard was dropped.
    pub closed_on_drop: u64,
    /// Sessions closed by [`WorkbookClient::shutdown`](crate::WorkbookClient::shutdown).
    pub closed_at_shutdown: u64,
    /// Sessions the server no longer knew when they were closed (404 or
    /// `invalidSessionReCreatable`), including expired ones.
    pub already_gone: u64,
    /// Sessions whose closeSession failed after every retry.
    pub close_failures: u64,
    /// Sessions whose close could not run at all, for example because the runtime shut down.
    pub abandoned: u64,
    /// Sessions found expired on the server, by a request or a refresh.
    pub expired: u64,
    /// Persistent sessions recreated after they expired.
    pub recreated: u64,
    /// refreshSession calls that succeeded.
    pub refreshed: u64,
    /// Attempts repeated after a retryable failure.
    pub retries: u64,
    /// Times the keep-alive task woke up to refresh or reschedule sessions.
    pub keep_alive_wakeups: u64,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub created: AtomicU64,
    pub closed_explicitly: AtomicU64,
    pub closed_on_drop: AtomicU64,
    pub closed_at_shutdown: AtomicU64,
    pub already_gone: AtomicU64,
    pub close_failures: AtomicU64,
    pub abandoned: AtomicU64,
    pub expired: AtomicU64,
    pub recreated: AtomicU64,
    pub refreshed: AtomicU64,
    pub retries: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, open: u64) -> Stats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            open,
            created: read(&self.created),
            closed_explicitly: read(&self.closed_explicitly),
            closed_on_drop: read(&self.closed_on_drop),
            closed_at_shutdown: read(&self.closed_at_shutdown),
            already_gone: read(&self.already_gone),
            close_failures: read(&self.close_failures),
            abandoned: read(&self.abandoned),
            expired: read(&self.expired),
            recreated: read(&self.recreated),
            refreshed: read(&self.refreshed),
            retries: read(&self.retries),
            keep_alive_wakeups: 0,
        }
    }
}
