//! The [`Emulator`] handle, the accept loop and the expiry sweep.

use crate::book::Book;
use crate::builder::{EmulatorBuilder, WorkbookSpec};
use crate::counters::Counters;
use crate::faults::{FaultRule, RandomFaults};
use crate::handler::handle;
use crate::shared::Shared;
use crate::state::State;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// A running Graph workbook session server on loopback.
///
/// Dropping the emulator stops it as [`Emulator::shutdown`] does, without waiting.
///
/// # Limitations
/// - Only range values are served: no formulas, number formats, tables or charts.
/// - Each workbook file is read once, at start. Changes made to it by other programs while
///   the emulator runs are not seen, and the next save overwrites them.
/// - Plain HTTP/1.1 only.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use workbook_emulator::Emulator;
///
/// let emulator = Emulator::builder()
///     .workbook("item-1", "/tmp/Book.xlsx")
///     .token("test-token")
///     .start()
///     .await?;
/// println!("serving {}", emulator.base_url());
/// emulator.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Emulator {
    /// Returns a builder with the defaults: loopback on a free port, any bearer token, a cap
    /// of 25 sessions per workbook, 5 and 7 minute timeouts, synchronous createSession.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    pub(crate) async fn start(builder: EmulatorBuilder) -> io::Result<Emulator> {
        let books = load_books(builder.workbooks).await?;
        let listener = TcpListener::bind(builder.bind).await?;
        let addr = listener.local_addr()?;

        let mut state = State::new(books.len());
        state.faults.set_random(builder.random_faults);
        let shared = Arc::new(Shared {
            config: builder.config,
            books,
            state: parking_lot::Mutex::new(state),
            origin: format!("http://{addr}"),
            runtime: tokio::runtime::Handle::current(),
            saves_pending: watch::Sender::new(0),
        });

        let (shutdown, _) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            shutdown.subscribe(),
        ));
        let sweep = tokio::spawn(sweep_loop(Arc::clone(&shared), shutdown.subscribe()));
        tracing::info!(%addr, workbooks = shared.books.len(), "workbook emulator started");
        Ok(Emulator {
            shared,
            addr,
            shutdown,
            tasks: Mutex::new(vec![accept, sweep]),
        })
    }

    /// Returns the Graph base URL of the emulator, `http://127.0.0.1:{port}/v1.0`, without a
    /// trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}/v1.0", self.shared.origin)
    }

    /// Returns the address the emulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns a snapshot of the counters, after ending sessions past their deadline.
    pub fn counters(&self) -> Counters {
        self.shared.sweep();
        let state = self.shared.state.lock();
        let mut counters = state.counters.clone();
        counters.sessions_open = state.sessions.len() as u64;
        counters
    }

    /// Returns the number of open sessions, after ending sessions past their deadline.
    pub fn open_sessions(&self) -> usize {
        self.shared.sweep();
        self.shared.state.lock().sessions.len()
    }

    /// Returns the id of every session ever created, in creation order.
    pub fn created_session_ids(&self) -> Vec<String> {
        self.shared.state.lock().created_ids.clone()
    }

    /// Returns how many closeSession requests named `session_id`, accepted or not.
    pub fn closes_received(&self, session_id: &str) -> u32 {
        self.shared.state.lock().stats(session_id).closes_received
    }

    /// Returns how many closeSession requests for `session_id` were accepted with 204.
    pub fn closes_accepted(&self, session_id: &str) -> u32 {
        self.shared.state.lock().stats(session_id).closes_accepted
    }

    /// Returns how many refreshSession requests named `session_id`, accepted or not.
    pub fn refreshes_received(&self, session_id: &str) -> u32 {
        self.shared
            .state
            .lock()
            .stats(session_id)
            .refreshes_received
    }

    /// Returns the highest number of requests that were in flight at once in `session_id`.
    pub fn max_concurrent_requests(&self, session_id: &str) -> u32 {
        self.shared.state.lock().stats(session_id).max_concurrent
    }

    /// Ends a session now, as inactivity would: a persistent session's edits are saved, a
    /// non-persistent session's are discarded. Returns `false` when the session is not open.
    ///
    /// The edits are applied at once; the file is written in the background, and
    /// [`Emulator::wait_for_saves`] waits for it.
    pub fn expire_session(&self, session_id: &str) -> bool {
        self.shared.expire(session_id)
    }

    /// Adds a scripted fault rule. Rules apply in the order they were added.
    pub fn inject(&self, rule: FaultRule) {
        self.shared.state.lock().faults.push_rule(rule);
    }

    /// Replaces the random fault configuration; `None` turns random faults off. The random
    /// sequence restarts from the new seed.
    pub fn set_random_faults(&self, random_faults: Option<RandomFaults>) {
        self.shared.state.lock().faults.set_random(random_faults);
    }

    /// Waits until every workbook save started so far (by expiry) has been written or has
    /// failed. Saves on closeSession and on sessionless writes finish before their response.
    ///
    /// # Cancel safety
    /// This method is cancel safe: it only waits.
    pub async fn wait_for_saves(&self) {
        self.shared.wait_for_saves().await;
    }

    /// Stops serving: the listener closes and open connections are dropped.
    ///
    /// Open sessions are not closed and persistent sessions are **not** saved, as if the
    /// service had vanished. Saves already started still finish. Counters stay readable.
    ///
    /// # Cancel safety
    /// Cancelling this future leaves the emulator stopping in the background.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "an emulator task failed while stopping");
            }
        }
        tracing::info!(addr = %self.addr, "workbook emulator stopped");
    }
}

