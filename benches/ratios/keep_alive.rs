//! Keep-alive wake-ups and CPU time with many open sessions, on a paused clock.
//!
//! The emulator and the client share one current-thread runtime whose clock is paused, so
//! emulated minutes pass as fast as the work in them allows, and the emulator's inactivity
//! expiry runs on the same clock. Sessions are created in 60 batches one emulated second
//! apart, which spreads their due times over a minute as a service that opens sessions over
//! time would. With the default 3-minute interval nothing is due for the first 3 minutes,
//! which is the quiet window. After that every session is refreshed once per interval, in
//! the busy window. The target is that wake-ups follow the refreshes that are due, not the sessions
//! held: in each window, wake-ups must not exceed refreshes plus a small constant.

use std::time::Duration;

use tokio::time::Instant;
use workbook_session::{SessionGuard, WorkbookClient};

use crate::report::{Line, Quantity, Verdict};
use crate::support::{self, env_count};

const MINUTE: Duration = Duration::from_secs(60);
const KEEP_ALIVE: Duration = Duration::from_secs(180);
const CREATION_BATCHES: u32 = 60;
/// Wake-ups allowed above the refreshes of a window: the scheduler may wake once to find
/// that an entry only needs moving.
const EXTRA_WAKEUPS: u64 = 10;
/// How often the kernel counts process CPU time in `/proc/self/stat`: `USER_HZ`, which
/// Linux fixes at 100 for user space on every mainstream architecture.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The cost of one window of emulated time.
struct Window {
    name: &'static str,
    minutes: f64,
    wakeups: u64,
    refreshes: u64,
    cpu_seconds: f64,
}

pub fn run() -> Vec<Line> {
    let sessions = env_count("WBS_BENCH_KEEP_ALIVE_SESSIONS", 100_000);
    let busy_minutes = env_count("WBS_BENCH_KEEP_ALIVE_MINUTES", 6) as u32;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let (windows, expired) = runtime.block_on(measure(sessions, busy_minutes));
    // Dropping the runtime abandons the queued closes; the emulator is gone with it.
    drop(runtime);

    println!("  keep_alive: {sessions} sessions held, {expired} expired on the emulator");
    windows
        .iter()
        .map(|window| line(window, sessions, expired))
        .collect()
}

fn line(window: &Window, sessions: usize, expired: u64) -> Line {
    let per_minute = |count: u64| count as f64 / window.minutes;
    let cpu_ms_per_minute = window.cpu_seconds * 1e3 / window.minutes;
    println!(
        "  {}: {:.1} emulated minutes, {} wake-ups, {} refreshes, {:.0} ms CPU per emulated minute (client and emulator together)",
        window.name, window.minutes, window.wakeups, window.refreshes, cpu_ms_per_minute
    );
    let within = window.wakeups <= window.refreshes + EXTRA_WAKEUPS && expired == 0;
    Line {
        name: format!("{}_{sessions}", window.name),
        library: Quantity::PerMinute(per_minute(window.wakeups)),
        baseline: Quantity::PerMinute(per_minute(window.refreshes)),
        compared: format!(
            "{:.4}",
            window.wakeups as f64 / window.refreshes.max(1) as f64
        ),
        spread: "-".to_owned(),
        target: format!("<= refr.+{EXTRA_WAKEUPS}"),
        verdict: if within { Verdict::Pass } else { Verdict::Fail },
    }
}

/// Returns the quiet and busy windows and the sessions the emulator expired meanwhile.
async fn measure(sessions: usize, busy_minutes: u32) -> (Vec<Window>, u64) {
    let file = support::sample_file();
    let emulator = support::emulator_builder(&file.path)
        .start()
        .await
        .expect("the emulator starts");
    let client = support::library_client(
        &emulator.base_url(),
        support::http_client(),
        Some(KEEP_ALIVE),
    );

    let start = Instant::now();
    let guards = create_spread(&client, sessions, start).await;

    // Nothing is due before the first batch's interval ends.
    let quiet_end = start + KEEP_ALIVE - Duration::from_secs(5);
    let quiet = observe(&client, "keep_alive_quiet", quiet_end).await;
    let busy_end = quiet_end + MINUTE * busy_minutes;
    let busy = observe(&client, "keep_alive_busy", busy_end).await;

    let expired = emulator.counters().sessions_expired;
    drop(guards);
    (vec![quiet, busy], expired)
}

/// Creates `sessions` sessions in batches one emulated second apart.
async fn create_spread(
    client: &WorkbookClient,
    sessions: usize,
    start: Instant,
) -> Vec<SessionGuard> {
    let mut guards = Vec::with_capacity(sessions);
    for batch in 0..CREATION_BATCHES {
        let share = sessions / CREATION_BATCHES as usize
            + usize::from((batch as usize) < sessions % CREATION_BATCHES as usize);
        guards.extend(support::create_guards(client, share).await);
        tokio::time::sleep_until(start + Duration::from_secs(u64::from(batch) + 1)).await;
    }
    guards
}

/// Lets emulated time run until `end`, counting wake-ups, refreshes and CPU time.
async fn observe(client: &WorkbookClient, name: &'static str, end: Instant) -> Window {
    let began = Instant::now();
    let before = client.stats();
    let cpu_before = process_cpu_seconds();

    tokio::time::sleep_until(end).await;

    let after = client.stats();
    Window {
        name,
        minutes: (end - began).as_secs_f64() / 60.0,
        wakeups: after.keep_alive_wakeups - before.keep_alive_wakeups,
        refreshes: after.refreshed - before.refreshed,
        cpu_seconds: process_cpu_seconds() - cpu_before,
    }
}

/// Returns the user and system CPU time of this process, from `/proc/self/stat`.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat reads");
    // The command name in parentheses may hold spaces; the fields after it are plain.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("/proc/self/stat has a command name")
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: f64 = fields[11..=12]
        .iter()
        .map(|field| field.parse::<f64>().expect("a tick count"))
        .sum();
    ticks / CLOCK_TICKS_PER_SECOND
}
