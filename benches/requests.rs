//! Criterion benchmarks of the library's HTTP calls, each beside its hand-built reqwest
//! equivalent, against the workbook emulator in a child process on loopback.
//!
//! - `session_get`: a guarded GET of a range against a reqwest GET with the same headers.
//! - `session_lifecycle`: `create_session` plus `close` against raw createSession and
//!   closeSession posts.
//!
//! Both sides share one `reqwest::Client`. Dropping a guard is measured only by the ratio
//! harness (`cargo bench --bench ratios`): every drop uses up a real session, and Criterion's
//! iteration counts for a sub-microsecond operation would need millions of them.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use support::{EmulatorProcess, RANGE_PATH, RawCalls};
use workbook_session::SessionOptions;

fn session_get(criterion: &mut Criterion, emulator: &EmulatorProcess) {
    let runtime = current_thread_runtime();
    let base_url = emulator.base_url();
    let http = support::http_client();
    let raw = RawCalls::new(base_url, http.clone());
    let (client, session) = runtime.block_on(async {
        let client = support::library_client(base_url, http, None);
        let session = client
            .create_session(&support::workbook(), SessionOptions::persistent())
            .await
            .expect("the emulator creates a session");
        (client, session)
    });
    let (_, session_id) = session.session_header().expect("the session is open");
    let url = RawCalls::url(base_url, RANGE_PATH);

    let mut group = criterion.benchmark_group("session_get");
    group.bench_function("library", |bencher| {
        bencher.to_async(&runtime).iter(|| async {
            session
                .get(RANGE_PATH)
                .send()
                .await
                .expect("the guarded GET succeeds")
        });
    });
    group.bench_function("raw_reqwest", |bencher| {
        bencher
            .to_async(&runtime)
            .iter(|| raw.get(&url, &session_id));
    });
    group.finish();

    runtime.block_on(async {
        session.close().await.expect("the session closes");
        drop(client);
    });
}

fn session_lifecycle(criterion: &mut Criterion, emulator: &EmulatorProcess) {
    let runtime = current_thread_runtime();
    let base_url = emulator.base_url();
    let http = support::http_client();
    let raw = RawCalls::new(base_url, http.clone());
    let client = runtime.block_on(async { support::library_client(base_url, http, None) });
    let workbook = support::workbook();

    let mut group = criterion.benchmark_group("session_lifecycle");
    group.bench_function("library", |bencher| {
        bencher.to_async(&runtime).iter(|| async {
            let session = client
                .create_session(&workbook, SessionOptions::persistent())
                .await
                .expect("the emulator creates a session");
            session.close().await.expect("the session closes")
        });
    });
    group.bench_function("raw_reqwest", |bencher| {
        bencher.to_async(&runtime).iter(|| async {
            let id = raw.create().await;
            raw.close(&id).await;
        });
    });
    group.finish();
    runtime.block_on(async { drop(client) });
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn benches(criterion: &mut Criterion) {
    let emulator = EmulatorProcess::start();
    session_get(criterion, &emulator);
    session_lifecycle(criterion, &emulator);
}

criterion_group! {
    name = requests;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = benches
}

fn main() {
    // The same binary serves the emulator when started as the child process.
    if support::serve_if_child() {
        return;
    }
    requests();
    Criterion::default().configure_from_args().final_summary();
}
