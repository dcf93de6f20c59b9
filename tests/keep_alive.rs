//! Keep-alive: idle sessions are refreshed before the server's inactivity expiry.

mod common;

use std::time::Duration;

use common::emulated::*;
use workbook_session::{Error, SessionOptions};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn idle_session_survives_thirty_minutes() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .persistent_timeout(5 * MINUTE)
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator).build().expect("client builds");
    let session = client
        .create_session(&sample_workbook(), SessionOptions::persistent())
        .await
        .expect("session created");
    let id = emulator.created_session_ids()[0].clone();

    tokio::time::sleep(30 * MINUTE).await;
    let answer = session.get("worksheets").send().await;

    assert!(answer.is_ok(), "the session still answers: {answer:?}");
    let refreshes = emulator.refreshes_received(&id);
    assert!(
        (9..=11).contains(&refreshes),
        "one refresh every 3 idle minutes gives about 10 in 30 minutes, got {refreshes}"
    );
    assert_eq!(emulator.counters().sessions_expired, 0, "nothing expired");
    assert_eq!(
        client.stats().refreshed,
        u64::from(refreshes),
        "stats count the refreshes"
    );
    session.close().await.expect("closes");
}

#[tokio::test(start_paused = true)]
async fn idle_session_without_keep_alive_expires() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .non_persistent_timeout(7 * MINUTE)
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator).build().expect("client builds");
    let options = SessionOptions::non_persistent().keep_alive(None);
    let session = client
        .create_session(&sample_workbook(), options)
        .await
        .expect("session created");

    tokio::time::sleep(30 * MINUTE).await;
    let answer = session.get("worksheets").send().await;

    assert!(
        matches!(answer, Err(Error::SessionExpired { .. })),
        "a non-persistent session left idle is gone: {answer:?}"
    );
    assert_eq!(
        emulator.counters().sessions_refreshed,
        0,
        "keep-alive was off"
    );
    let outcome = session
        .close()
        .await
        .expect("closing an expired session succeeds");
    assert_eq!(outcome, workbook_session::CloseOutcome::AlreadyGone);
}

#[tokio::test(start_paused = true)]
async fn busy_session_is_not_refreshed() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator).build().expect("client builds");
    let session = client
        .create_session(&sample_workbook(), SessionOptions::persistent())
        .await
        .expect("session created");

    for _ in 0..20 {
        tokio::time::sleep(MINUTE).await;
        session
            .get("worksheets")
            .send()
            .await
            .expect("request succeeds");
    }

    assert_eq!(
        emulator.counters().sessions_refreshed,
        0,
        "a request every minute keeps it alive by itself"
    );
    session.close().await.expect("closes");
}

#[tokio::test(start_paused = true)]
async fn refresh_marks_vanished_session_expired() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator).build().expect("client builds");
    let session = client
        .create_session(&sample_workbook(), SessionOptions::persistent())
        .await
        .expect("session created");
    let id = emulator.created_session_ids()[0].clone();

    emulator.expire_session(&id);
    tokio::time::sleep(4 * MINUTE).await;
    let expired_before_use = client.stats().expired;
    let answer = session.get("worksheets").send().await;

    assert_eq!(
        expired_before_use, 1,
        "the keep-alive refresh found the session gone"
    );
    assert!(
        answer.is_ok(),
        "the next request runs in a recreated session: {answer:?}"
    );
    assert_eq!(client.stats().recreated, 1, "recreated once, on first use");
    assert_eq!(
        emulator.refreshes_received(&id),
        1,
        "the gone session was refreshed once, then left alone"
    );
    session.close().await.expect("closes");
}
