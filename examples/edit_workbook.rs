//! The main job: open a session on a workbook, edit it through the guard, and have every
//! session closed whatever happens.
//!
//! By default it copies `examples/data/sample.xlsx` (written by openpyxl) to a temporary
//! folder, serves it with the workbook emulator on loopback, edits it, and re-reads the saved
//! file from disk to show the edit landed:
//!
//! ```text
//! cargo run --example edit_workbook
//! ```
//!
//! With `GRAPH_TOKEN` set, the same edit runs against Microsoft Graph instead. The workbook is
//! `GRAPH_DRIVE_ID` + `GRAPH_ITEM_ID`, or `GRAPH_ITEM_ID` alone (in the signed-in user's
//! drive), or `GRAPH_ITEM_PATH` (a path in that drive). `GRAPH_BASE_URL` overrides the
//! endpoint. The sheet must have the layout of the sample's `Sales` sheet, or set
//! `GRAPH_SHEET` and `GRAPH_RANGE` to a 2-by-2 range of numbers to overwrite.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use workbook_emulator::Emulator;
use workbook_session::{SessionOptions, Stats, Workbook, WorkbookClient};

/// The bearer token the emulator accepts in the offline run.
const EMULATOR_TOKEN: &str = "emulator-token";

/// The drive item id the emulator serves the sample under.
const EMULATOR_ITEM: &str = "sample-workbook";

/// The cells the edit overwrites and the values written there.
pub struct Edit {
    pub sheet: String,
    pub range: String,
    pub values: Value,
}

impl Edit {
    /// Reads the sheet and range from the environment, checking before any request that the
    /// range is 2 by 2, the shape of the values written.
    fn from_env() -> Result<Edit, String> {
        let edit = Edit {
            sheet: std::env::var("GRAPH_SHEET").unwrap_or_else(|_| "Sales".to_owned()),
            range: std::env::var("GRAPH_RANGE").unwrap_or_else(|_| "C2:D3".to_owned()),
            values: json!([[130, 15600.5], [101, 12625]]),
        };
        let shape = edit
            .range
            .split_once(':')
            .and_then(|(start, end)| Some((cell_position(start).ok()?, cell_position(end).ok()?)))
            .map(|((top, left), (bottom, right))| {
                (bottom.checked_sub(top), right.checked_sub(left))
            });
        if shape != Some((Some(1), Some(1))) {
            return Err(format!(
                "GRAPH_RANGE {:?} is not a 2-by-2 range such as C2:D3, the shape of the values written",
                edit.range
            ));
        }
        Ok(edit)
    }

    fn path(&self) -> String {
        format!(
            "worksheets('{}')/range(address='{}')",
            self.sheet, self.range
        )
    }
}

/// The values and counters the edit observed, for the caller to print or check.
#[derive(Debug)]
pub struct EditReport {
    pub before: Value,
    pub after: Value,
    pub stats: Stats,
    pub shutdown_closed: u64,
}

/// Runs the edit: a persistent session that reads, writes, reads back and closes; then a
/// second session dropped without `close()`; then the client's shutdown.
pub async fn edit(
    client: &WorkbookClient,
    workbook: &Workbook,
    edit: &Edit,
) -> Result<EditReport, workbook_session::Error> {
    let session = client
        .create_session(workbook, SessionOptions::persistent())
        .await?;
    println!("session    {} opened (persistent)", session.fingerprint());

    let before = values(&session, edit).await?;
    println!("read       {}!{} before: {before}", edit.sheet, edit.range);

    let body = json!({ "values": edit.values });
    session.patch(&edit.path()).json(&body).send().await?;
    println!(
        "write      {}!{} <- {}",
        edit.sheet, edit.range, edit.values
    );

    let after = values(&session, edit).await?;
    println!("read       {}!{} after:  {after}", edit.sheet, edit.range);

    let fingerprint = session.fingerprint();
    let outcome = session.close().await?;
    println!("close      {fingerprint} {outcome:?}");

    {
        let scoped = client
            .create_session(workbook, SessionOptions::non_persistent())
            .await?;
        let sheets: Value = scoped.get("worksheets").send_json().await?;
        let count = sheets["value"].as_array().map_or(0, Vec::len);
        println!(
            "session    {} opened in an inner scope, saw {count} sheets, dropped without close()",
            scoped.fingerprint()
        );
    }

    let report = client.shutdown(Duration::from_secs(10)).await;
    println!(
        "shutdown   closed {} (by any path, queued drops included), already gone {}, failed {}, abandoned {} in {:?}",
        report.closed, report.already_gone, report.failed, report.abandoned, report.elapsed
    );
    let stats = client.stats();
    println!(
        "stats      created {}, open {}, closed explicitly {}, closed on drop {}, closed at shutdown {}, failures {}, abandoned {}",
        stats.created,
        stats.open,
        stats.closed_explicitly,
        stats.closed_on_drop,
        stats.closed_at_shutdown,
        stats.close_failures,
        stats.abandoned
    );
    Ok(EditReport {
        before,
        after,
        stats,
        shutdown_closed: report.closed,
    })
}

async fn values(
    session: &workbook_session::SessionGuard,
    edit: &Edit,
) -> Result<Value, workbook_session::Error> {
    let range: Value = session.get(&edit.path()).send_json().await?;
    Ok(range["values"].clone())
}

