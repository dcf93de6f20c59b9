//! Inactivity expiry on a paused tokio clock.

mod common;

use common::{client, create_session, fixture, with_session, workbook_url};
use reqwest::{Client, StatusCode};
use std::time::Duration;
use tokio::time::advance;

async fn worksheets_status(client: &Client, workbook: &str, session: &str) -> StatusCode {
    with_session(client.get(format!("{workbook}/worksheets")), session)
        .send()
        .await
        .expect("answered")
        .status()
}

#[tokio::test(start_paused = true)]
async fn persistent_session_expires_after_five_idle_minutes() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, true).await;

    advance(Duration::from_secs(299)).await;
    let before = worksheets_status(&client, &workbook, &session).await;
    advance(Duration::from_secs(301)).await;
    let after = worksheets_status(&client, &workbook, &session).await;

    assert_eq!(before, StatusCode::OK, "alive before five minutes");
    assert_eq!(after, StatusCode::NOT_FOUND, "gone after five idle minutes");
    assert_eq!(emulator.counters().sessions_expired, 1, "expired counter");
}

#[tokio::test(start_paused = true)]
async fn non_persistent_session_lives_seven_idle_minutes() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, false).await;

    advance(Duration::from_secs(6 * 60)).await;
    let open_at_six = emulator.open_sessions();
    advance(Duration::from_secs(61)).await;
    let open_after_seven = emulator.open_sessions();
    let status = worksheets_status(&client, &workbook, &session).await;

    assert_eq!(open_at_six, 1, "open at six minutes");
    assert_eq!(open_after_seven, 0, "expired after seven minutes");
    assert_eq!(status, StatusCode::NOT_FOUND, "requests get 404");
}

#[tokio::test(start_paused = true)]
async fn any_request_and_refresh_count_as_activity() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, true).await;

    advance(Duration::from_secs(240)).await;
    worksheets_status(&client, &workbook, &session).await;
    advance(Duration::from_secs(240)).await;
    let refreshed = with_session(client.post(format!("{workbook}/refreshSession")), &session)
        .send()
        .await
        .expect("answered");
    advance(Duration::from_secs(240)).await;
    let still_open = emulator.open_sessions();

    assert_eq!(
        refreshed.status(),
        StatusCode::NO_CONTENT,
        "refresh accepted"
    );
    assert_eq!(
        still_open, 1,
        "open after twelve minutes of regular activity"
    );
}

#[tokio::test(start_paused = true)]
async fn expired_session_refresh_returns_404() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, true).await;

    advance(Duration::from_secs(301)).await;
    let refreshed = with_session(client.post(format!("{workbook}/refreshSession")), &session)
        .send()
        .await
        .expect("answered");
    let closed = common::close_session(&client, &workbook, &session).await;

    assert_eq!(refreshed.status(), StatusCode::NOT_FOUND, "refresh status");
    assert_eq!(closed.status(), StatusCode::NOT_FOUND, "close status");
    assert_eq!(emulator.closes_accepted(&session), 0, "no close accepted");
}

#[tokio::test(start_paused = true)]
async fn configured_timeouts_apply() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .persistent_timeout(Duration::from_secs(10))
        .non_persistent_timeout(Duration::from_secs(20))
        .start()
        .await
        .expect("starts");
    let client = client();
    let workbook = workbook_url(&emulator);
    create_session(&client, &workbook, true).await;
    create_session(&client, &workbook, false).await;

    advance(Duration::from_secs(11)).await;
    let after_eleven = emulator.open_sessions();
    advance(Duration::from_secs(10)).await;
    let after_twenty_one = emulator.open_sessions();

    assert_eq!(after_eleven, 1, "the persistent session expired first");
    assert_eq!(after_twenty_one, 0, "both expired");
}

#[tokio::test]
async fn expire_session_ends_an_open_session_at_once() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, false).await;

    let expired = emulator.expire_session(&session);
    let again = emulator.expire_session(&session);

    assert!(expired, "the open session expired");
    assert!(!again, "an ended session cannot expire again");
    assert_eq!(
        worksheets_status(&client, &workbook, &session).await,
        StatusCode::NOT_FOUND,
        "requests get 404"
    );
}
