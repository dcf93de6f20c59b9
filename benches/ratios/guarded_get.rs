//! A GET through a session guard against a hand-built reqwest GET with the same headers.
//!
//! Both use one `reqwest::Client` (handed to the library with `http_client`), the same
//! session and the same URL on the emulator child process. Library and baseline requests
//! alternate one by one, the order flipping every pair, so that a slow moment of the machine
//! lands on both. Keep-alive refreshes are off, so no refreshSession runs in between.

use std::time::{Duration, Instant};

use workbook_session::SessionOptions;

use crate::report::{Line, Quantity, Summary};
use crate::support::{self, EmulatorProcess, RANGE_PATH, RawCalls, env_count};

const TARGET: f64 = 1.05;
const WARM_UP_PAIRS: usize = 200;

pub fn run(emulator: &EmulatorProcess) -> Line {
    let rounds = env_count("WBS_BENCH_GET_ROUNDS", 10);
    let pairs = env_count("WBS_BENCH_GET_PAIRS", 500);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (library, baseline) = runtime.block_on(measure(emulator.base_url(), rounds, pairs));

    let ratios: Vec<f64> = library.iter().zip(&baseline).map(|(l, b)| l / b).collect();
    println!(
        "  guarded_get: {rounds} rounds of {pairs} request pairs; per-round median ratios {ratios:.3?}"
    );
    Line::ratio(
        "guarded_get",
        Quantity::Nanoseconds(Summary::of(&library).median),
        Quantity::Nanoseconds(Summary::of(&baseline).median),
        &Summary::of(&ratios),
        TARGET,
    )
}

/// Returns, for every round, the median nanoseconds of a library and of a baseline GET.
async fn measure(base_url: &str, rounds: usize, pairs: usize) -> (Vec<f64>, Vec<f64>) {
    let http = support::http_client();
    let client = support::library_client(base_url, http.clone(), None);
    let raw = RawCalls::new(base_url, http);
    let session = client
        .create_session(&support::workbook(), SessionOptions::persistent())
        .await
        .expect("the emulator creates a session");
    let (_, session_id) = session.session_header().expect("the session is open");
    let url = RawCalls::url(base_url, RANGE_PATH);

    let library_get = || async {
        let started = Instant::now();
        let response = session.get(RANGE_PATH).send().await;
        let elapsed = started.elapsed();
        response.expect("the guarded GET succeeds");
        elapsed
    };
    let baseline_get = || async {
        let started = Instant::now();
        raw.get(&url, &session_id).await;
        started.elapsed()
    };

    for _ in 0..WARM_UP_PAIRS {
        library_get().await;
        baseline_get().await;
    }

    let mut library = Vec::with_capacity(rounds);
    let mut baseline = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut library_times = Vec::with_capacity(pairs);
        let mut baseline_times = Vec::with_capacity(pairs);
        for pair in 0..pairs {
            if pair % 2 == 0 {
                library_times.push(library_get().await);
                baseline_times.push(baseline_get().await);
            } else {
                baseline_times.push(baseline_get().await);
                library_times.push(library_get().await);
            }
        }
        library.push(median_nanos(&library_times));
        baseline.push(median_nanos(&baseline_times));
    }

    session.close().await.expect("the session closes");
    (library, baseline)
}

fn median_nanos(times: &[Duration]) -> f64 {
    let nanos: Vec<f64> = times.iter().map(|time| time.as_nanos() as f64).collect();
    Summary::of(&nanos).median
}
