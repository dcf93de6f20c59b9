//! Session and operation bookkeeping, behind one `parking_lot` mutex.
//!
//! Everything here is synchronous and does no I/O, so the lock is only ever held for map
//! operations. Saving edits is the caller's job: methods that end a persistent session hand
//! its edits back.

use crate::book::Edits;
use crate::counters::Counters;
use crate::faults::FaultState;
use crate::graph_error::ApiError;
use std::collections::HashMap;
use tokio::time::{Duration, Instant};

/// An open session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) book: usize,
    pub(crate) persist: bool,
    pub(crate) deadline: Instant,
    pub(crate) edits: Edits,
    pub(crate) in_flight: u32,
}

/// Per-session-id request counts, kept after the session ends.
#[derive(Debug, Default, Clone)]
pub(crate) struct SessionStats {
    pub(crate) closes_received: u32,
    pub(crate) closes_accepted: u32,
    pub(crate) refreshes_received: u32,
    pub(crate) max_concurrent: u32,
}

/// A long-running createSession.
#[derive(Debug)]
pub(crate) struct Operation {
    pub(crate) book: usize,
    pub(crate) persist: bool,
    pub(crate) polls: u32,
    pub(crate) workbook_prefix: String,
    pub(crate) outcome: OperationOutcome,
}

#[derive(Debug, Clone)]
pub(crate) enum OperationOutcome {
    Pending,
    Succeeded { key: String },
    Failed(ApiError),
}

/// The identity of a session created by a long-running operation.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub(crate) book: usize,
    pub(crate) session_id: String,
    pub(crate) persist: bool,
}

/// Edits of a persistent session that ended, to be saved to its workbook.
#[derive(Debug)]
pub(crate) struct PendingSave {
    pub(crate) book: usize,
    pub(crate) edits: Edits,
}

/// The reason a session could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionLookup {
    /// Unknown, closed, expired, or open on another workbook.
    Invalid,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) sessions: HashMap<String, Session>,
    pub(crate) stats: HashMap<String, SessionStats>,
    pub(crate) created_ids: Vec<String>,
    pub(crate) open_per_book: Vec<usize>,
    pub(crate) operations: HashMap<String, Operation>,
    pub(crate) session_info: HashMap<String, SessionInfo>,
    pub(crate) counters: Counters,
    pub(crate) faults: FaultState,
}

impl State {
    pub(crate) fn new(book_count: usize) -> Self {
        State {
            open_per_book: vec![0; book_count],
            ..State::default()
        }
    }

    /// Opens a session unless the workbook already has `cap` open sessions.
    pub(crate) fn open_session(
        &mut self,
        id: String,
        book: usize,
        persist: bool,
        deadline: Instant,
        cap: usize,
    ) -> Result<(), usize> {
        let open = self.open_per_book[book];
        if open >= cap {
            return Err(open);
        }

        self.open_per_book[book] += 1;
        self.counters.sessions_created += 1;
        self.created_ids.push(id.clone());
        self.stats.entry(id.clone()).or_default();
        let session = Session {
            book,
            persist,
            deadline,
            edits: Edits::new(),
            in_flight: 0,
        };
        self.sessions.insert(id, session);
        Ok(())
    }

    /// Returns the open session `id` on `book`, ending it first if its deadline has passed.
    pub(crate) fn live_session(
        &mut self,
        id: &str,
        book: usize,
        now: Instant,
        saves: &mut Vec<PendingSave>,
    ) -> Result<&mut Session, SessionLookup> {
        let due = match self.sessions.get(id) {
            None => return Err(SessionLookup::Invalid),
            Some(session) if session.book != book => return Err(SessionLookup::Invalid),
            Some(session) => session.deadline <= now,
        };
        if due {
            saves.extend(self.end_session(id, true));
            return Err(SessionLookup::Invalid);
        }
        self.sessions.get_mut(id).ok_or(SessionLookup::Invalid)
    }

    /// Marks a request in flight in `id` and records the concurrency peak.
    pub(crate) fn enter(&mut self, id: &str) {
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        session.in_flight += 1;
        let in_flight = session.in_flight;

        let stats = self.stats.entry(id.to_owned()).or_default();
        stats.max_concurrent = stats.max_concurrent.max(in_flight);
        let peak = &mut self.counters.max_concurrent_requests_in_session;
        *peak = (*peak).max(u64::from(in_flight));
    }

    pub(crate) fn leave(&mut self, id: &str) {
        if let Some(session) = self.sessions.get_mut(id) {
            session.in_flight = session.in_flight.saturating_sub(1);
        }
    }

    /// Removes a session, counting it as expired or closed. Returns its edits when they
    /// must be saved (a persistent session with edits).
    pub(crate) fn end_session(&mut self, id: &str, expired: bool) -> Option<PendingSave> {
        let session = self.sessions.remove(id)?;
        self.open_per_book[session.book] = self.open_per_book[session.book].saturating_sub(1);
        if expired {
            self.counters.sessions_expired += 1;
        } else {
            self.counters.sessions_closed += 1;
        }
        tracing::debug!(session = %fingerprint(id), expired, persist = session.persist, "session ended");

        let keep = session.persist && !session.edits.is_empty();
        keep.then_some(PendingSave {
            book: session.book,
            edits: session.edits,
        })
    }

    /// Ends every session whose deadline has passed.
    pub(crate) fn expire_due(&mut self, now: Instant) -> Vec<PendingSave> {
        let due: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        due.iter()
            .filter_map(|id| self.end_session(id, true))
            .collect()
    }

    /// Returns the deadline of a session touched now, from its kind's inactivity timeout.
    pub(crate) fn deadline(now: Instant, timeout: Duration) -> Instant {
        now.checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(86_400 * 365))
    }

    pub(crate) fn stats_mut(&mut self, id: &str) -> &mut SessionStats {
        self.stats.entry(id.to_owned()).or_default()
    }

    pub(crate) fn stats(&self, id: &str) -> SessionStats {
        self.stats.get(id).cloned().unwrap_or_default()
    }
}

/// Shortens a session id for messages and logs: its length and last eight characters.
pub(crate) fn fingerprint(id: &str) -> String {
    let tail: String = id
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail} ({} chars)", id.chars().count())
}
