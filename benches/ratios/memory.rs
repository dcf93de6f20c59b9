//! Heap bytes held per open session, and resident memory over many create/close cycles.
//!
//! A counting global allocator adds up the bytes of live heap blocks while counting is on.
//! Counting is off for the timing benchmarks, where it costs one relaxed load per
//! allocation. The emulator runs in a child process, so neither figure includes its memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use workbook_session::{SessionOptions, WorkbookClient};

use crate::report::{Line, Quantity, Summary, Verdict};
use crate::support::{self, EmulatorProcess, env_count};

const HEAP_TARGET_BYTES: f64 = 1024.0;
const RSS_TARGET_BYTES: f64 = 2.0 * 1024.0 * 1024.0;
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// Time for connection tasks and spawned creations to finish before a heap reading.
const SETTLE: Duration = Duration::from_millis(200);

/// Wraps the system allocator and tracks live heap bytes while [`COUNTING`] is set.
pub struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

fn record(change: i64) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(change, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is met exactly as for `System`, the counting touches only atomics and
// never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; see the impl.
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() {
            record(layout.size() as i64);
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; see the impl.
        let block = unsafe { System.alloc_zeroed(layout) };
        if !block.is_null() {
            record(layout.size() as i64);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; see the impl.
        unsafe { System.dealloc(block, layout) };
        record(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; see the impl.
        let moved = unsafe { System.realloc(block, layout, new_size) };
        if !moved.is_null() {
            record(new_size as i64 - layout.size() as i64);
        }
        moved
    }
}

/// Returns the live heap bytes counted since counting began.
///
/// Blocks allocated before counting began and freed after it subtract from the count, so
/// only differences between two readings taken while counting are meaningful.
fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Returns this process's resident set size in bytes, from `VmRSS` in `/proc/self/status`
/// (the resident figure of `/proc/self/statm`, in kibibytes rather than pages).
fn resident_bytes() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status reads");
    let kibibytes: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .expect("/proc/self/status has a VmRSS line");
    kibibytes * 1024.0
}

pub fn run(emulator: &EmulatorProcess) -> Vec<Line> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    COUNTING.store(true, Ordering::Relaxed);
    let lines = runtime.block_on(async {
        let http = support::http_client();
        vec![
            heap_per_session(emulator.base_url(), &http).await,
            resident_growth(emulator.base_url(), &http).await,
        ]
    });
    COUNTING.store(false, Ordering::Relaxed);
    lines
}

/// The library's default keep-alive interval: each session also has a schedule entry.
const KEEP_ALIVE: Duration = Duration::from_secs(180);

/// Measures heap bytes per open session, minus the session id's own bytes.
///
/// Every round uses a new client, so that its tables start empty and contain no entries of
/// sessions closed in an earlier round. The connection pool of the shared `http` client is
/// filled beforehand, so that its connections are not counted.
async fn heap_per_session(base_url: &str, http: &reqwest::Client) -> Line {
    let sessions = env_count("WBS_BENCH_HEAP_SESSIONS", 10_000);
    let rounds = env_count("WBS_BENCH_HEAP_ROUNDS", 3);
    let warm_up_client = support::library_client(base_url, http.clone(), Some(KEEP_ALIVE));
    let warm_up = support::create_guards(&warm_up_client, 4 * support::SETUP_CONCURRENCY).await;
    drop_and_drain(&warm_up_client, warm_up).await;
    drop(warm_up_client);

    let mut per_session = Vec::with_capacity(rounds);
    let mut id_length = 0;
    for _ in 0..rounds {
        let client = support::library_client(base_url, http.clone(), Some(KEEP_ALIVE));
        let mut guards = Vec::with_capacity(sessions);
        tokio::time::sleep(SETTLE).await;
        let before = live_bytes();

        guards.extend(support::create_guards(&client, sessions).await);
        tokio::time::sleep(SETTLE).await;
        let after = live_bytes();

        let (_, id) = guards[0].session_header().expect("the session is open");
        id_length = id.len();
        per_session.push((after - before) as f64 / sessions as f64 - id_length as f64);
        drop_and_drain(&client, guards).await;
    }

    println!(
        "  heap_per_session: {rounds} rounds of {sessions} open sessions, id length {id_length} B; bytes per session without the id {per_session:.0?}"
    );
    let summary = Summary::of(&per_session);
    let spread = summary.interquartile_range();
    Line {
        name: "heap_per_session".to_owned(),
        library: Quantity::Bytes(summary.median),
        baseline: Quantity::Text("-"),
        compared: format!("{:.0} B", summary.median),
        spread: format!("{spread:.0} B"),
        target: "<= 1024 B".to_owned(),
        verdict: Verdict::judge(summary.median, HEAP_TARGET_BYTES, spread),
    }
}

/// Measures resident memory growth over many create/close cycles, after a warm-up.
async fn resident_growth(base_url: &str, http: &reqwest::Client) -> Line {
    let client = &support::library_client(base_url, http.clone(), Some(KEEP_ALIVE));
    let cycles = env_count("WBS_BENCH_RSS_CYCLES", 100_000);
    let warm_up = env_count("WBS_BENCH_RSS_WARM_UP", 10_000);
    let samples = 10;
    run_cycles(client, warm_up).await;
    tokio::time::sleep(SETTLE).await;
    let resident_start = resident_bytes();
    let heap_start = live_bytes();

    let mut resident = Vec::with_capacity(samples);
    for sample in 0..samples {
        let share = cycles / samples + usize::from(sample < cycles % samples);
        run_cycles(client, share).await;
        resident.push(resident_bytes() - resident_start);
    }
    tokio::time::sleep(SETTLE).await;
    let growth = resident_bytes() - resident_start;
    let heap_growth = (live_bytes() - heap_start) as f64;

    let mebibytes: Vec<f64> = resident.iter().map(|b| b / (1024.0 * 1024.0)).collect();
    println!(
        "  rss_growth: {cycles} create/close cycles after {warm_up} warm-up cycles; RSS growth in MiB every tenth {mebibytes:.2?}; live heap growth {heap_growth:.0} B; keep-alive entries left {}",
        client.keep_alive_entries()
    );
    Line {
        name: format!("rss_growth_{cycles}"),
        library: Quantity::Bytes(growth),
        baseline: Quantity::Text("-"),
        compared: format!("{:.2} MiB", growth / (1024.0 * 1024.0)),
        spread: "-".to_owned(),
        target: "<= 2 MiB".to_owned(),
        verdict: Verdict::judge(growth, RSS_TARGET_BYTES, 0.0),
    }
}

/// Creates and explicitly closes `count` sessions, 16 cycles at a time.
async fn run_cycles(client: &WorkbookClient, count: usize) {
    let workbook = support::workbook();
    futures_util::stream::iter(0..count)
        .for_each_concurrent(support::SETUP_CONCURRENCY, |_| async {
            let session = client
                .create_session(&workbook, SessionOptions::persistent())
                .await
                .expect("the emulator creates a session");
            session.close().await.expect("the session closes");
        })
        .await;
}

async fn drop_and_drain(client: &WorkbookClient, guards: Vec<workbook_session::SessionGuard>) {
    let target = client.stats().closed_on_drop + guards.len() as u64;
    drop(guards);
    support::wait_for_stats(client, DRAIN_LIMIT, |stats| stats.closed_on_drop >= target).await;
}
