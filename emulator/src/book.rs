//! Workbooks backed by `.xlsx` files: the in-memory model, cell reads and atomic saves.
//!
//! Each [`Book`] keeps the spreadsheet that umya-spreadsheet read from its file. Reads lock
//! the model briefly. Edits are applied to the model, which is then cloned, so the clone is
//! written to a temporary file in the same folder, synced and renamed over the original
//! outside the lock.
//! Untouched sheets, cells and formatting are carried through by umya-spreadsheet.

use crate::address::CellRange;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use umya_spreadsheet::{CellRawValue, SheetStateValues, Spreadsheet};

/// A cell value as the Graph range API carries it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CellValue {
    Empty,
    Number(f64),
    Text(String),
    Bool(bool),
}

/// The largest integer an `f64` represents exactly (2^53).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Writes a whole number without a fraction (`120`, not `120.0`), as Graph does.
fn number_to_json(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() <= MAX_EXACT_INTEGER {
        Value::from(number as i64)
    } else {
        Value::from(number)
    }
}

impl CellValue {
    pub(crate) fn to_json(&self) -> Value {
        match self {
            CellValue::Empty => Value::String(String::new()),
            CellValue::Number(number) => number_to_json(*number),
            CellValue::Text(text) => Value::String(text.clone()),
            CellValue::Bool(flag) => Value::Bool(*flag),
        }
    }

    /// Converts one element of a PATCH `values` array. `null` means "leave the cell as it is"
    /// and returns `Ok(None)`.
    pub(crate) fn from_json(value: &Value) -> Result<Option<CellValue>, &'static str> {
        match value {
            Value::Null => Ok(None),
            Value::Bool(flag) => Ok(Some(CellValue::Bool(*flag))),
            Value::Number(number) => number
                .as_f64()
                .map(|number| Some(CellValue::Number(number)))
                .ok_or("a number that does not fit a 64-bit float"),
            Value::String(text) if text.is_empty() => Ok(Some(CellValue::Empty)),
            Value::String(text) => Ok(Some(CellValue::Text(text.clone()))),
            Value::Array(_) | Value::Object(_) => {
                Err("an array or object where a number, string, boolean or null belongs")
            }
        }
    }

    fn from_raw(raw: &CellRawValue) -> CellValue {
        match raw {
            CellRawValue::Numeric(number) => CellValue::Number(*number),
            CellRawValue::Bool(flag) => CellValue::Bool(*flag),
            CellRawValue::Empty => CellValue::Empty,
            CellRawValue::String(_)
            | CellRawValue::RichText(_)
            | CellRawValue::Lazy(_)
            | CellRawValue::Error(_) => CellValue::Text(raw.to_string()),
        }
    }
}

/// The edits of one sheet, keyed by (row, column), both 1-based.
pub(crate) type SheetEdits = BTreeMap<(u32, u32), CellValue>;

/// Edits to a workbook, keyed by the sheet's name as the workbook spells it.
pub(crate) type Edits = BTreeMap<String, SheetEdits>;

/// A worksheet as the worksheets endpoint lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SheetInfo {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) position: usize,
    pub(crate) visibility: &'static str,
}

/// A registered workbook and the file behind it.
#[derive(Debug)]
pub(crate) struct Book {
    pub(crate) item_id: String,
    pub(crate) drive_path: String,
    pub(crate) file: PathBuf,
    model: Mutex<Model>,
    /// The generation last written to the file. Holding it serializes the saves of one
    /// workbook, so an older snapshot never overwrites a newer one.
    written: tokio::sync::Mutex<u64>,
}

#[derive(Debug)]
struct Model {
    spreadsheet: Spreadsheet,
    generation: u64,
}

/// A copy of the model to write, taken after applying edits.
pub(crate) struct Snapshot {
    generation: u64,
    spreadsheet: Spreadsheet,
}

