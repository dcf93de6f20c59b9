//! Worksheets, range values and usedRange, read from the real file.

mod common;

use common::{authed, client, fixture, get_values, patch_values, workbook_url};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn get_json(client: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let response = authed(client.get(url)).send().await.expect("answered");
    let status = response.status();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn worksheets_lists_every_sheet_in_order() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();

    let (status, body) =
        get_json(&client, &format!("{}/worksheets", workbook_url(&emulator))).await;

    assert_eq!(status, StatusCode::OK, "status");
    let names: Vec<&str> = body["value"]
        .as_array()
        .expect("value is an array")
        .iter()
        .filter_map(|sheet| sheet["name"].as_str())
        .collect();
    assert_eq!(names, ["Data", "Summary", "Q1 'north'"], "names");
    assert_eq!(body["value"][1]["position"], 1, "position");
    assert_eq!(body["value"][1]["visibility"], "Visible", "visibility");
    assert!(body["value"][1]["id"].is_string(), "id");
}

#[tokio::test]
async fn worksheet_found_by_name_or_id() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let (_, list) = get_json(&client, &format!("{workbook}/worksheets")).await;
    let id = list["value"][2]["id"].as_str().expect("id").to_owned();
    let urls = [
        format!("{workbook}/worksheets('Q1%20''north''')"),
        format!("{workbook}/worksheets/Q1%20'north'"),
        format!("{workbook}/worksheets/{id}"),
    ];

    for url in &urls {
        let (status, body) = get_json(&client, url).await;

        assert_eq!(status, StatusCode::OK, "status of {url}");
        assert_eq!(body["name"], "Q1 'north'", "name from {url}");
    }
}

#[tokio::test]
async fn unknown_worksheet_returns_404() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    for url in [
        format!("{workbook}/worksheets('Nope')"),
        format!("{workbook}/worksheets('Nope')/range(address='A1')"),
        format!("{workbook}/worksheets('Nope')/usedRange"),
    ] {
        let (status, body) = get_json(&client, &url).await;

        assert_eq!(status, StatusCode::NOT_FOUND, "status of {url}");
        assert_eq!(body["error"]["code"], "itemNotFound", "code of {url}");
    }
}

#[tokio::test]
async fn range_returns_numbers_text_booleans_and_empty_cells() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let url = format!(
        "{}/worksheets('Data')/range(address='A1:C3')",
        workbook_url(&emulator)
    );

    let (status, body) = get_json(&client, &url).await;

    assert_eq!(status, StatusCode::OK, "status");
    assert_eq!(body["address"], "Data!A1:C3", "address");
    assert_eq!(body["rowCount"], 3, "rowCount");
    assert_eq!(body["columnCount"], 3, "columnCount");
    let expected = json!([
        ["Name", "Amount", ""],
        ["alpha", 10, ""],
        ["beta", 20.5, true]
    ]);
    assert_eq!(body["values"], expected, "values");
}

#[tokio::test]
async fn range_addresses_cells_columns_and_prefixes() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    let single = get_values(&client, &workbook, None, "Data", "B2").await;
    let wide = get_values(&client, &workbook, None, "Data", "$AA$5").await;
    let prefixed = get_values(&client, &workbook, None, "Summary", "Summary!B1").await;
    let quoted = get_values(
        &client,
        &workbook,
        None,
        "Q1%20''north''",
        "''Q1%20''''north''''''!A1",
    )
    .await;

    assert_eq!(single, json!([[10]]), "single cell");
    assert_eq!(wide, json!([[7]]), "column AA");
    assert_eq!(prefixed, json!([[30.5]]), "sheet prefix");
    assert_eq!(quoted, json!([["north"]]), "quoted sheet prefix");
}

#[tokio::test]
async fn bad_addresses_return_400() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    for address in ["A0", "XFE1", "1A", "Summary!A1", "A1:XFD1048576", "A1%3A"] {
        let url = format!("{workbook}/worksheets('Data')/range(address='{address}')");

        let (status, body) = get_json(&client, &url).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "status of {address}");
        assert!(body["error"]["message"].is_string(), "message of {address}");
    }
}

#[tokio::test]
async fn used_range_covers_every_non_empty_cell() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    let (status, body) = get_json(
        &client,
        &format!("{workbook}/worksheets('Summary')/usedRange"),
    )
    .await;
    let (_, data) = get_json(
        &client,
        &format!("{workbook}/worksheets/Data/usedRange(valuesOnly=true)"),
    )
    .await;

    assert_eq!(status, StatusCode::OK, "status");
    assert_eq!(body["address"], "Summary!A1:B1", "Summary address");
    assert_eq!(body["values"], json!([["Total", 30.5]]), "Summary values");
    assert_eq!(data["address"], "Data!A1:AA5", "Data address");
}

#[tokio::test]
async fn patch_with_wrong_shape_is_rejected() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    let response = patch_values(
        &client,
        &workbook,
        None,
        "Data",
        "A1:B2",
        json!([[1, 2, 3]]),
    )
    .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "status");
    let body: Value = response.json().await.expect("JSON");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("1 rows"),
        "message names the sent shape: {message}"
    );
    assert!(
        message.contains("2 rows of 2 columns"),
        "message names the range shape: {message}"
    );
}

#[tokio::test]
async fn patch_returns_the_new_range() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = common::create_session(&client, &workbook, false).await;

    let response = patch_values(
        &client,
        &workbook,
        Some(&session),
        "Data",
        "D1:E1",
        json!([["new", 3.25]]),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK, "status");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["values"], json!([["new", 3.25]]), "values");
    assert_eq!(body["address"], "Data!D1:E1", "address");
}