/// Copies the sample into `folder`, serves it with the emulator and runs the edit.
/// Returns the report and the path of the edited file.
pub async fn edit_on_emulator(folder: &Path) -> Result<(EditReport, PathBuf), String> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/sample.xlsx");
    let file = folder.join("sample.xlsx");
    std::fs::copy(&sample, &file).map_err(|error| {
        format!(
            "failed to copy {} to {}: {error}",
            sample.display(),
            file.display()
        )
    })?;

    let emulator = Emulator::builder()
        .workbook(EMULATOR_ITEM, &file)
        .token(EMULATOR_TOKEN)
        .start()
        .await
        .map_err(|error| format!("failed to start the emulator: {error}"))?;
    println!(
        "emulator   serving {} at {}",
        file.display(),
        emulator.base_url()
    );

    let client = WorkbookClient::builder()
        .base_url(emulator.base_url())
        .bearer_token(EMULATOR_TOKEN)
        .build()
        .map_err(|error| error_line(&error))?;
    let workbook = Workbook::me_item(EMULATOR_ITEM).map_err(|error| error_line(&error))?;
    let report = edit(&client, &workbook, &Edit::from_env()?)
        .await
        .map_err(|error| error_line(&error))?;

    emulator.wait_for_saves().await;
    println!("emulator   open sessions: {}", emulator.open_sessions());
    emulator.shutdown().await;
    Ok((report, file))
}

/// Reads `range` of `sheet` from the `.xlsx` at `file` with calamine, a reader independent
/// of both the emulator and openpyxl.
pub fn read_saved(file: &Path, sheet: &str, range: &str) -> Result<Vec<Vec<String>>, String> {
    use calamine::{Reader, Xlsx, open_workbook};

    let mut book: Xlsx<_> = open_workbook(file)
        .map_err(|error| format!("failed to open {}: {error}", file.display()))?;
    let cells = book
        .worksheet_range(sheet)
        .map_err(|error| format!("failed to read sheet {sheet}: {error}"))?;
    let (start, end) = range
        .split_once(':')
        .ok_or_else(|| format!("range {range} is not of the form A1:B2"))?;
    let (first_row, first_column) = cell_position(start)?;
    let (last_row, last_column) = cell_position(end)?;
    let rows = (first_row..=last_row)
        .map(|row| {
            (first_column..=last_column)
                .map(|column| {
                    cells
                        .get_value((row, column))
                        .map_or_else(String::new, ToString::to_string)
                })
                .collect()
        })
        .collect();
    Ok(rows)
}

/// Converts `C2` to the zero-based (row, column) pair `(1, 2)`.
fn cell_position(cell: &str) -> Result<(u32, u32), String> {
    let letters: String = cell.chars().take_while(char::is_ascii_alphabetic).collect();
    let digits = &cell[letters.len()..];
    let column = letters
        .bytes()
        .try_fold(0u32, |acc, b| {
            acc.checked_mul(26)?
                .checked_add(u32::from(b.to_ascii_uppercase() - b'A' + 1))
        })
        .filter(|&column| column > 0)
        .ok_or_else(|| format!("invalid cell {cell}"))?;
    let row: u32 = digits
        .parse()
        .ok()
        .filter(|&row| row > 0)
        .ok_or_else(|| format!("invalid cell {cell}"))?;
    Ok((row - 1, column - 1))
}

/// Formats an error and its sources on one line.
fn error_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

async fn run_offline() -> Result<(), String> {
    let folder = tempfile::Builder::new()
        .prefix("edit_workbook-")
        .tempdir()
        .map_err(|error| format!("failed to create a temporary folder: {error}"))?
        .keep();
    let (report, file) = edit_on_emulator(&folder).await?;
    if report.stats.open != 0 {
        return Err(format!("{} sessions are still open", report.stats.open));
    }

    let edit = Edit::from_env()?;
    let saved = read_saved(&file, &edit.sheet, &edit.range)?;
    println!(
        "file       {} re-read from disk: {}!{} = {saved:?}",
        file.display(),
        edit.sheet,
        edit.range
    );
    let notes = read_saved(&file, "Notes", "A1:A1")?;
    println!("file       untouched cell Notes!A1 = {:?}", notes[0][0]);
    Ok(())
}

async fn run_against_graph(token: String) -> Result<(), String> {
    let mut builder = WorkbookClient::builder().bearer_token(token);
    if let Ok(base) = std::env::var("GRAPH_BASE_URL") {
        builder = builder.base_url(base);
    }
    let client = builder.build().map_err(|error| error_line(&error))?;
    let workbook = graph_workbook()?;
    println!("graph      editing {workbook} at {}", client.base_url());
    let edit_plan = Edit::from_env()?;
    edit(&client, &workbook, &edit_plan)
        .await
        .map_err(|error| error_line(&error))?;
    Ok(())
}

fn graph_workbook() -> Result<Workbook, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let workbook = match (
        var("GRAPH_DRIVE_ID"),
        var("GRAPH_ITEM_ID"),
        var("GRAPH_ITEM_PATH"),
    ) {
        (Some(drive), Some(item), _) => Workbook::drive_item(&drive, &item),
        (None, Some(item), _) => Workbook::me_item(&item),
        (_, None, Some(path)) => Workbook::me_path(&path),
        _ => {
            return Err("GRAPH_TOKEN is set but no workbook is: set GRAPH_ITEM_ID (and GRAPH_DRIVE_ID) or GRAPH_ITEM_PATH".to_owned());
        }
    };
    workbook.map_err(|error| error_line(&error))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let result = match std::env::var("GRAPH_TOKEN") {
        Ok(token) if !token.is_empty() => run_against_graph(token).await,
        _ => run_offline().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("edit_workbook: {reason}");
            ExitCode::FAILURE
        }
    }
}
