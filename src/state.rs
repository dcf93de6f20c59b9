//! The shared state of one session, and the registry of open sessions that shutdown,
//! keep-alive and stats read.
//!
//! A session's id and status change together under one short `parking_lot` lock. Closing
//! moves the status from open (or expired) to closing exactly once. That is what makes every
//! session close exactly once, whichever of `close()`, `Drop`, shutdown or a recreation gets
//! there first.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::session_id::{Fingerprint, SessionId};
use crate::transport::{Cooldown, Core};
use crate::workbook::Workbook;

/// The stage of a session's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Open,
    /// The server no longer has the session, but this client has not closed it yet.
    Expired,
    Closing,
    Closed,
}

struct Current {
    id: SessionId,
    status: Status,
    /// Incremented each time the session is recreated under a new id.
    generation: u64,
}

/// The settings a session was created with.
#[derive(Debug, Clone)]
pub(crate) struct SessionSettings {
    pub(crate) persistent: bool,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) max_concurrent_requests: usize,
    pub(crate) respond_async: bool,
    /// A policy that replaces the client's for every call of this session.
    pub(crate) retry: Option<RetryPolicy>,
}

/// One session, shared by its guard, the registry, the keep-alive task and close jobs.
pub(crate) struct SessionState {
    pub(crate) key: u64,
    pub(crate) workbook: Workbook,
    /// The workbook root's URL with a trailing `/`, parsed once for every request.
    pub(crate) root_url: Url,
    pub(crate) settings: SessionSettings,
    current: Mutex<Current>,
    /// The per-session request slots; fair, so waiting requests run in arrival order.
    pub(crate) permits: Semaphore,
    pub(crate) cooldown: Cooldown,
    /// Nanoseconds after the client's epoch of the last request sent in this session.
    last_activity: AtomicU64,
    /// Held while a recreation runs, so that concurrent requests recreate only once.
    pub(crate) recreating: tokio::sync::Mutex<()>,
}

/// A snapshot of the id to use and the generation it belongs to.
pub(crate) struct Usable {
    pub(crate) id: SessionId,
    pub(crate) generation: u64,
}

/// The reason a session cannot take a request.
pub(crate) enum Unusable {
    Expired(Usable),
    Closed(Fingerprint),
}

impl Unusable {
    /// Returns the error for a caller that cannot recover the session itself.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Unusable::Expired(usable) => Error::SessionExpired {
                session: usable.id.fingerprint(),
            },
            Unusable::Closed(session) => Error::SessionClosed { session },
        }
    }
}

impl SessionState {
    pub(crate) fn new(
        core: &Core,
        key: u64,
        workbook: Workbook,
        root_url: Url,
        settings: SessionSettings,
        id: SessionId,
    ) -> SessionState {
        let permits = Semaphore::new(settings.max_concurrent_requests);
        SessionState {
            key,
            workbook,
            root_url,
            settings,
            current: Mutex::new(Current {
                id,
                status: Status::Open,
                generation: 0,
            }),
            permits,
            cooldown: Cooldown::default(),
            last_activity: AtomicU64::new(core.nanos_since_epoch(Instant::now())),
            recreating: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn fingerprint(&self) -> Fingerprint {
        self.current.lock().id.fingerprint()
    }

    /// Returns the id to send a request with, or why there is none.
    pub(crate) fn usable(&self) -> Result<Usable, Unusable> {
        let current = self.current.lock();
        let usable = Usable {
            id: current.id.clone(),
            generation: current.generation,
        };
        match current.status {
            Status::Open => Ok(usable),
            Status::Expired => Err(Unusable::Expired(usable)),
            Status::Closing | Status::Closed => Err(Unusable::Closed(current.id.fingerprint())),
        }
    }

    /// Marks the session expired if it is still open under `generation`; returns `true` when
    /// this call changed it.
    pub(crate) fn mark_expired(&self, generation: u64) -> bool {
        let mut current = self.current.lock();
        if current.status == Status::Open && current.generation == generation {
            current.status = Status::Expired;
            return true;
        }
        false
    }

    /// Installs the id of a recreated session. Returns the id back when the session was
    /// closed meanwhile, so the caller closes that new session too.
    pub(crate) fn install(&self, id: SessionId) -> Result<(), SessionId> {
        let mut current = self.current.lock();
        match current.status {
            Status::Open | Status::Expired => {
                current.id = id;
                current.status = Status::Open;
                current.generation += 1;
                Ok(())
            }
            Status::Closing | Status::Closed => Err(id),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.current.lock().generation
    }

    /// Moves the session to closing, once. Returns the id to close and whether the server had
    /// already dropped it, or `None` when another path closes or closed it.
    pub(crate) fn begin_close(&self) -> Option<(SessionId, bool)> {
        let mut current = self.current.lock();
        let was_expired = match current.status {
            Status::Open => false,
            Status::Expired => true,
            Status::Closing | Status::Closed => return None,
        };
        current.status = Status::Closing;
        Some((current.id.clone(), was_expired))
    }

    pub(crate) fn finish_close(&self) {
        self.current.lock().status = Status::Closed;
    }

    pub(crate) fn is_live(&self) -> bool {
        matches!(self.current.lock().status, Status::Open | Status::Expired)
    }

    pub(crate) fn touch(&self, core: &Core) {
        let now = core.nanos_since_epoch(Instant::now());
        self.last_activity.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn last_activity(&self, core: &Core) -> Instant {
        core.epoch + Duration::from_nanos(self.last_activity.load(Ordering::Relaxed))
    }
}

/// The open sessions of a client, by key.
#[derive(Default)]
pub(crate) struct Registry {
    sessions: HashMap<u64, Arc<SessionState>>,
    next_key: u64,
    shutting_down: bool,
}

impl Registry {
    pub(crate) fn next_key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// Adds a new session, unless shutdown has begun.
    pub(crate) fn insert(&mut self, state: Arc<SessionState>) -> Result<(), Arc<SessionState>> {
        if self.shutting_down {
            return Err(state);
        }
        self.sessions.insert(state.key, state);
        Ok(())
    }

    pub(crate) fn remove(&mut self, key: u64) {
        self.sessions.remove(&key);
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Refuses new sessions from now on and returns the open ones.
    pub(crate) fn begin_shutdown(&mut self) -> Vec<Arc<SessionState>> {
        self.shutting_down = true;
        self.sessions.values().cloned().collect()
    }

    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.shutting_down {
            Err(Error::ShutDown)
        } else {
            Ok(())
        }
    }
}
