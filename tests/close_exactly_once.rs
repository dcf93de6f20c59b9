//! Every session is closed exactly once, whichever way its guard ends: an explicit close, a
//! drop on any kind of thread, a panic, a cancelled create or close, or a shutdown.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};
use workbook_session::{CloseOutcome, Error, SessionGuard, SessionOptions, Stats, WorkbookClient};

/// How long a test waits for the close queue to drain before it calls the run a failure.
const DRAIN: Duration = Duration::from_secs(20);

/// Starts a server with createSession (201, [`SESSION_ID`]) and closeSession (204).
async fn graph_with_one_session() -> MockServer {
    let server = MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    mount_close(&server).await;
    server
}

async fn open(client: &WorkbookClient) -> SessionGuard {
    client
        .create_session(&workbook(), SessionOptions::persistent())
        .await
        .expect("the session is created")
}

/// Waits until the server received `expected` closes, then runs a shutdown, which drains the
/// close queue, so that a late second close would be in the returned list too.
async fn closes_after_drain(
    client: &WorkbookClient,
    server: &MockServer,
    expected: usize,
) -> Vec<String> {
    let arrived = eventually(|| async { closes(server).await.len() >= expected }).await;
    assert!(
        arrived,
        "the server did not receive {expected} closeSession requests in time"
    );

    let report = client.shutdown(DRAIN).await;
    assert!(
        !report.timed_out,
        "the close queue did not drain within {DRAIN:?}"
    );

    closes(server).await
}

/// Asserts the counters of a client whose only session was closed by the path `closed_by`.
fn assert_one_close_counted(stats: Stats, closed_by: &str) {
    let (explicit, on_drop) = match closed_by {
        "explicit" => (1, 0),
        "drop" => (0, 1),
        other => panic!("unknown close path {other}"),
    };
    assert_eq!(
        stats.closed_explicitly, explicit,
        "closed_explicitly in {stats:?}"
    );
    assert_eq!(stats.closed_on_drop, on_drop, "closed_on_drop in {stats:?}");
    assert_eq!(
        stats.closed_at_shutdown, 0,
        "the session was closed before shutdown: {stats:?}"
    );
    assert_eq!(stats.already_gone, 0, "already_gone in {stats:?}");
    assert_eq!(stats.close_failures, 0, "close_failures in {stats:?}");
    assert_eq!(stats.abandoned, 0, "abandoned in {stats:?}");
    assert_eq!(stats.open, 0, "no session is left open: {stats:?}");
}

#[tokio::test]
async fn explicit_close_sends_one_close() {
    let server = graph_with_one_session().await;
    let client = client(&server);
    let session = open(&client).await;

    let outcome = session.close().await;

    assert_eq!(
        outcome.expect("the close succeeds"),
        CloseOutcome::Closed,
        "the server returned 204"
    );
    assert_eq!(
        closes_after_drain(&client, &server, 1).await,
        [SESSION_ID],
        "one close with the session's id"
    );
    assert_one_close_counted(client.stats(), "explicit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_on_multi_thread_runtime_closes_once() {
    let server = graph_with_one_session().await;
    let client = client(&server);
    let session = open(&client).await;

    drop(session);

    assert_eq!(
        closes_after_drain(&client, &server, 1).await,
        [SESSION_ID],
        "one close with the session's id"
    );
    assert_one_close_counted(client.stats(), "drop");
}

#[tokio::test(flavor = "current_thread")]
async fn drop_on_current_thread_runtime_closes_once() {
    let server = graph_with_one_session().await;
    let client = client(&server);
    let session = open(&client).await;

    drop(session);

    assert_eq!(
        closes_after_drain(&client, &server, 1).await,
        [SESSION_ID],
        "one close with the session's id"
    );
    assert_one_close_counted(client.stats(), "drop");
}

#[tokio::test(flavor = "current_thread")]
async fn drop_on_thread_without_runtime_closes_once() {
    let server = graph_with_one_session().await;
    let client = client(&server);
    let session = open(&client).await;

    let thread = std::thread::spawn(move || {
        let inside_runtime = tokio::runtime::Handle::try_current().is_ok();
        drop(session);
        inside_runtime
    });
    let inside_runtime = thread.join().expect("dropping a guard does not panic");

    assert!(
        !inside_runtime,
        "the guard must be dropped on a thread with no tokio runtime"
    );
    assert_eq!(
        closes_after_drain(&client, &server, 1).await,
        [SESSION_ID],
        "one close with the session's id"
    );
    assert_one_close_counted(client.stats(), "drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_task_still_closes_once() {
    let server = graph_with_one_session().await;
    let client = client(&server);
    let session = open(&client).await;

    let task = tokio::spawn(async move {
        let _guard = session;
        panic!("deliberate panic in a task that holds a session guard");
    });
    let joined = task.await;

    assert!(
        joined.is_err_and(|error| error.is_panic()),
        "the task must end in a panic"
    );
    assert_eq!(
        closes_after_drain(&client, &server, 1).await,
        [SESSION_ID],
        "one close with the session's id"
    );
    assert_one_close_counted(client.stats(), "drop");
}

#[tokio::test(flavor = "current_thread")]
async fn caught_panic_on_std_thread_closes_once() {
    let server = graph_with_one_session().await;
    let client = client(&server);
    let session = open(&client).await;

    let thread = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _guard = session;
            panic!("deliberate panic on a thread that holds a session guard");
        }))
    });
    let unwound = thread
        .join()
        .expect("the panic is caught inside the thread");

    assert!(unwound.is_err(), "the closure must have panicked");
    assert_eq!(
        closes_after_drain(&client, &server, 1).await,
        [SESSION_ID],
        "one close with the session's id"
    );
    assert_one_close_counted(client.stats(), "drop");
}

