//! refreshSession scheduling for idle sessions.
//!
//! One task per client sleeps until the earliest due time in a min-heap of
//! `(due, session)` entries. A request does not touch the heap: it only stamps the session's
//! last activity. When an entry comes due, the task compares it with that stamp and either
//! moves the entry to `last activity + interval` or refreshes the session. Wake-ups therefore
//! follow the refreshes that are due, not the number of sessions held, and entries that come
//! due within [`COALESCE`] of each other are handled in one wake-up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::Method;
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span, warn};

use crate::error::Error;
use crate::retry::RetryClass;
use crate::state::{SessionState, Unusable};
use crate::stats::Counters;
use crate::transport::{self, Call, Core, SessionContext};

/// Entries due this close together are refreshed in one wake-up.
const COALESCE: Duration = Duration::from_secs(1);

/// The maximum wait before a refresh that failed, or found a request in flight, is tried again.
const RETRY_FAILED_REFRESH: Duration = Duration::from_secs(30);

/// The minimum heap length at which the schedule drops the entries of sessions that are gone.
const MIN_COMPACT_LEN: usize = 1024;

struct Entry {
    due: Instant,
    session: Weak<SessionState>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.due == other.due
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> std::cmp::Ordering {
        self.due.cmp(&other.due)
    }
}

/// The keep-alive schedule of one client.
#[derive(Default)]
pub(crate) struct Schedule {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    /// The length at which `add` next drops the entries of sessions that are gone; read and
    /// written only under the `heap` lock.
    compact_at: AtomicUsize,
    wake: Notify,
    wakeups: AtomicU64,
}

impl Schedule {
    /// Schedules a check of `session` at `due`, waking the task if that is the earliest.
    pub(crate) fn add(&self, session: &Arc<SessionState>, due: Instant) {
        let earliest = {
            let mut heap = self.heap.lock();
            let earliest = heap.peek().is_none_or(|Reverse(head)| due < head.due);
            heap.push(Reverse(Entry {
                due,
                session: Arc::downgrade(session),
            }));
            self.compact(&mut heap);
            earliest
        };
        if earliest {
            self.wake.notify_one();
        }
    }

    /// Drops the entries of sessions that no longer exist, once the heap has doubled since
    /// the last time, so that the cost per `add` stays constant on average.
    ///
    /// An entry contains a `Weak`, which keeps the session's allocation until the entry comes
    /// due. Without this, a client that opens and closes sessions quickly would hold up to
    /// one keep-alive interval's worth of closed sessions in memory.
    fn compact(&self, heap: &mut BinaryHeap<Reverse<Entry>>) {
        if heap.len() < self.compact_at.load(Ordering::Relaxed).max(MIN_COMPACT_LEN) {
            return;
        }
        heap.retain(|Reverse(entry)| entry.session.strong_count() > 0);
        self.compact_at.store(2 * heap.len(), Ordering::Relaxed);
    }

    /// Schedules `session` one interval after its last activity, if keep-alive is on for it.
    pub(crate) fn track(&self, core: &Core, session: &Arc<SessionState>) {
        if let Some(interval) = session.settings.keep_alive {
            self.add(session, session.last_activity(core) + interval);
        }
    }

    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.lock().len()
    }

    fn next_due(&self) -> Option<Instant> {
        self.heap.lock().peek().map(|Reverse(entry)| entry.due)
    }

    fn pop_due(&self, until: Instant) -> Vec<Weak<SessionState>> {
        let mut heap = self.heap.lock();
        let mut due = Vec::new();
        while heap.peek().is_some_and(|Reverse(entry)| entry.due <= until) {
            if let Some(Reverse(entry)) = heap.pop() {
                due.push(entry.session);
            }
        }
        due
    }
}

