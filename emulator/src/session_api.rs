//! The session endpoints: createSession (201 or 202 + operation), refreshSession,
//! closeSession, the operation poll and sessionInfoResource.

use crate::graph_error::ApiError;
use crate::path::ParsedPath;
use crate::shared::{Reply, RequestContext, Shared};
use crate::state::{Operation, OperationOutcome, SessionInfo, State, fingerprint};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::time::Instant;

/// Reads `persistChanges` from a createSession body.
fn persist_changes(body: &[u8]) -> Result<bool, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "missing request body: createSession needs {\"persistChanges\": true|false}",
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!("invalid JSON in the createSession body: {error}"))
    })?;
    match value.get("persistChanges") {
        Some(Value::Bool(persist)) => Ok(*persist),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid persistChanges {other}: expected true or false"
        ))),
        None => Err(ApiError::bad_request(
            "missing persistChanges in the createSession body: send true or false explicitly",
        )),
    }
}

pub(crate) fn create_session(
    shared: &Arc<Shared>,
    parsed: &ParsedPath,
    book: usize,
    ctx: &RequestContext,
) -> Result<Reply, ApiError> {
    let persist = persist_changes(&ctx.body)?;

    if ctx.prefer_async && shared.config.async_create.is_some() {
        return Ok(start_operation(shared, parsed, book, persist));
    }

    let id = open_session(shared, book, persist)?;
    let body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#microsoft.graph.workbookSessionInfo", shared.origin),
        "id": id,
        "persistChanges": persist,
    });
    Ok(Reply::json(201, body))
}

/// Opens a session on `book`, or explains why the session cap refuses it.
fn open_session(shared: &Arc<Shared>, book: usize, persist: bool) -> Result<String, ApiError> {
    let id = new_session_id();
    let now = Instant::now();
    let timeout = if persist {
        shared.config.persistent_timeout
    } else {
        shared.config.non_persistent_timeout
    };

    let mut state = shared.state.lock();
    let mut opened = state.open_session(
        id.clone(),
        book,
        persist,
        State::deadline(now, timeout),
        shared.config.session_cap,
    );
    let mut saves = Vec::new();
    if opened.is_err() {
        saves = state.expire_due(now);
        opened = state.open_session(
            id.clone(),
            book,
            persist,
            State::deadline(now, timeout),
            shared.config.session_cap,
        );
    }
    // Scanning every session is only needed for the cap error's Retry-After.
    let next_expiry = if opened.is_err() {
        next_expiry_secs(&state, book, now)
    } else {
        0
    };
    drop(state);
    shared.spawn_saves(saves);

    match opened {
        Ok(()) => {
            tracing::info!(session = %fingerprint(&id), item = %shared.books[book].item_id, persist, "session created");
            Ok(id)
        }
        Err(open) => Err(cap_error(shared, book, open, next_expiry)),
    }
}

fn cap_error(shared: &Shared, book: usize, open: usize, next_expiry: u64) -> ApiError {
    let status = shared.config.session_cap_status;
    tracing::warn!(item = %shared.books[book].item_id, open, "createSession rejected because the workbook is at its session cap");
    let error = ApiError::uncategorized(
        status,
        format!(
            "workbook {} already has {open} open sessions, the maximum; close a session or wait for one to expire",
            shared.books[book].item_id
        ),
    );
    let retry_after = (status == 429).then_some(crate::faults::RetryAfter::Seconds(next_expiry));
    error.with_retry_after(retry_after)
}

/// Returns the whole seconds until the first open session of `book` expires, at least 1.
fn next_expiry_secs(state: &State, book: usize, now: Instant) -> u64 {
    let earliest = state
        .sessions
        .values()
        .filter(|session| session.book == book)
        .map(|session| session.deadline)
        .min();
    earliest
        .map(|deadline| deadline.saturating_duration_since(now).as_secs_f64().ceil() as u64)
        .unwrap_or(1)
        .max(1)
}

