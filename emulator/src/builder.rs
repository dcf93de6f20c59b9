//! The emulator's builder and the configuration it produces.

use crate::faults::RandomFaults;
use crate::server::Emulator;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Long-running createSession: how the emulator responds to `Prefer: respond-async`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AsyncCreate {
    /// Polls of the operation before it succeeds. The first poll reports `notStarted`, later
    /// ones `running`, and poll number `polls_before_success + 1` reports `succeeded` (or
    /// `failed`). With 0 the first poll already reports the outcome.
    pub polls_before_success: u32,
    /// Whether the operation ends `failed`, with an error object and no session.
    pub fail: bool,
}

/// Configuration shared by the request handlers.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) token: Option<String>,
    pub(crate) session_cap: usize,
    pub(crate) session_cap_status: u16,
    pub(crate) invalid_session_status: u16,
    pub(crate) persistent_timeout: Duration,
    pub(crate) non_persistent_timeout: Duration,
    pub(crate) async_create: Option<AsyncCreate>,
    pub(crate) sweep_interval: Duration,
}

/// A workbook to serve: its drive item id, its path from the drive root, and its file.
#[derive(Debug, Clone)]
pub(crate) struct WorkbookSpec {
    pub(crate) item_id: String,
    pub(crate) drive_path: Option<String>,
    pub(crate) file: PathBuf,
}

/// Builds and starts an [`Emulator`]; created by [`Emulator::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct EmulatorBuilder {
    pub(crate) config: Config,
    pub(crate) workbooks: Vec<WorkbookSpec>,
    pub(crate) random_faults: Option<RandomFaults>,
    pub(crate) bind: SocketAddr,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            config: Config {
                token: None,
                session_cap: 25,
                session_cap_status: 429,
                invalid_session_status: 404,
                persistent_timeout: Duration::from_secs(5 * 60),
                non_persistent_timeout: Duration::from_secs(7 * 60),
                async_create: None,
                sweep_interval: Duration::from_secs(1),
            },
            workbooks: Vec::new(),
            random_faults: None,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }
}

impl EmulatorBuilder {
    /// Serves the `.xlsx` file at `file` as drive item `item_id`.
    ///
    /// Path addressing (`/me/drive/root:/{path}:`) finds it by its file name at the drive
    /// root. The file is read when the emulator starts and written when edits are saved.
    pub fn workbook(mut self, item_id: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        self.workbooks.push(WorkbookSpec {
            item_id: item_id.into(),
            drive_path: None,
            file: file.into(),
        });
        self
    }

    /// Serves the `.xlsx` file at `file` as drive item `item_id`, found by path addressing at
    /// `drive_path` (such as `Reports/Q1 2026.xlsx`, compared case-insensitively).
    pub fn workbook_at_path(
        mut self,
        item_id: impl Into<String>,
        drive_path: impl Into<String>,
        file: impl Into<PathBuf>,
    ) -> Self {
        self.workbooks.push(WorkbookSpec {
            item_id: item_id.into(),
            drive_path: Some(drive_path.into()),
            file: file.into(),
        });
        self
    }

    /// Requires this bearer token on every request.
    ///
    /// Default is to accept any non-empty bearer token. A missing or empty `Authorization`
    /// header always gets 401.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.config.token = Some(token.into());
        self
    }

    /// Sets how many sessions one workbook may have open at once.
    ///
    /// Default is 25, the figure a Microsoft engineer gave for Graph.
    pub fn session_cap(mut self, cap: usize) -> Self {
        self.config.session_cap = cap;
        self
    }

    /// Sets the HTTP status of a createSession refused by the session cap.
    ///
    /// Default is 429, with code `tooManyRequests`, second-level code
    /// `tooManyRequestsUncategorized` and a `Retry-After` of the seconds until the next open
    /// session of the workbook would expire.
    // NOTE: Graph does not document its response when a workbook has too many sessions.
    // 429 is an assumption, so the status is configurable.
    pub fn session_cap_status(mut self, status: u16) -> Self {
        self.config.session_cap_status = status;
        self
    }

    /// Sets the HTTP status for a session id that is unknown, closed or expired.
    ///
    /// Default is 404, with second-level code `invalidSessionReCreatable`.
    // NOTE: Graph documents 404 for requests on an expired session, but not the response of
    // refreshSession and closeSession for an unknown id, so the status is configurable.
    pub fn invalid_session_status(mut self, status: u16) -> Self {
        self.config.invalid_session_status = status;
        self
    }

    /// Sets the inactivity timeout of persistent sessions.
    ///
    /// Default is 5 minutes, as Graph documents.
    pub fn persistent_timeout(mut self, timeout: Duration) -> Self {
        self.config.persistent_timeout = timeout;
        self
    }

    /// Sets the inactivity timeout of non-persistent sessions.
    ///
    /// Default is 7 minutes, as Graph documents.
    pub fn non_persistent_timeout(mut self, timeout: Duration) -> Self {
        self.config.non_persistent_timeout = timeout;
        self
    }

    /// Responds to createSession with `Prefer: respond-async` by 202 and a long-running operation.
    ///
    /// Default is off: every createSession gets 201.
    pub fn async_create(mut self, async_create: AsyncCreate) -> Self {
        self.config.async_create = Some(async_create);
        self
    }

    /// Injects seeded random faults into every request on a recognized route.
    ///
    /// Default is no random faults.
    pub fn random_faults(mut self, random_faults: RandomFaults) -> Self {
        self.random_faults = Some(random_faults);
        self
    }

    /// Sets how often, in real time, a background sweep ends sessions past their deadline.
    ///
    /// Default is 1 second. Sessions are also ended lazily, whenever a request, a counter
    /// snapshot or [`Emulator::open_sessions`] looks at them.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.config.sweep_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets the address to listen on.
    ///
    /// Default is `127.0.0.1:0`: loopback, on a port the system picks.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Reads the workbooks, binds the listener and starts serving on the current runtime.
    ///
    /// # Errors
    /// Returns an error when two workbooks share an item id or a drive path, when a file
    /// cannot be read as `.xlsx`, or when the address cannot be bound.
    ///
    /// # Panics
    /// Panics when called outside a tokio runtime.
    pub async fn start(self) -> io::Result<Emulator> {
        Emulator::start(self).await
    }
}