/// Runs the keep-alive schedule until `stop` fires or its sender is dropped.
pub(crate) async fn run(core: Arc<Core>, mut stop: oneshot::Receiver<()>) {
    let limit = Arc::new(Semaphore::new(core.config.refresh_concurrency));
    loop {
        let next = core.schedule.next_due();
        let sleep = async {
            match next {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stop => break,
            () = core.schedule.wake.notified() => continue,
            () = sleep => {}
        }

        core.schedule.wakeups.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        for session in core.schedule.pop_due(now + COALESCE) {
            let Some(session) = session.upgrade() else {
                continue;
            };
            check(&core, &limit, session, now);
        }
    }
    debug!("keep-alive task stopped");
}

/// Refreshes `session` if it has been idle for its interval, else moves its entry.
fn check(core: &Arc<Core>, limit: &Arc<Semaphore>, session: Arc<SessionState>, now: Instant) {
    let Some(interval) = session.settings.keep_alive else {
        return;
    };
    if !session.is_live() {
        return;
    }
    let due = session.last_activity(core) + interval;
    if due > now + COALESCE {
        core.schedule.add(&session, due);
        return;
    }
    let core = Arc::clone(core);
    let limit = Arc::clone(limit);
    tokio::spawn(async move {
        let Ok(_permit) = limit.acquire_owned().await else {
            return;
        };
        let next = match refresh_if_idle(&core, &session).await {
            Refreshed::Yes => Some(Instant::now() + interval),
            // A request in flight may be waiting out a throttle without reaching the server,
            // so look again soon. If it succeeds, its activity moves the entry further out.
            Refreshed::Busy | Refreshed::Failed => {
                Some(Instant::now() + interval.min(RETRY_FAILED_REFRESH))
            }
            Refreshed::Gone => None,
        };
        if let Some(next) = next {
            core.schedule.add(&session, next);
        }
    });
}

enum Refreshed {
    Yes,
    /// A request was in flight, which keeps the session alive by itself.
    Busy,
    Failed,
    Gone,
}

async fn refresh_if_idle(core: &Core, session: &SessionState) -> Refreshed {
    let Ok(_slot) = session.permits.try_acquire() else {
        return Refreshed::Busy;
    };
    match refresh(core, session).await {
        Ok(()) => Refreshed::Yes,
        Err(error) if error.is_session_expired() => Refreshed::Gone,
        Err(Error::SessionClosed { .. }) => Refreshed::Gone,
        Err(error) => {
            warn!(session = %session.fingerprint(), %error, "keep-alive refresh failed; trying again later");
            Refreshed::Failed
        }
    }
}

/// Sends refreshSession in `session`. The caller must own one of its request slots.
///
/// A session the server no longer has is marked expired.
pub(crate) async fn refresh(core: &Core, session: &SessionState) -> Result<(), Error> {
    let usable = session.usable().map_err(Unusable::into_error)?;
    let operation = "refreshSession";
    let url = transport::join_root(&session.root_url, operation)?;
    let mut call = Call::new(operation, Method::POST, url, RetryClass::SessionCall)
        .json_body(bytes::Bytes::from_static(b"{}"));
    call.retry = session.settings.retry.as_ref();
    let context = SessionContext {
        id: usable.id.header(),
        cooldown: &session.cooldown,
    };
    let span = debug_span!("refresh_session", session = %usable.id.fingerprint());
    let result = core.execute(&call, Some(context)).instrument(span).await;

    match result {
        Ok(_) => {
            session.touch(core);
            Counters::add(&core.counters.refreshed);
            debug!(session = %usable.id.fingerprint(), "session refreshed");
            Ok(())
        }
        Err(error) if is_gone(&error) => {
            if session.mark_expired(usable.generation) {
                Counters::add(&core.counters.expired);
                warn!(session = %usable.id.fingerprint(), %error, "session expired on the server");
            }
            Err(Error::SessionExpired {
                session: usable.id.fingerprint(),
            })
        }
        Err(error) => Err(error),
    }
}

fn is_gone(error: &Error) -> bool {
    error.status() == Some(reqwest::StatusCode::NOT_FOUND)
        || error
            .graph()
            .is_some_and(|graph| graph.means_session_gone())
}