/// Returns a new opaque session id in the style of Graph's (`cluster=...&session=...`).
fn new_session_id() -> String {
    format!(
        "cluster=EMU1&session={:032x}{:016x}&usid={:032x}",
        rand::random::<u128>(),
        rand::random::<u64>(),
        rand::random::<u128>()
    )
}

fn start_operation(shared: &Arc<Shared>, parsed: &ParsedPath, book: usize, persist: bool) -> Reply {
    let operation_id = format!("{:032x}", rand::random::<u128>());
    let location = format!(
        "{}{}/operations/{operation_id}",
        shared.origin, parsed.workbook_prefix
    );
    let operation = Operation {
        book,
        persist,
        polls: 0,
        workbook_prefix: parsed.workbook_prefix.clone(),
        outcome: OperationOutcome::Pending,
    };
    shared
        .state
        .lock()
        .operations
        .insert(operation_id.clone(), operation);

    tracing::info!(operation = %operation_id, item = %shared.books[book].item_id, persist, "createSession accepted as a long-running operation");
    Reply {
        status: 202,
        body: None,
        location: Some(location),
    }
}

/// Returns the status of a long-running createSession and advances it by one poll.
pub(crate) fn poll_operation(
    shared: &Arc<Shared>,
    book: usize,
    operation_id: &str,
) -> Result<Reply, ApiError> {
    let not_found = || ApiError::not_found(format!("operation {operation_id} not found"));
    let async_create = shared.config.async_create.unwrap_or_default();

    let mut state = shared.state.lock();
    let operation = state
        .operations
        .get_mut(operation_id)
        .filter(|operation| operation.book == book)
        .ok_or_else(not_found)?;
    operation.polls = operation.polls.saturating_add(1);
    let polls = operation.polls;
    let persist = operation.persist;
    let prefix = operation.workbook_prefix.clone();
    let outcome = operation.outcome.clone();
    drop(state);

    let outcome = match outcome {
        OperationOutcome::Pending if polls <= async_create.polls_before_success => {
            let status = if polls == 1 { "notStarted" } else { "running" };
            return Ok(Reply::json(
                200,
                json!({"id": operation_id, "status": status}),
            ));
        }
        OperationOutcome::Pending => {
            finish_operation(shared, book, operation_id, persist, async_create.fail)
        }
        done => done,
    };

    Ok(Reply::json(
        200,
        operation_body(shared, operation_id, &prefix, &outcome),
    ))
}

/// Ends an operation: creates its session, or records the failure.
fn finish_operation(
    shared: &Arc<Shared>,
    book: usize,
    operation_id: &str,
    persist: bool,
    fail: bool,
) -> OperationOutcome {
    let outcome = if fail {
        OperationOutcome::Failed(
            ApiError::uncategorized(
                500,
                "the emulator was configured to fail this createSession operation",
            )
            .with_inner_code("internalServerErrorUncategorized"),
        )
    } else {
        match open_session(shared, book, persist) {
            Ok(session_id) => {
                let key = format!("{:032x}", rand::random::<u128>());
                let info = SessionInfo {
                    book,
                    session_id,
                    persist,
                };
                shared.state.lock().session_info.insert(key.clone(), info);
                OperationOutcome::Succeeded { key }
            }
            Err(error) => OperationOutcome::Failed(error),
        }
    };

    if let Some(operation) = shared.state.lock().operations.get_mut(operation_id) {
        operation.outcome = outcome.clone();
    }
    outcome
}

fn operation_body(
    shared: &Shared,
    operation_id: &str,
    prefix: &str,
    outcome: &OperationOutcome,
) -> Value {
    match outcome {
        OperationOutcome::Succeeded { key } => json!({
            "id": operation_id,
            "status": "succeeded",
            "resourceLocation": format!("{}{prefix}/sessionInfoResource(key='{key}')", shared.origin),
        }),
        OperationOutcome::Failed(error) => json!({
            "id": operation_id,
            "status": "failed",
            "error": error.to_operation_error(),
        }),
        OperationOutcome::Pending => json!({"id": operation_id, "status": "running"}),
    }
}