impl Drop for Emulator {
    /// Signals the server tasks to stop. It does not block and cannot panic, because a send
    /// on a watch channel without receivers only returns an error, which is ignored.
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Checks the workbook list and reads every file, off the runtime threads.
async fn load_books(specs: Vec<WorkbookSpec>) -> io::Result<Vec<Arc<Book>>> {
    let mut ids = HashSet::new();
    let mut paths = HashSet::new();
    for spec in &specs {
        let path = drive_path(spec).to_lowercase();
        if !ids.insert(spec.item_id.clone()) || !paths.insert(path.clone()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "workbook item id '{}' or drive path '{path}' is registered twice",
                    spec.item_id
                ),
            ));
        }
    }

    tokio::task::spawn_blocking(move || {
        specs
            .into_iter()
            .map(|spec| {
                let path = drive_path(&spec);
                Book::load(spec.item_id, path, spec.file).map(Arc::new)
            })
            .collect()
    })
    .await
    .map_err(|error| io::Error::other(format!("loading the workbooks failed: {error}")))?
}

/// Returns the path used for path addressing: the explicit one, or the file name.
fn drive_path(spec: &WorkbookSpec) -> String {
    let path = spec.drive_path.clone().unwrap_or_else(|| {
        spec.file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    path.trim_matches('/').to_owned()
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                Err(error) => {
                    tracing::warn!(%error, "failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
    tracing::debug!("accept loop stopped and connections dropped");
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request| handle(Arc::clone(&shared), request));
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Ends expired sessions on every tick of a real-time ticker thread.
///
/// The ticker is a plain thread rather than a tokio timer on purpose. A pending tokio timer
/// lets a paused test clock auto-advance to it whenever the runtime waits on a socket, and
/// that would expire sessions in the middle of a test. With the ticker, a paused clock moves only
/// when the test advances it, and sessions then expire at the next tick or lookup.
async fn sweep_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let (tick_sender, mut ticks) = mpsc::channel::<()>(1);
    let interval = shared.config.sweep_interval;
    let spawned = std::thread::Builder::new()
        .name("workbook-emulator-sweep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                if let Err(mpsc::error::TrySendError::Closed(())) = tick_sender.try_send(()) {
                    break;
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "failed to start the sweep thread; sessions expire only when looked up");
        return;
    }

    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            tick = ticks.recv() => match tick {
                Some(()) => shared.sweep(),
                None => break,
            },
        }
    }
}

/// Completes when the stop signal is set or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
