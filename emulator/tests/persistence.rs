//! What reaches the file: persistent sessions save on close and expiry, non-persistent
//! sessions never save, sessionless writes save at once. The file is read back with
//! calamine, a different reader than the writer.

mod common;

use calamine::Data;
use common::{
    client, close_session, create_session, fixture, get_values, patch_values, saved_cell,
    workbook_url,
};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn persistent_session_edits_are_saved_on_close() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, true).await;
    patch_values(
        &client,
        &workbook,
        Some(&session),
        "Data",
        "B2",
        json!([[99]]),
    )
    .await;

    let before_close = saved_cell(&fixture.file, "Data", 1, 1);
    let closed = close_session(&client, &workbook, &session).await;
    let after_close = saved_cell(&fixture.file, "Data", 1, 1);

    assert_eq!(closed.status(), StatusCode::NO_CONTENT, "close status");
    assert_eq!(before_close, Data::Float(10.0), "not saved while open");
    assert_eq!(after_close, Data::Float(99.0), "saved on close");
    assert_eq!(
        saved_cell(&fixture.file, "Summary", 0, 1),
        Data::Float(30.5),
        "the other sheet is unchanged"
    );
    assert_eq!(
        saved_cell(&fixture.file, "Data", 2, 0),
        Data::String("beta".into()),
        "untouched cells of the edited sheet are unchanged"
    );
}

#[tokio::test(start_paused = true)]
async fn persistent_session_edits_are_saved_on_expiry() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, true).await;
    patch_values(
        &client,
        &workbook,
        Some(&session),
        "Data",
        "A2",
        json!([["saved"]]),
    )
    .await;

    tokio::time::advance(Duration::from_secs(301)).await;
    let open = emulator.open_sessions();
    emulator.wait_for_saves().await;

    assert_eq!(open, 0, "the session expired");
    assert_eq!(
        saved_cell(&fixture.file, "Data", 1, 0),
        Data::String("saved".into()),
        "saved on expiry"
    );
}

#[tokio::test]
async fn non_persistent_edits_are_discarded() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let closed = create_session(&client, &workbook, false).await;
    let expired = create_session(&client, &workbook, false).await;
    patch_values(
        &client,
        &workbook,
        Some(&closed),
        "Data",
        "B2",
        json!([[1]]),
    )
    .await;
    patch_values(
        &client,
        &workbook,
        Some(&expired),
        "Data",
        "B3",
        json!([[2]]),
    )
    .await;

    close_session(&client, &workbook, &closed).await;
    emulator.expire_session(&expired);
    emulator.wait_for_saves().await;

    assert_eq!(
        saved_cell(&fixture.file, "Data", 1, 1),
        Data::Float(10.0),
        "B2 kept"
    );
    assert_eq!(
        saved_cell(&fixture.file, "Data", 2, 1),
        Data::Float(20.5),
        "B3 kept"
    );
    let values = get_values(&client, &workbook, None, "Data", "B2:B3").await;
    assert_eq!(
        values,
        json!([[10], [20.5]]),
        "the emulator serves the old values"
    );
}

#[tokio::test]
async fn sessionless_write_is_saved_at_once() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    let response = patch_values(
        &client,
        &workbook,
        None,
        "Summary",
        "B1:C1",
        json!([[1.5, "x"]]),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK, "status");
    assert_eq!(
        saved_cell(&fixture.file, "Summary", 0, 1),
        Data::Float(1.5),
        "B1"
    );
    assert_eq!(
        saved_cell(&fixture.file, "Summary", 0, 2),
        Data::String("x".into()),
        "C1"
    );
    assert_eq!(
        saved_cell(&fixture.file, "Data", 1, 1),
        Data::Float(10.0),
        "the other sheet is unchanged"
    );
    assert_eq!(
        emulator
            .counters()
            .requests_without_session
            .get(common::ITEM),
        Some(&1),
        "counted as a request without session"
    );
}

#[tokio::test]
async fn session_sees_only_its_own_edits() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let writer = create_session(&client, &workbook, true).await;
    let reader = create_session(&client, &workbook, true).await;

    patch_values(
        &client,
        &workbook,
        Some(&writer),
        "Data",
        "B2",
        json!([[42]]),
    )
    .await;
    let own = get_values(&client, &workbook, Some(&writer), "Data", "B2").await;
    let other = get_values(&client, &workbook, Some(&reader), "Data", "B2").await;
    let sessionless = get_values(&client, &workbook, None, "Data", "B2").await;

    assert_eq!(own, json!([[42]]), "the writing session sees its edit");
    assert_eq!(other, json!([[10]]), "another session does not");
    assert_eq!(sessionless, json!([[10]]), "a sessionless read does not");
}

#[tokio::test]
async fn null_keeps_and_empty_string_clears() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    patch_values(
        &client,
        &workbook,
        None,
        "Data",
        "A2:B2",
        json!([[null, ""]]),
    )
    .await;

    assert_eq!(
        saved_cell(&fixture.file, "Data", 1, 0),
        Data::String("alpha".into()),
        "null keeps A2"
    );
    assert_eq!(
        saved_cell(&fixture.file, "Data", 1, 1),
        Data::Empty,
        "empty string clears B2"
    );
}

#[tokio::test]
async fn formatting_survives_a_save() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);

    patch_values(&client, &workbook, None, "Summary", "B1", json!([[5]])).await;

    let book = umya_spreadsheet::reader::xlsx::read(&fixture.file).expect("readable");
    let summary = book.get_sheet_by_name("Summary").expect("Summary exists");
    let bold = summary
        .get_style("A1")
        .get_font()
        .map(|font| *font.get_bold())
        .unwrap_or(false);
    assert!(bold, "Summary!A1 is still bold");
}

#[tokio::test]
async fn background_sweep_saves_an_idle_persistent_session() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .persistent_timeout(Duration::from_millis(100))
        .sweep_interval(Duration::from_millis(20))
        .start()
        .await
        .expect("starts");
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, true).await;
    patch_values(
        &client,
        &workbook,
        Some(&session),
        "Data",
        "B2",
        json!([[77]]),
    )
    .await;

    let mut saved = Data::Empty;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        emulator.wait_for_saves().await;
        saved = saved_cell(&fixture.file, "Data", 1, 1);
        if saved == Data::Float(77.0) {
            break;
        }
    }

    assert_eq!(
        saved,
        Data::Float(77.0),
        "saved by the sweep without any lookup"
    );
}

#[tokio::test]
async fn shutdown_does_not_save_open_sessions() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, true).await;
    patch_values(
        &client,
        &workbook,
        Some(&session),
        "Data",
        "B2",
        json!([[5]]),
    )
    .await;

    emulator.shutdown().await;

    assert_eq!(
        saved_cell(&fixture.file, "Data", 1, 1),
        Data::Float(10.0),
        "not saved"
    );
    let refused = common::authed(client.get(format!("{workbook}/worksheets")))
        .send()
        .await;
    assert!(refused.is_err(), "the emulator no longer answers");
}
