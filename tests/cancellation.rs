//! The cancellation matrix: for each `.await` of create (201 and 202), request, refresh and
//! close, the emulator delays the response at that point, the caller's future is dropped there,
//! and every session the server created is still closed exactly once.

mod common;

use std::time::Duration;

use common::emulated::*;
use serde_json::json;
use workbook_emulator::{AsyncCreate, Emulator, Fault, FaultRule, RetryAfter, Route};
use workbook_session::{SessionGuard, SessionOptions, Stats, WorkbookClient};

/// How long the emulator delays a response, far longer than the caller waits.
const HOLD: Duration = Duration::from_secs(30);

/// The time the caller waits before giving up.
const PATIENCE: Duration = Duration::from_secs(1);

const CELL: &str = "worksheets('Sales')/range(address='A1')";

struct Fixture {
    _file: SampleFile,
    emulator: Emulator,
    client: WorkbookClient,
}

async fn fixture(long_running: bool) -> Fixture {
    let file = sample_file();
    let mut emulator = emulator_builder(&file);
    if long_running {
        emulator = emulator.async_create(AsyncCreate {
            polls_before_success: 2,
            fail: false,
        });
    }
    let emulator = emulator.start().await.expect("emulator starts");
    let client = client_builder(&emulator)
        .respond_async(long_running)
        .poll_interval(Duration::from_secs(2), Duration::from_secs(2))
        .build()
        .expect("client builds");
    Fixture {
        _file: file,
        emulator,
        client,
    }
}

impl Fixture {
    async fn open(&self) -> SessionGuard {
        self.client
            .create_session(&sample_workbook(), SessionOptions::persistent())
            .await
            .expect("session created")
    }

    fn hold(&self, route: Route) {
        self.emulator
            .inject(FaultRule::new(route, Fault::DelayResponse(HOLD)));
    }

    /// Shuts the client down, then checks that every session the server created, except the
    /// `expired` ones, received exactly one close and that none is open.
    async fn assert_each_closed_once(self, case: &str, expired: &[String]) -> Stats {
        let report = self.client.shutdown(Duration::from_secs(120)).await;

        let ids = self.emulator.created_session_ids();
        assert!(!ids.is_empty(), "{case}: the server created a session");
        for id in ids.iter().filter(|id| !expired.contains(id)) {
            assert_eq!(
                self.emulator.closes_received(id),
                1,
                "{case}: one close sent"
            );
            assert_eq!(
                self.emulator.closes_accepted(id),
                1,
                "{case}: one close accepted"
            );
        }
        for id in expired {
            assert_eq!(
                self.emulator.closes_received(id),
                0,
                "{case}: an expired id is never reused"
            );
        }
        assert_eq!(
            self.emulator.open_sessions(),
            0,
            "{case}: nothing left open"
        );
        assert!(!report.timed_out, "{case}: shutdown finished in time");
        let stats = self.client.stats();
        let closed = stats.closed_explicitly + stats.closed_on_drop + stats.closed_at_shutdown;
        assert_eq!(
            stats.created,
            closed + stats.already_gone,
            "{case}: stats add up: {stats:?}"
        );
        stats
    }
}

#[tokio::test(start_paused = true)]
async fn create_cancelled_while_answer_is_held() {
    let fixture = fixture(false).await;
    fixture.hold(Route::CreateSession);

    let workbook = sample_workbook();
    let create = fixture
        .client
        .create_session(&workbook, SessionOptions::persistent());
    let outcome = tokio::time::timeout(PATIENCE, create).await;

    assert!(outcome.is_err(), "the caller gave up");
    fixture.assert_each_closed_once("201 held", &[]).await;
}

#[tokio::test(start_paused = true)]
async fn long_running_create_cancelled_at_each_step() {
    let steps = [
        ("202 held", Some(Route::CreateSession), PATIENCE),
        (
            "first poll held",
            Some(Route::Operation),
            Duration::from_secs(3),
        ),
        ("between polls", None, Duration::from_secs(3)),
        (
            "sessionInfoResource held",
            Some(Route::SessionInfo),
            Duration::from_secs(7),
        ),
    ];

    for (case, route, patience) in steps {
        let fixture = fixture(true).await;
        if let Some(route) = route {
            fixture.hold(route);
        }

        let workbook = sample_workbook();
        let create = fixture
            .client
            .create_session(&workbook, SessionOptions::persistent());
        let outcome = tokio::time::timeout(patience, create).await;

        assert!(outcome.is_err(), "{case}: the caller gave up");
        fixture.assert_each_closed_once(case, &[]).await;
    }
}

