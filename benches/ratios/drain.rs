//! Draining N dropped guards against N raw closeSession posts at the same concurrency.
//!
//! The library side drops N guards and waits until its stats count N closes on drop. The
//! close worker runs them `close_concurrency` (16 by default) at a time. The baseline sends
//! N closeSession posts, 16 at a time, with the same `reqwest::Client`. Sessions are created
//! before the clock starts, and the two sides alternate which goes first each round.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use workbook_session::{SessionGuard, WorkbookClient};

use crate::report::{Line, Quantity, Summary};
use crate::support::{self, EmulatorProcess, RawCalls, env_count};

const TARGET: f64 = 1.2;
/// The library's default `close_concurrency`, which the baseline matches.
const CLOSE_CONCURRENCY: usize = 16;
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

pub fn run(emulator: &EmulatorProcess) -> Line {
    let sessions = env_count("WBS_BENCH_DRAIN_SESSIONS", 10_000);
    let rounds = env_count("WBS_BENCH_DRAIN_ROUNDS", 5);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (library, baseline) = runtime.block_on(measure(emulator.base_url(), rounds, sessions));

    let ratios: Vec<f64> = library.iter().zip(&baseline).map(|(l, b)| l / b).collect();
    let seconds = |times: &[f64]| times.iter().map(|ns| ns / 1e9).collect::<Vec<_>>();
    println!(
        "  drain: {rounds} rounds of {sessions} sessions; seconds library {:.3?}, baseline {:.3?}",
        seconds(&library),
        seconds(&baseline)
    );
    Line::ratio(
        format!("drain_{sessions}"),
        Quantity::Nanoseconds(Summary::of(&library).median),
        Quantity::Nanoseconds(Summary::of(&baseline).median),
        &Summary::of(&ratios),
        TARGET,
    )
}

/// Returns the nanoseconds of every round's library drain and raw close burst.
async fn measure(base_url: &str, rounds: usize, sessions: usize) -> (Vec<f64>, Vec<f64>) {
    let http = support::http_client();
    let client = support::library_client(base_url, http.clone(), None);
    let raw = RawCalls::new(base_url, http);
    let mut library = Vec::with_capacity(rounds);
    let mut baseline = Vec::with_capacity(rounds);
    let mut dropped = 0;

    for round in 0..rounds {
        let guards = support::create_guards(&client, sessions).await;
        let ids = raw.create_many(sessions).await;
        dropped += sessions as u64;

        if round % 2 == 0 {
            library.push(drain_library(&client, guards, dropped).await);
            baseline.push(close_raw(&raw, &ids).await);
        } else {
            baseline.push(close_raw(&raw, &ids).await);
            library.push(drain_library(&client, guards, dropped).await);
        }
    }
    (library, baseline)
}

async fn drain_library(client: &WorkbookClient, guards: Vec<SessionGuard>, total: u64) -> f64 {
    let started = Instant::now();
    drop(guards);
    support::wait_for_stats(client, DRAIN_LIMIT, |stats| stats.closed_on_drop >= total).await;
    started.elapsed().as_nanos() as f64
}

async fn close_raw(raw: &RawCalls, ids: &[HeaderValue]) -> f64 {
    let started = Instant::now();
    futures_util::stream::iter(ids)
        .for_each_concurrent(CLOSE_CONCURRENCY, |id| raw.close(id))
        .await;
    started.elapsed().as_nanos() as f64
}