pub(crate) fn session_info(shared: &Shared, book: usize, key: &str) -> Result<Reply, ApiError> {
    let state = shared.state.lock();
    let info = state
        .session_info
        .get(key)
        .filter(|info| info.book == book)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("session info '{key}' not found")))?;
    drop(state);

    Ok(Reply::json(
        200,
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#microsoft.graph.workbookSessionInfo", shared.origin),
            "id": info.session_id,
            "persistChanges": info.persist,
        }),
    ))
}

fn required_session_id<'a>(ctx: &'a RequestContext, action: &str) -> Result<&'a str, ApiError> {
    ctx.session_id.as_deref().ok_or_else(|| {
        ApiError::bad_request(format!(
            "missing workbook-session-id header: {action} needs the id of the session"
        ))
        .with_inner_code("badRequestUncategorized")
    })
}

pub(crate) fn refresh_session(
    shared: &Arc<Shared>,
    book: usize,
    ctx: &RequestContext,
) -> Result<Reply, ApiError> {
    let id = required_session_id(ctx, "refreshSession")?;
    let now = Instant::now();

    let mut state = shared.state.lock();
    state.stats_mut(id).refreshes_received += 1;
    let mut saves = Vec::new();
    let refreshed = match state.live_session(id, book, now, &mut saves) {
        Ok(session) => {
            let timeout = if session.persist {
                shared.config.persistent_timeout
            } else {
                shared.config.non_persistent_timeout
            };
            session.deadline = State::deadline(now, timeout);
            state.counters.sessions_refreshed += 1;
            true
        }
        Err(_) => false,
    };
    drop(state);
    shared.spawn_saves(saves);

    if !refreshed {
        return Err(ApiError::invalid_session(
            shared.config.invalid_session_status,
            &fingerprint(id),
        ));
    }
    tracing::debug!(session = %fingerprint(id), "session refreshed");
    Ok(Reply::no_content())
}

pub(crate) async fn close_session(
    shared: &Arc<Shared>,
    book: usize,
    ctx: &RequestContext,
) -> Result<Reply, ApiError> {
    let id = required_session_id(ctx, "closeSession")?;
    let now = Instant::now();

    let mut saves = Vec::new();
    let (live, save) = {
        let mut state = shared.state.lock();
        state.stats_mut(id).closes_received += 1;
        let live = state.live_session(id, book, now, &mut saves).is_ok();
        if live {
            state.stats_mut(id).closes_accepted += 1;
        }
        let save = if live {
            state.end_session(id, false)
        } else {
            None
        };
        (live, save)
    };
    shared.spawn_saves(saves);

    if !live {
        return Err(ApiError::invalid_session(
            shared.config.invalid_session_status,
            &fingerprint(id),
        ));
    }
    tracing::info!(session = %fingerprint(id), "session closed");
    if let Some(save) = save {
        shared.save_now(save.book, &save.edits).await?;
    }
    Ok(Reply::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persist_changes_requires_an_explicit_boolean() {
        let cases: [(&[u8], Option<bool>); 6] = [
            (b"{\"persistChanges\": true}", Some(true)),
            (b"{\"persistChanges\": false}", Some(false)),
            (b"", None),
            (b"{}", None),
            (b"{\"persistChanges\": \"yes\"}", None),
            (b"[1,", None),
        ];

        for (body, expected) in cases {
            let parsed = persist_changes(body).ok();

            assert_eq!(parsed, expected, "body {:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn session_ids_are_long_and_unique() {
        let first = new_session_id();
        let second = new_session_id();

        assert!(
            first.len() >= 40,
            "session id {first} is shorter than 40 characters"
        );
        assert_ne!(first, second, "two session ids are equal");
    }
}
