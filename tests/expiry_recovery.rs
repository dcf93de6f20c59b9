//! Expired sessions: persistent ones are recreated once, non-persistent ones fail loudly.

mod common;

use common::emulated::*;
use serde_json::json;
use workbook_emulator::{Fault, FaultRule, Route};
use workbook_session::{CloseOutcome, Error, SessionOptions};

const CELL: &str = "worksheets('Inventory')/range(address='B2')";

#[tokio::test]
async fn persistent_session_is_recreated_and_edit_lands() {
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
    let old_id = emulator.created_session_ids()[0].clone();
    let old_fingerprint = session.fingerprint();

    assert!(
        emulator.expire_session(&old_id),
        "the emulator expires the session"
    );
    session
        .patch(CELL)
        .json(&json!({ "values": [[777]] }))
        .send()
        .await
        .expect("the edit succeeds in a recreated session");
    let new_fingerprint = session.fingerprint();
    session.close().await.expect("the new session closes");

    let ids = emulator.created_session_ids();
    assert_eq!(ids.len(), 2, "one recreation");
    assert_ne!(
        old_fingerprint, new_fingerprint,
        "the guard moved to the new id"
    );
    assert_eq!(
        emulator.closes_received(&old_id),
        0,
        "the expired id is never reused, not even to close it"
    );
    assert_eq!(
        emulator.closes_accepted(&ids[1]),
        1,
        "the new session is closed once"
    );
    assert_eq!(
        saved_cell(&file, "Inventory", 1, 1),
        "777",
        "the edit is in the saved file"
    );
    let stats = client.stats();
    assert_eq!(stats.recreated, 1, "stats count the recreation");
    assert_eq!(stats.expired, 1, "stats count the expiry");
    assert_eq!(stats.created, 2, "both sessions are counted as created");
    assert_eq!(
        stats.closed_explicitly + stats.already_gone,
        2,
        "both sessions are accounted for"
    );
}

#[tokio::test]
async fn non_persistent_session_reports_expiry() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator).build().expect("client builds");
    let session = client
        .create_session(&sample_workbook(), SessionOptions::non_persistent())
        .await
        .expect("session created");
    let id = emulator.created_session_ids()[0].clone();

    emulator.expire_session(&id);
    let first = session
        .patch(CELL)
        .json(&json!({ "values": [[777]] }))
        .send()
        .await;
    let second = session.get(CELL).send().await;
    let outcome = session.close().await;

    assert!(
        matches!(first, Err(Error::SessionExpired { .. })),
        "the edit fails loudly: {first:?}"
    );
    assert!(
        matches!(second, Err(Error::SessionExpired { .. })),
        "so does every later call: {second:?}"
    );
    assert_eq!(
        emulator.created_session_ids().len(),
        1,
        "never recreated silently"
    );
    assert_eq!(
        outcome.ok(),
        Some(CloseOutcome::AlreadyGone),
        "closing reports it gone"
    );
    assert_eq!(
        saved_cell(&file, "Inventory", 1, 1),
        "340",
        "the file keeps its old value"
    );
}

#[tokio::test]
async fn bad_gateway_in_session_recreates_it() {
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

    emulator.inject(FaultRule::new(
        Route::Range,
        Fault::Status {
            status: 502,
            retry_after: None,
        },
    ));
    let answer = session.get(CELL).send().await;

    assert!(
        answer.is_ok(),
        "the read succeeds in a new session: {answer:?}"
    );
    assert_eq!(
        client.stats().recreated,
        1,
        "a 502 without a listed code means the session is gone"
    );
    session.close().await.expect("closes");
}

#[tokio::test]
async fn throttled_service_unavailable_is_retried_not_recreated() {
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

    emulator.inject(FaultRule::new(
        Route::Range,
        Fault::Status {
            status: 503,
            retry_after: None,
        },
    ));
    let answer = session.get(CELL).send().await;

    assert!(
        answer.is_ok(),
        "the read succeeds after a retry: {answer:?}"
    );
    assert_eq!(
        client.stats().recreated,
        0,
        "a 503 with serviceUnavailableUncategorized is throttling"
    );
    assert_eq!(client.stats().retries, 1, "it was retried once");
    session.close().await.expect("closes");
}