#[tokio::test]
async fn create_cancelled_in_flight_closes_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/createSession")))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": SESSION_ID, "persistChanges": true }))
                .set_delay(Duration::from_millis(500)),
        )
        .mount(&server)
        .await;
    mount_close(&server).await;
    let client = client(&server);

    let workbook = workbook();
    let create = client.create_session(&workbook, SessionOptions::persistent());
    let cancelled = tokio::time::timeout(Duration::from_millis(50), create).await;

    assert!(
        cancelled.is_err(),
        "the create must still be waiting for the delayed 201"
    );
    assert_eq!(
        closes_after_drain(&client, &server, 1).await,
        [SESSION_ID],
        "the session created after the cancel is closed once"
    );
    assert_eq!(client.stats().created, 1, "the server created one session");
    assert_one_close_counted(client.stats(), "drop");
}

/// Mounts a long-running createSession: 202, then `running_polls` polls that return
/// `running`, then `succeeded` with a sessionInfoResource that returns [`SESSION_ID`].
async fn mount_long_running_create(server: &MockServer, running_polls: usize) {
    let operation = format!("{}{ROOT}/operations/op-1", server.uri());
    let session_info = format!("{}{ROOT}/sessionInfoResource(key='k-1')", server.uri());
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/createSession")))
        .respond_with(ResponseTemplate::new(202).insert_header("location", operation.as_str()))
        .mount(server)
        .await;

    let polls = AtomicUsize::new(0);
    Mock::given(method("GET"))
        .and(path(format!("{ROOT}/operations/op-1")))
        .respond_with(move |_: &wiremock::Request| {
            let body = if polls.fetch_add(1, Ordering::SeqCst) < running_polls {
                json!({ "id": "op-1", "status": "running" })
            } else {
                json!({ "id": "op-1", "status": "succeeded", "resourceLocation": session_info })
            };
            ResponseTemplate::new(200).set_body_json(body)
        })
        .mount(server)
        .await;

    Mock::given(method("GET"))
        .and(path_regex("/sessionInfoResource"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": SESSION_ID, "persistChanges": true })),
        )
        .mount(server)
        .await;
}

async fn session_info_fetches(server: &MockServer) -> usize {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|request| request.url.path().contains("/sessionInfoResource"))
        .count()
}

#[tokio::test]
async fn long_running_create_cancelled_while_polling() {
    let server = MockServer::start().await;
    mount_long_running_create(&server, 3).await;
    mount_close(&server).await;
    let client = builder(&server)
        .respond_async(true)
        .poll_interval(Duration::from_millis(200), Duration::from_millis(200))
        .build()
        .expect("a valid client");

    let workbook = workbook();
    let create = client.create_session(&workbook, SessionOptions::persistent());
    let cancelled = tokio::time::timeout(Duration::from_millis(150), create).await;
    let polls_at_cancel = requests_to(&server, "/operations/op-1").await.len();
    let session_info_at_cancel = session_info_fetches(&server).await;

    assert!(
        cancelled.is_err(),
        "the create must still be polling when it is cancelled"
    );
    assert!(
        polls_at_cancel >= 1,
        "the operation was polled before the cancel"
    );
    assert_eq!(
        session_info_at_cancel, 0,
        "the session did not exist yet when the create was cancelled"
    );
    assert_eq!(
        closes_after_drain(&client, &server, 1).await,
        [SESSION_ID],
        "the session found by the background poll is closed once"
    );
    assert_eq!(
        requests_to(&server, "/operations/op-1").await.len(),
        4,
        "three running polls and one that succeeded"
    );
    assert_eq!(
        client.stats().created,
        1,
        "the background task created the session"
    );
    assert_one_close_counted(client.stats(), "drop");
}

#[tokio::test]
async fn close_cancelled_halfway_still_closes_once() {
    let server = MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/closeSession")))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;
    let client = client(&server);
    let session = open(&client).await;

    let cancelled = tokio::time::timeout(Duration::from_millis(50), session.close()).await;

    assert!(
        cancelled.is_err(),
        "the close must still be waiting for the delayed 204"
    );
    let counted = eventually(|| async { client.stats().closed_explicitly == 1 }).await;
    assert!(
        counted,
        "the close continues on the worker and is counted: {:?}",
        client.stats()
    );
    assert_eq!(
        closes_after_drain(&client, &server, 1).await,
        [SESSION_ID],
        "one close with the session's id"
    );
    assert_one_close_counted(client.stats(), "explicit");
}

