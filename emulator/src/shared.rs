//! State shared by the server task, the request handlers and the [`Emulator`](crate::Emulator)
//! handle: the configuration, the workbooks and the session state.

use crate::book::{Book, Edits};
use crate::builder::Config;
use crate::graph_error::ApiError;
use crate::path::ItemRef;
use crate::state::{PendingSave, State, fingerprint};
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) books: Vec<Arc<Book>>,
    pub(crate) state: Mutex<State>,
    /// `http://{addr}`, the origin of every absolute URL the emulator sends.
    pub(crate) origin: String,
    pub(crate) runtime: tokio::runtime::Handle,
    /// The number of saves spawned and not yet finished.
    pub(crate) saves_pending: watch::Sender<usize>,
}

/// A successful handler result: status, JSON body and `Location`.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Option<Value>,
    pub(crate) location: Option<String>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            location: None,
        }
    }

    pub(crate) fn no_content() -> Self {
        Reply {
            status: 204,
            body: None,
            location: None,
        }
    }
}

/// One request, as the handlers see it after the path, the bearer token and faults were dealt with.
#[derive(Debug)]
pub(crate) struct RequestContext {
    pub(crate) method: hyper::Method,
    /// The `workbook-session-id` header; a value that is not visible ASCII becomes a string
    /// that matches no session.
    pub(crate) session_id: Option<String>,
    pub(crate) prefer_async: bool,
    pub(crate) body: Bytes,
}

impl Shared {
    /// Finds the workbook a request names, by item id or by drive path (case-insensitive).
    pub(crate) fn find_book(&self, item: &ItemRef) -> Option<usize> {
        self.books.iter().position(|book| match item {
            ItemRef::Id(id) => book.item_id == *id,
            ItemRef::Path(path) => book.drive_path.to_lowercase() == path.to_lowercase(),
        })
    }

    /// Ends every session past its deadline and saves the persistent ones.
    pub(crate) fn sweep(self: &Arc<Self>) {
        let saves = self.state.lock().expire_due(Instant::now());
        self.spawn_saves(saves);
    }

    /// Applies the edits of ended persistent sessions to their workbooks now, and writes the
    /// files in background tasks that [`Shared::wait_for_saves`] can wait for.
    pub(crate) fn spawn_saves(self: &Arc<Self>, saves: Vec<PendingSave>) {
        for save in saves {
            let book = Arc::clone(&self.books[save.book]);
            let snapshot = book.apply(&save.edits);
            self.saves_pending.send_modify(|pending| *pending += 1);

            let shared = Arc::clone(self);
            self.runtime.spawn(async move {
                let result = book.save(snapshot).await;
                shared.record_save(&book, &result);
                shared
                    .saves_pending
                    .send_modify(|pending| *pending = pending.saturating_sub(1));
            });
        }
    }

    /// Applies edits to a workbook and writes its file before returning.
    pub(crate) async fn save_now(&self, book: usize, edits: &Edits) -> Result<(), ApiError> {
        let book = Arc::clone(&self.books[book]);
        let snapshot = book.apply(edits);
        let result = book.save(snapshot).await;
        self.record_save(&book, &result);
        result.map_err(|_| {
            ApiError::uncategorized(500, format!("failed to save workbook {}", book.item_id))
        })
    }

    fn record_save(&self, book: &Book, result: &std::io::Result<()>) {
        let mut state = self.state.lock();
        match result {
            Ok(()) => state.counters.saves_written += 1,
            Err(_) => state.counters.saves_failed += 1,
        }
        drop(state);

        match result {
            Ok(()) => {
                tracing::debug!(item = %book.item_id, file = %book.file.display(), "workbook saved")
            }
            Err(error) => {
                tracing::error!(%error, item = %book.item_id, file = %book.file.display(), "failed to save workbook")
            }
        }
    }

    /// Waits until every save started so far has been written or has failed.
    pub(crate) async fn wait_for_saves(&self) {
        let mut pending = self.saves_pending.subscribe();
        let _ = pending.wait_for(|count| *count == 0).await;
    }

    /// Ends a session on request, as inactivity would.
    pub(crate) fn expire(self: &Arc<Self>, id: &str) -> bool {
        let mut state = self.state.lock();
        if !state.sessions.contains_key(id) {
            return false;
        }
        let save = state.end_session(id, true);
        drop(state);

        tracing::info!(session = %fingerprint(id), "session expired on request");
        self.spawn_saves(save.into_iter().collect());
        true
    }
}