impl Book {
    /// Reads `file` into memory. This blocks: call it from a blocking context.
    pub(crate) fn load(item_id: String, drive_path: String, file: PathBuf) -> io::Result<Book> {
        let spreadsheet = umya_spreadsheet::reader::xlsx::read(&file).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("failed to read workbook {}: {error}", file.display()),
            )
        })?;
        Ok(Book {
            item_id,
            drive_path,
            file,
            model: Mutex::new(Model {
                spreadsheet,
                generation: 0,
            }),
            written: tokio::sync::Mutex::new(0),
        })
    }

    pub(crate) fn sheets(&self) -> Vec<SheetInfo> {
        let model = self.model.lock();
        model
            .spreadsheet
            .get_sheet_collection_no_check()
            .iter()
            .enumerate()
            .map(|(position, sheet)| SheetInfo {
                id: sheet_id(position),
                name: sheet.get_name().to_owned(),
                position,
                visibility: match sheet.get_state() {
                    SheetStateValues::Visible => "Visible",
                    SheetStateValues::Hidden => "Hidden",
                    SheetStateValues::VeryHidden => "VeryHidden",
                },
            })
            .collect()
    }

    /// Finds a sheet by name (case-insensitive, as Excel compares sheet names) or by id.
    pub(crate) fn find_sheet(&self, reference: &str) -> Option<SheetInfo> {
        let sheets = self.sheets();
        let by_name = sheets
            .iter()
            .find(|sheet| sheet.name.to_lowercase() == reference.to_lowercase());
        by_name
            .or_else(|| sheets.iter().find(|sheet| sheet.id == reference))
            .cloned()
    }

    /// Reads a range of the file's model, with `overlay` taking precedence where it has a cell.
    pub(crate) fn read_range(
        &self,
        sheet: &SheetInfo,
        range: CellRange,
        overlay: &SheetEdits,
    ) -> Vec<Vec<CellValue>> {
        let model = self.model.lock();
        let worksheet = model.spreadsheet.get_sheet(&sheet.position);
        (range.first_row..=range.last_row)
            .map(|row| {
                (range.first_column..=range.last_column)
                    .map(|column| match overlay.get(&(row, column)) {
                        Some(value) => value.clone(),
                        None => worksheet
                            .and_then(|worksheet| worksheet.get_cell((column, row)))
                            .map(|cell| CellValue::from_raw(cell.get_cell_value().get_raw_value()))
                            .unwrap_or(CellValue::Empty),
                    })
                    .collect()
            })
            .collect()
    }

    /// Returns the smallest range that contains every non-empty cell, or `None` for an empty sheet.
    pub(crate) fn used_range(&self, sheet: &SheetInfo, overlay: &SheetEdits) -> Option<CellRange> {
        let mut bounds: Option<CellRange> = None;
        let mut include = |row: u32, column: u32| {
            let range = bounds.get_or_insert(CellRange::single(row, column));
            range.first_row = range.first_row.min(row);
            range.first_column = range.first_column.min(column);
            range.last_row = range.last_row.max(row);
            range.last_column = range.last_column.max(column);
        };

        let model = self.model.lock();
        if let Some(worksheet) = model.spreadsheet.get_sheet(&sheet.position) {
            for cell in worksheet.get_cell_collection() {
                let row = *cell.get_coordinate().get_row_num();
                let column = *cell.get_coordinate().get_col_num();
                let overridden = overlay.contains_key(&(row, column));
                if !overridden && !cell.get_cell_value().get_raw_value().is_empty() {
                    include(row, column);
                }
            }
        }
        drop(model);

        for (&(row, column), value) in overlay {
            if *value != CellValue::Empty {
                include(row, column);
            }
        }
        bounds
    }

    /// Applies edits to the in-memory model and returns a snapshot to save.
    pub(crate) fn apply(&self, edits: &Edits) -> Snapshot {
        let mut model = self.model.lock();
        for (sheet_name, cells) in edits {
            let Some(worksheet) = model.spreadsheet.get_sheet_by_name_mut(sheet_name) else {
                tracing::warn!(sheet = %sheet_name, "edits for a sheet that no longer exists were dropped");
                continue;
            };
            for (&(row, column), value) in cells {
                let cell = worksheet.get_cell_mut((column, row));
                match value {
                    CellValue::Empty => cell.set_blank(),
                    CellValue::Number(number) => cell.set_value_number(*number),
                    CellValue::Text(text) => cell.set_value_string(text.clone()),
                    CellValue::Bool(flag) => cell.set_value_bool(*flag),
                };
            }
        }
        model.generation += 1;
        Snapshot {
            generation: model.generation,
            spreadsheet: model.spreadsheet.clone(),
        }
    }

    /// Writes a snapshot to the file, unless a newer snapshot was written already.
    ///
    /// # Errors
    /// Returns the I/O error of the write; the file is then left as it was.
    pub(crate) async fn save(self: &Arc<Self>, snapshot: Snapshot) -> io::Result<()> {
        let mut written = self.written.lock().await;
        if *written >= snapshot.generation {
            return Ok(());
        }

        let file = self.file.clone();
        let generation = snapshot.generation;
        tokio::task::spawn_blocking(move || write_atomically(&file, &snapshot.spreadsheet))
            .await
            .map_err(|error| io::Error::other(format!("the save task failed: {error}")))??;
        *written = generation;
        Ok(())
    }
}

/// Returns the Graph-style id of the sheet at `position`, stable while sheets keep their order.
fn sheet_id(position: usize) -> String {
    format!("{{00000000-0001-0000-{position:04X}-000000000000}}")
}

/// Writes the spreadsheet to a temporary file beside `file`, syncs it and renames it over
/// `file`, so that a reader sees either the old or the new workbook, never a partial one.
fn write_atomically(file: &Path, spreadsheet: &Spreadsheet) -> io::Result<()> {
    let folder = file
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = folder.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));

    let result =
        write_and_sync(&temporary, spreadsheet).and_then(|()| std::fs::rename(&temporary, file));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result?;

    sync_folder(folder);
    Ok(())
}

fn write_and_sync(path: &Path, spreadsheet: &Spreadsheet) -> io::Result<()> {
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    umya_spreadsheet::writer::xlsx::write_writer(spreadsheet, &mut out)
        .map_err(|error| io::Error::other(format!("failed to encode the workbook: {error}")))?;
    out.flush()?;
    let file = out.into_inner().map_err(|error| error.into_error())?;
    file.sync_all()
}

/// Syncs the folder so the rename itself is durable. Some platforms cannot open a folder for
/// syncing; the rename has happened either way, so a failure is only logged.
fn sync_folder(folder: &Path) {
    let synced = std::fs::File::open(folder).and_then(|handle| handle.sync_all());
    if let Err(error) = synced {
        tracing::debug!(%error, folder = %folder.display(), "could not sync the folder after a save");
    }
}
