//! Set-up for tests against the workbook emulator: a copy of the sample workbook, the emulator
//! serving it, and a client aimed at it.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;
use workbook_emulator::{Emulator, EmulatorBuilder};
use workbook_session::{RetryPolicy, Workbook, WorkbookClient, WorkbookClientBuilder};

pub const EMULATOR_TOKEN: &str = "emulator-secret-token";
pub const ITEM: &str = "sample";

/// A copy of `examples/data/sample.xlsx` in a temporary folder, removed on drop.
pub struct SampleFile {
    pub folder: TempDir,
    pub path: PathBuf,
}

pub fn sample_file() -> SampleFile {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("sample.xlsx");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/sample.xlsx");
    std::fs::copy(sample, &path).expect("the sample workbook copies");
    SampleFile { folder, path }
}

pub fn emulator_builder(file: &SampleFile) -> EmulatorBuilder {
    Emulator::builder()
        .workbook(ITEM, &file.path)
        .token(EMULATOR_TOKEN)
}

pub fn client_builder(emulator: &Emulator) -> WorkbookClientBuilder {
    WorkbookClient::builder()
        .base_url(emulator.base_url())
        .bearer_token(EMULATOR_TOKEN)
        .respond_async(false)
        .retry_policy(
            RetryPolicy::default()
                .initial_backoff(Duration::from_millis(100))
                .max_backoff(Duration::from_secs(2)),
        )
}

pub fn sample_workbook() -> Workbook {
    Workbook::me_item(ITEM).expect("a valid item id")
}

/// Reads one cell of the saved file with calamine, as text.
pub fn saved_cell(file: &SampleFile, sheet: &str, row: u32, column: u32) -> String {
    use calamine::{Reader, Xlsx, open_workbook};

    let mut book: Xlsx<_> = open_workbook(&file.path).expect("the saved workbook opens");
    let range = book.worksheet_range(sheet).expect("the sheet exists");
    range
        .get_value((row, column))
        .map_or_else(String::new, ToString::to_string)
}
