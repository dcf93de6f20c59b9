//! Many concurrent sessions: every request is served and the counters add up.

mod common;

use common::{
    client, close_session, create_session, fixture, get_values, patch_values, workbook_url,
};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const SESSIONS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sessions_are_counted() {
    let fixture = fixture();
    let emulator = common::builder(&fixture)
        .session_cap(SESSIONS as usize)
        .start()
        .await
        .expect("starts");
    let workbook = workbook_url(&emulator);
    let client = client();

    let tasks: Vec<_> = (0..SESSIONS)
        .map(|index| {
            let client = client.clone();
            let workbook = workbook.clone();
            tokio::spawn(async move {
                let session = create_session(&client, &workbook, false).await;
                let cell = format!("D{}", index + 1);
                let patched = patch_values(
                    &client,
                    &workbook,
                    Some(&session),
                    "Data",
                    &cell,
                    json!([[index]]),
                )
                .await;
                let values = get_values(&client, &workbook, Some(&session), "Data", &cell).await;
                let closed = close_session(&client, &workbook, &session).await;
                (patched.status(), values, closed.status())
            })
        })
        .collect();
    let outcomes = tokio::time::timeout(Duration::from_secs(60), async {
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("the session task ends"));
        }
        outcomes
    })
    .await
    .expect("the run ends within a minute");

    for (index, (patched, values, closed)) in outcomes.iter().enumerate() {
        assert_eq!(*patched, StatusCode::OK, "patch of session {index}");
        assert_eq!(*values, json!([[index]]), "read-back of session {index}");
        assert_eq!(*closed, StatusCode::NO_CONTENT, "close of session {index}");
    }
    let counters = emulator.counters();
    assert_eq!(counters.sessions_created, SESSIONS, "created");
    assert_eq!(counters.sessions_closed, SESSIONS, "closed");
    assert_eq!(counters.sessions_open, 0, "open");
    assert_eq!(counters.sessions_expired, 0, "expired");
    assert_eq!(counters.requests_total, SESSIONS * 4, "requests");
    assert_eq!(counters.faults_injected, 0, "faults");
    assert_eq!(
        counters.max_concurrent_requests_in_session, 1,
        "one request at a time per session"
    );
    assert!(
        counters.requests_without_session.is_empty(),
        "every request in a session"
    );
    assert_eq!(
        emulator.created_session_ids().len() as u64,
        SESSIONS,
        "ids recorded"
    );
}
