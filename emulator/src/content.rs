//! The workbook content endpoints: worksheets, `range(address=...)` and `usedRange`.
//!
//! A request with a `workbook-session-id` reads through the session's overlay of edits and
//! writes into it. A request without one reads the workbook as saved and writes straight to
//! the file.

use crate::address::{CellRange, parse_address, quote_sheet_name};
use crate::book::{CellValue, Edits, SheetEdits, SheetInfo};
use crate::graph_error::ApiError;
use crate::path::SheetRef;
use crate::shared::{Reply, RequestContext, Shared};
use crate::state::fingerprint;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::time::Instant;

/// The maximum number of cells one range request may read or write. A bigger range gets 400, so that a
/// request for `A1:XFD1048576` cannot exhaust memory.
pub(crate) const MAX_RANGE_CELLS: u64 = 1_000_000;

/// The open session a request runs in.
#[derive(Debug)]
pub(crate) struct SessionScope {
    id: String,
}

/// Validates the request's session, if it names one, and counts the request as activity.
pub(crate) fn enter_session(
    shared: &Arc<Shared>,
    book: usize,
    ctx: &RequestContext,
) -> Result<Option<SessionScope>, ApiError> {
    let Some(id) = ctx.session_id.as_deref() else {
        return Ok(None);
    };
    let now = Instant::now();

    let mut state = shared.state.lock();
    let mut saves = Vec::new();
    let live = match state.live_session(id, book, now, &mut saves) {
        Ok(session) => {
            let timeout = if session.persist {
                shared.config.persistent_timeout
            } else {
                shared.config.non_persistent_timeout
            };
            session.deadline = crate::state::State::deadline(now, timeout);
            true
        }
        Err(_) => false,
    };
    drop(state);
    shared.spawn_saves(saves);

    if !live {
        return Err(ApiError::invalid_session(
            shared.config.invalid_session_status,
            &fingerprint(id),
        ));
    }
    Ok(Some(SessionScope { id: id.to_owned() }))
}

pub(crate) fn list_worksheets(shared: &Shared, book: usize) -> Reply {
    let sheets: Vec<Value> = shared.books[book].sheets().iter().map(sheet_json).collect();
    Reply::json(200, json!({ "value": sheets }))
}

pub(crate) fn get_worksheet(
    shared: &Shared,
    book: usize,
    sheet: &SheetRef,
) -> Result<Reply, ApiError> {
    let info = find_sheet(shared, book, sheet)?;
    Ok(Reply::json(200, sheet_json(&info)))
}

fn sheet_json(sheet: &SheetInfo) -> Value {
    json!({
        "id": sheet.id,
        "name": sheet.name,
        "position": sheet.position,
        "visibility": sheet.visibility,
    })
}

fn find_sheet(shared: &Shared, book: usize, sheet: &SheetRef) -> Result<SheetInfo, ApiError> {
    shared.books[book].find_sheet(&sheet.0).ok_or_else(|| {
        ApiError::not_found(format!("worksheet '{}' not found", sheet.0))
            .with_inner_code("notFoundUncategorized")
    })
}

/// Parses a range address and checks that its sheet prefix, if any, names `sheet`.
fn resolve_range(sheet: &SheetInfo, address: &str) -> Result<CellRange, ApiError> {
    let parsed = parse_address(address).map_err(ApiError::bad_request)?;
    let other_sheet = parsed
        .sheet
        .as_ref()
        .filter(|prefix| prefix.to_lowercase() != sheet.name.to_lowercase());
    if let Some(prefix) = other_sheet {
        return Err(ApiError::bad_request(format!(
            "address '{address}' names sheet '{prefix}' but the request is on worksheet '{}'",
            sheet.name
        )));
    }
    if parsed.range.cell_count() > MAX_RANGE_CELLS {
        return Err(ApiError::bad_request(format!(
            "range '{address}' has {} cells, more than the emulator's limit of {MAX_RANGE_CELLS}",
            parsed.range.cell_count()
        )));
    }
    Ok(parsed.range)
}

/// Returns the session's edits of one sheet, or none for a sessionless request.
fn overlay(shared: &Shared, scope: Option<&SessionScope>, sheet: &SheetInfo) -> SheetEdits {
    let Some(scope) = scope else {
        return SheetEdits::new();
    };
    let state = shared.state.lock();
    state
        .sessions
        .get(&scope.id)
        .and_then(|session| session.edits.get(&sheet.name))
        .cloned()
        .unwrap_or_default()
}

