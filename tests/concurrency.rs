//! One request at a time per session, shared by many tasks.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::emulated::*;
use serde_json::json;
use workbook_emulator::{Fault, FaultRule, Route};
use workbook_session::SessionOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tasks_share_one_guard() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator).build().expect("client builds");
    let session = Arc::new(
        client
            .create_session(&sample_workbook(), SessionOptions::persistent())
            .await
            .expect("session created"),
    );
    let id = emulator.created_session_ids()[0].clone();

    let mut tasks = tokio::task::JoinSet::new();
    for row in 1..=50 {
        let session = Arc::clone(&session);
        tasks.spawn(async move {
            let cell = format!("worksheets('Notes')/range(address='C{row}')");
            session
                .patch(&cell)
                .json(&json!({ "values": [[row]] }))
                .send()
                .await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task finished").expect("edit succeeded");
    }
    let session = Arc::into_inner(session).expect("every task dropped its handle");
    session.close().await.expect("closes");

    assert_eq!(
        emulator.max_concurrent_requests(&id),
        1,
        "the server never saw two requests of the session at once"
    );
    for row in 1..=50u32 {
        assert_eq!(
            saved_cell(&file, "Notes", row - 1, 2),
            row.to_string(),
            "edit of row {row} landed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_is_configurable() {
    let file = sample_file();
    let emulator = emulator_builder(&file)
        .start()
        .await
        .expect("emulator starts");
    let client = client_builder(&emulator).build().expect("client builds");
    let options = SessionOptions::persistent().max_concurrent_requests(3);
    let session = client
        .create_session(&sample_workbook(), options)
        .await
        .expect("session created");
    let id = emulator.created_session_ids()[0].clone();
    emulator.inject(
        FaultRule::new(
            Route::Range,
            Fault::DelayResponse(Duration::from_millis(200)),
        )
        .times(12),
    );

    let reads = (1..=12).map(|row| {
        let cell = format!("worksheets('Sales')/range(address='A{row}')");
        let session = &session;
        async move { session.get(&cell).send().await }
    });
    let results = futures_util::future::join_all(reads).await;

    assert!(results.iter().all(Result::is_ok), "every read succeeded");
    assert_eq!(
        emulator.max_concurrent_requests(&id),
        3,
        "three slots, all used at once"
    );
    session.close().await.expect("closes");
}
