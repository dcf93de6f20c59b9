//! The counters that tests assert on.

use std::collections::BTreeMap;

/// A snapshot of the emulator's counters, taken by [`Emulator::counters`](crate::Emulator::counters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Sessions created, synchronously (201) or by a long-running operation that succeeded.
    pub sessions_created: u64,
    /// Sessions open when the snapshot was taken.
    pub sessions_open: u64,
    /// Sessions ended by an accepted closeSession.
    pub sessions_closed: u64,
    /// Sessions ended by inactivity or by [`Emulator::expire_session`](crate::Emulator::expire_session).
    pub sessions_expired: u64,
    /// refreshSession requests that were accepted (204).
    pub sessions_refreshed: u64,
    /// Every HTTP request received, whatever its response.
    pub requests_total: u64,
    /// Requests that met an injected fault, scripted or random, latency included.
    pub faults_injected: u64,
    /// The highest number of requests in flight at once in any one session.
    pub max_concurrent_requests_in_session: u64,
    /// Requests on a workbook route (everything under `/workbook` except createSession,
    /// operations and sessionInfoResource) sent without a `workbook-session-id` header, by
    /// workbook item id.
    pub requests_without_session: BTreeMap<String, u64>,
    /// Saves of a workbook file that were written.
    pub saves_written: u64,
    /// Saves of a workbook file that failed; each is also logged.
    pub saves_failed: u64,
}