/// Creates `count` sessions, at most `parallel` at a time.
async fn open_many(client: &WorkbookClient, count: usize, parallel: usize) -> Vec<SessionGuard> {
    let mut guards = Vec::with_capacity(count);
    let mut creating = JoinSet::new();
    for _ in 0..count {
        if creating.len() == parallel {
            let created = creating.join_next().await.expect("a create is running");
            guards.push(created.expect("the create task does not panic"));
        }
        let client = client.clone();
        creating.spawn(async move { open(&client).await });
    }
    while let Some(created) = creating.join_next().await {
        guards.push(created.expect("the create task does not panic"));
    }
    guards
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_guards_dropped_at_once() {
    const SESSIONS: usize = 1000;
    const TASKS: usize = 50;
    let server = MockServer::start().await;
    mount_create_unique(&server).await;
    mount_close(&server).await;
    let client = client(&server);
    let mut guards = open_many(&client, SESSIONS, 32).await;
    let start = Arc::new(Barrier::new(TASKS));

    let mut dropping = JoinSet::new();
    for _ in 0..TASKS {
        let batch: Vec<SessionGuard> = guards.drain(..SESSIONS / TASKS).collect();
        let start = Arc::clone(&start);
        dropping.spawn(async move {
            start.wait().await;
            drop(batch);
        });
    }
    while let Some(dropped) = dropping.join_next().await {
        dropped.expect("dropping guards does not panic");
    }
    let received = closes_after_drain(&client, &server, SESSIONS).await;

    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for id in received {
        *per_id.entry(id).or_default() += 1;
    }
    let twice: Vec<&String> = per_id
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, _)| id)
        .collect();
    let expected: BTreeSet<String> = (0..SESSIONS).map(|n| format!("session-{n}")).collect();
    let closed: BTreeSet<String> = per_id.keys().cloned().collect();
    let stats = client.stats();
    assert!(
        twice.is_empty(),
        "sessions closed more than once: {twice:?}"
    );
    assert_eq!(closed.len(), SESSIONS, "every created session is closed");
    assert_eq!(closed, expected, "the closed ids are the created ids");
    assert_eq!(stats.created, SESSIONS as u64, "created in {stats:?}");
    assert_eq!(
        stats.closed_on_drop, SESSIONS as u64,
        "closed_on_drop in {stats:?}"
    );
    assert_eq!(stats.close_failures, 0, "close_failures in {stats:?}");
    assert_eq!(stats.abandoned, 0, "abandoned in {stats:?}");
}

#[tokio::test]
async fn shutdown_closes_live_guards_once() {
    let server = MockServer::start().await;
    mount_create_unique(&server).await;
    mount_close(&server).await;
    mount_any_ok(&server).await;
    let client = client(&server);
    let guards = open_many(&client, 3, 3).await;

    let report = client.shutdown(Duration::from_secs(5)).await;

    assert_eq!(
        report.closed, 3,
        "the report counts every live session: {report:?}"
    );
    assert_eq!(report.failed, 0, "no close failed: {report:?}");
    assert_eq!(report.abandoned, 0, "no close was abandoned: {report:?}");
    assert!(
        !report.timed_out,
        "shutdown finished before its deadline: {report:?}"
    );
    assert_eq!(
        client.stats().closed_at_shutdown,
        3,
        "the counters agree with the report"
    );
    let closed: BTreeSet<String> = closes(&server).await.into_iter().collect();
    let expected: BTreeSet<String> = (0..3).map(|n| format!("session-{n}")).collect();
    assert_eq!(closed, expected, "each live session got its close");
    for guard in &guards {
        let request = guard.get("worksheets").send().await;
        assert!(
            matches!(request, Err(Error::SessionClosed { .. })),
            "a request through {guard:?} after shutdown gave {request:?}"
        );
    }
    let late = client
        .create_session(&workbook(), SessionOptions::persistent())
        .await;
    assert!(
        matches!(late, Err(Error::ShutDown)),
        "create_session after shutdown gave {late:?}"
    );

    drop(guards);
    let second = client.shutdown(Duration::from_secs(5)).await;

    assert_eq!(
        second.closed, 0,
        "dropping closed guards closes nothing: {second:?}"
    );
    assert_eq!(
        closes(&server).await.len(),
        3,
        "no session got a second close"
    );
    assert_eq!(
        client.stats().closed_on_drop,
        0,
        "the drops counted no close"
    );
    assert_eq!(
        requests_to(&server, "/worksheets").await.len(),
        0,
        "no request left through a closed guard"
    );
}

#[test]
fn build_outside_runtime_returns_no_runtime() {
    let builder = WorkbookClient::builder().bearer_token(TOKEN);

    let built = builder.build();

    assert!(
        matches!(built, Err(Error::NoRuntime)),
        "build outside a runtime gave {built:?}"
    );
}