#[tokio::test(start_paused = true)]
async fn request_cancelled_while_answer_is_held() {
    let fixture = fixture(false).await;
    let session = fixture.open().await;
    fixture.hold(Route::Range);

    let held = tokio::time::timeout(PATIENCE, session.get(CELL).send()).await;
    let after = session.get(CELL).send().await;

    assert!(held.is_err(), "the caller gave up");
    assert!(after.is_ok(), "the guard still works: {after:?}");
    drop(session);
    fixture.assert_each_closed_once("request held", &[]).await;
}

#[tokio::test(start_paused = true)]
async fn request_cancelled_while_waiting_for_slot() {
    let fixture = fixture(false).await;
    let session = fixture.open().await;
    fixture.hold(Route::Range);

    let (first, second) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(5), session.get(CELL).send()),
        tokio::time::timeout(PATIENCE, session.get(CELL).send()),
    );

    assert!(first.is_err(), "the first request was still held");
    assert!(second.is_err(), "the second gave up waiting for the slot");
    assert!(
        session.get(CELL).send().await.is_ok(),
        "the slot was released"
    );
    drop(session);
    fixture.assert_each_closed_once("slot wait", &[]).await;
}

#[tokio::test(start_paused = true)]
async fn request_cancelled_during_cooldown() {
    let fixture = fixture(false).await;
    let session = fixture.open().await;
    let throttle = Fault::Status {
        status: 429,
        retry_after: Some(RetryAfter::Seconds(20)),
    };
    fixture
        .emulator
        .inject(FaultRule::new(Route::Range, throttle));

    let throttled = tokio::time::timeout(PATIENCE, session.get(CELL).send()).await;
    let later = tokio::time::timeout(PATIENCE, session.get(CELL).send()).await;

    assert!(
        throttled.is_err(),
        "the caller gave up during the Retry-After wait"
    );
    assert!(
        later.is_err(),
        "the next request waits for the session's cooldown"
    );
    session
        .close()
        .await
        .expect("the close waits out the cooldown and succeeds");
    fixture.assert_each_closed_once("cooldown", &[]).await;
}

#[tokio::test(start_paused = true)]
async fn request_cancelled_while_session_is_recreated() {
    let fixture = fixture(false).await;
    let session = fixture.open().await;
    let expired = fixture.emulator.created_session_ids();
    fixture.emulator.expire_session(&expired[0]);
    fixture.hold(Route::CreateSession);

    let write = session.patch(CELL).json(&json!({ "values": [[5]] })).send();
    let outcome = tokio::time::timeout(PATIENCE, write).await;
    tokio::time::sleep(HOLD * 2).await;
    let after = session.get(CELL).send().await;

    assert!(outcome.is_err(), "the caller gave up during the recreation");
    assert!(
        after.is_ok(),
        "the recreated session was installed: {after:?}"
    );
    assert_eq!(
        fixture.emulator.created_session_ids().len(),
        2,
        "recreated once"
    );
    drop(session);
    fixture
        .assert_each_closed_once("recreation held", &expired)
        .await;
}

#[tokio::test(start_paused = true)]
async fn guard_dropped_while_recreation_is_held() {
    let fixture = fixture(false).await;
    let session = fixture.open().await;
    let expired = fixture.emulator.created_session_ids();
    fixture.emulator.expire_session(&expired[0]);
    fixture.hold(Route::CreateSession);

    let write = session.patch(CELL).json(&json!({ "values": [[5]] })).send();
    let outcome = tokio::time::timeout(PATIENCE, write).await;
    drop(session);

    assert!(outcome.is_err(), "the caller gave up during the recreation");
    fixture
        .assert_each_closed_once("guard dropped during recreation", &expired)
        .await;
}

#[tokio::test(start_paused = true)]
async fn refresh_cancelled_while_answer_is_held() {
    let fixture = fixture(false).await;
    let session = fixture.open().await;
    fixture.hold(Route::RefreshSession);

    let held = tokio::time::timeout(PATIENCE, session.refresh()).await;
    let after = session.get(CELL).send().await;

    assert!(held.is_err(), "the caller gave up");
    assert!(after.is_ok(), "the guard still works: {after:?}");
    session.close().await.expect("closes");
    fixture.assert_each_closed_once("refresh held", &[]).await;
}

#[tokio::test(start_paused = true)]
async fn close_cancelled_while_answer_is_held() {
    let fixture = fixture(false).await;
    let session = fixture.open().await;
    fixture.hold(Route::CloseSession);

    let held = tokio::time::timeout(PATIENCE, session.close()).await;

    assert!(held.is_err(), "the caller gave up");
    let stats = fixture.assert_each_closed_once("close held", &[]).await;
    assert_eq!(
        stats.closed_explicitly, 1,
        "the explicit close finished after the caller left"
    );
}