fn range_json(sheet: &SheetInfo, range: CellRange, values: &[Vec<CellValue>]) -> Value {
    let address = format!("{}!{}", quote_sheet_name(&sheet.name), range.to_a1());
    let values: Vec<Value> = values
        .iter()
        .map(|row| Value::Array(row.iter().map(CellValue::to_json).collect()))
        .collect();
    json!({
        "address": address,
        "addressLocal": address,
        "cellCount": range.cell_count(),
        "columnCount": range.column_count(),
        "columnIndex": range.first_column - 1,
        "rowCount": range.row_count(),
        "rowIndex": range.first_row - 1,
        "values": values,
    })
}

pub(crate) fn get_range(
    shared: &Shared,
    book: usize,
    scope: Option<&SessionScope>,
    sheet: &SheetRef,
    address: &str,
) -> Result<Reply, ApiError> {
    let info = find_sheet(shared, book, sheet)?;
    let range = resolve_range(&info, address)?;

    let overlay = overlay(shared, scope, &info);
    let values = shared.books[book].read_range(&info, range, &overlay);
    Ok(Reply::json(200, range_json(&info, range, &values)))
}

pub(crate) fn get_used_range(
    shared: &Shared,
    book: usize,
    scope: Option<&SessionScope>,
    sheet: &SheetRef,
) -> Result<Reply, ApiError> {
    let info = find_sheet(shared, book, sheet)?;

    let overlay = overlay(shared, scope, &info);
    let range = shared.books[book]
        .used_range(&info, &overlay)
        .unwrap_or(CellRange::single(1, 1));
    if range.cell_count() > MAX_RANGE_CELLS {
        return Err(ApiError::bad_request(format!(
            "the used range {} has {} cells, more than the emulator's limit of {MAX_RANGE_CELLS}",
            range.to_a1(),
            range.cell_count()
        )));
    }
    let values = shared.books[book].read_range(&info, range, &overlay);
    Ok(Reply::json(200, range_json(&info, range, &values)))
}

/// Parses a PATCH body's `values` and checks it has the shape of `range`.
fn parse_values(body: &[u8], range: CellRange, address: &str) -> Result<SheetEdits, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!("invalid JSON in the range body: {error}"))
    })?;
    let rows = value
        .get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("missing values: send {\"values\": [[...], ...]}"))?;

    let expected = format!(
        "{} rows of {} columns",
        range.row_count(),
        range.column_count()
    );
    let shape_error = |found: String| {
        ApiError::bad_request(format!(
            "values has {found} but range '{address}' is {expected}"
        ))
    };
    if rows.len() != range.row_count() as usize {
        return Err(shape_error(format!("{} rows", rows.len())));
    }

    let mut edits = SheetEdits::new();
    for (row_offset, row) in rows.iter().enumerate() {
        let cells = row
            .as_array()
            .ok_or_else(|| shape_error(format!("a row {} that is not an array", row_offset + 1)))?;
        if cells.len() != range.column_count() as usize {
            return Err(shape_error(format!(
                "{} columns in row {}",
                cells.len(),
                row_offset + 1
            )));
        }
        for (column_offset, cell) in cells.iter().enumerate() {
            let value = CellValue::from_json(cell).map_err(|reason| {
                ApiError::bad_request(format!(
                    "invalid value at row {} column {}: {reason}",
                    row_offset + 1,
                    column_offset + 1
                ))
            })?;
            if let Some(value) = value {
                let row = range.first_row + row_offset as u32;
                let column = range.first_column + column_offset as u32;
                edits.insert((row, column), value);
            }
        }
    }
    Ok(edits)
}

pub(crate) async fn patch_range(
    shared: &Shared,
    book: usize,
    scope: Option<&SessionScope>,
    sheet: &SheetRef,
    address: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let info = find_sheet(shared, book, sheet)?;
    let range = resolve_range(&info, address)?;
    let edits = parse_values(body, range, address)?;

    match scope {
        Some(scope) => write_into_session(shared, scope, &info, edits)?,
        None => {
            let mut workbook_edits = Edits::new();
            workbook_edits.insert(info.name.clone(), edits);
            shared.save_now(book, &workbook_edits).await?;
        }
    }

    let overlay = overlay(shared, scope, &info);
    let values = shared.books[book].read_range(&info, range, &overlay);
    Ok(Reply::json(200, range_json(&info, range, &values)))
}

fn write_into_session(
    shared: &Shared,
    scope: &SessionScope,
    sheet: &SheetInfo,
    edits: SheetEdits,
) -> Result<(), ApiError> {
    let mut state = shared.state.lock();
    let Some(session) = state.sessions.get_mut(&scope.id) else {
        drop(state);
        return Err(ApiError::invalid_session(
            shared.config.invalid_session_status,
            &fingerprint(&scope.id),
        ));
    };
    session
        .edits
        .entry(sheet.name.clone())
        .or_default()
        .extend(edits);
    Ok(())
}
