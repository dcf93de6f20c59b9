//! Helpers shared by the emulator's integration tests: fixture workbooks and request helpers.

#![allow(dead_code)]

use calamine::{Data, Reader, Xlsx, open_workbook};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use workbook_emulator::{Emulator, EmulatorBuilder};

pub const TOKEN: &str = "test-token";
pub const ITEM: &str = "item-1";

/// Writes a workbook with three sheets:
/// - `Data`: A1 "Name", B1 "Amount", A2 "alpha", B2 10, A3 "beta", B3 20.5, C3 TRUE, AA5 7
/// - `Summary`: A1 "Total" (bold), B1 30.5
/// - `Q1 'north'`: A1 "north"
pub fn write_fixture(path: &Path) {
    let mut book = umya_spreadsheet::new_file();
    let data = book
        .get_sheet_mut(&0)
        .expect("the new file has a first sheet");
    data.set_name("Data");
    data.get_cell_mut("A1").set_value_string("Name");
    data.get_cell_mut("B1").set_value_string("Amount");
    data.get_cell_mut("A2").set_value_string("alpha");
    data.get_cell_mut("B2").set_value_number(10);
    data.get_cell_mut("A3").set_value_string("beta");
    data.get_cell_mut("B3").set_value_number(20.5);
    data.get_cell_mut("C3").set_value_bool(true);
    data.get_cell_mut("AA5").set_value_number(7);

    let summary = book.new_sheet("Summary").expect("sheet Summary is new");
    summary.get_cell_mut("A1").set_value_string("Total");
    summary.get_style_mut("A1").get_font_mut().set_bold(true);
    summary.get_cell_mut("B1").set_value_number(30.5);

    let quoted = book
        .new_sheet("Q1 'north'")
        .expect("sheet Q1 'north' is new");
    quoted.get_cell_mut("A1").set_value_string("north");

    umya_spreadsheet::writer::xlsx::write(&book, path).expect("the fixture is written");
}

/// A temporary folder holding one fixture workbook, `Book.xlsx`.
pub struct Fixture {
    pub dir: TempDir,
    pub file: PathBuf,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("Book.xlsx");
    write_fixture(&file);
    Fixture { dir, file }
}

/// Returns a builder serving the fixture as `item-1`, requiring `test-token`.
pub fn builder(fixture: &Fixture) -> EmulatorBuilder {
    Emulator::builder()
        .workbook(ITEM, &fixture.file)
        .token(TOKEN)
}

pub async fn start(fixture: &Fixture) -> Emulator {
    builder(fixture).start().await.expect("the emulator starts")
}

/// Returns a client without idle connections, so that it starts no pool timer that a paused
/// test clock would jump to.
pub fn client() -> Client {
    Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a reqwest client")
}

/// Returns the workbook URL of `item-1`, `{base}/me/drive/items/item-1/workbook`.
pub fn workbook_url(emulator: &Emulator) -> String {
    format!("{}/me/drive/items/{ITEM}/workbook", emulator.base_url())
}

pub fn authed(request: RequestBuilder) -> RequestBuilder {
    request.bearer_auth(TOKEN)
}

pub fn with_session(request: RequestBuilder, session: &str) -> RequestBuilder {
    authed(request).header("workbook-session-id", session)
}

/// Creates a session and returns its id, failing the test on any status but 201.
pub async fn create_session(client: &Client, workbook: &str, persist: bool) -> String {
    let response = authed(client.post(format!("{workbook}/createSession")))
        .json(&json!({ "persistChanges": persist }))
        .send()
        .await
        .expect("createSession is answered");
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "createSession status"
    );
    let body: Value = response.json().await.expect("createSession body is JSON");
    body["id"]
        .as_str()
        .expect("createSession body has an id")
        .to_owned()
}

pub async fn close_session(client: &Client, workbook: &str, session: &str) -> Response {
    with_session(client.post(format!("{workbook}/closeSession")), session)
        .send()
        .await
        .expect("closeSession is answered")
}

pub async fn patch_values(
    client: &Client,
    workbook: &str,
    session: Option<&str>,
    sheet: &str,
    address: &str,
    values: Value,
) -> Response {
    let url = format!("{workbook}/worksheets('{sheet}')/range(address='{address}')");
    let request = match session {
        Some(session) => with_session(client.patch(url), session),
        None => authed(client.patch(url)),
    };
    request
        .json(&json!({ "values": values }))
        .send()
        .await
        .expect("the PATCH is answered")
}

pub async fn get_values(
    client: &Client,
    workbook: &str,
    session: Option<&str>,
    sheet: &str,
    address: &str,
) -> Value {
    let url = format!("{workbook}/worksheets('{sheet}')/range(address='{address}')");
    let request = match session {
        Some(session) => with_session(client.get(url), session),
        None => authed(client.get(url)),
    };
    let response = request.send().await.expect("the range GET is answered");
    assert_eq!(response.status(), StatusCode::OK, "range GET status");
    let body: Value = response.json().await.expect("range body is JSON");
    body["values"].clone()
}

/// Reads one cell of the saved file with calamine, a different reader than the writer.
/// `row` and `column` are 0-based.
pub fn saved_cell(file: &Path, sheet: &str, row: u32, column: u32) -> Data {
    let mut workbook: Xlsx<_> = open_workbook(file).expect("the saved file opens with calamine");
    let range = workbook
        .worksheet_range(sheet)
        .expect("the sheet is in the saved file");
    range
        .get_value((row, column))
        .cloned()
        .unwrap_or(Data::Empty)
}

/// Returns the error body's code chain and ids.
pub async fn error_body(response: Response) -> Value {
    response.json().await.expect("the error body is JSON")
}
