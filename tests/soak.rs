//! A seeded chaos soak: thousands of sessions with random fates against an emulator that
//! injects random faults, then shutdown, then a full audit of what the server saw.
//!
//! `SOAK_SESSIONS` sets the number of sessions (default 2,000); `SOAK_SEED` the seed. Time is
//! paused, so `Retry-After` waits and latencies cost no wall time, and the run stops by itself.
//! Run a large soak and see its figures with:
//! `SOAK_SESSIONS=50000 cargo test --release --test soak -- --nocapture`

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::emulated::*;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::Semaphore;
use workbook_emulator::{Emulator, RandomFaults};
use workbook_session::{Fingerprint, SessionOptions, WorkbookClient};

/// A small deterministic generator (splitmix64), so the fates depend only on the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Close,
    Drop,
    DropInPanic,
    CreateCancelled,
    CloseCancelled,
    OpenAtShutdown,
}

const FATES: [Fate; 6] = [
    Fate::Close,
    Fate::Drop,
    Fate::DropInPanic,
    Fate::CreateCancelled,
    Fate::CloseCancelled,
    Fate::OpenAtShutdown,
];

struct Plan {
    fate: Fate,
    persistent: bool,
    respond_async: bool,
    requests: u64,
    cancel_after: Duration,
}

fn plan(rng: &mut Rng) -> Plan {
    Plan {
        fate: FATES[rng.below(FATES.len() as u64) as usize],
        persistent: rng.below(2) == 0,
        respond_async: rng.below(4) == 0,
        requests: rng.below(4),
        cancel_after: Duration::from_millis(rng.below(40)),
    }
}

/// A `tracing` writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn start_emulator(file: &SampleFile, seed: u64) -> Emulator {
    emulator_builder(file)
        .session_cap(1_000_000)
        .async_create(workbook_emulator::AsyncCreate {
            polls_before_success: 2,
            fail: false,
        })
        .random_faults(RandomFaults {
            seed,
            rate_429: 0.10,
            retry_after_secs: 0..=2,
            rate_503: 0.05,
            rate_504: 0.0,
            rate_drop: 0.02,
            latency: Duration::ZERO..Duration::from_millis(30),
        })
        .start()
        .await
        .expect("emulator starts")
}

/// Runs one session to its fate; returns the guard when the fate is to stay open.
async fn live(
    client: WorkbookClient,
    plan: Plan,
    row: u64,
) -> Option<workbook_session::SessionGuard> {
    let options = if plan.persistent {
        SessionOptions::persistent()
    } else {
        SessionOptions::non_persistent()
    }
    .respond_async(plan.respond_async);
    let workbook = sample_workbook();

    if plan.fate == Fate::CreateCancelled {
        let create = client.create_session(&workbook, options);
        let _ = tokio::time::timeout(plan.cancel_after, create).await;
        return None;
    }
    let session = client.create_session(&workbook, options).await.ok()?;
    for index in 0..plan.requests {
        let cell = format!("worksheets('Notes')/range(address='D{}')", row % 500 + 1);
        let _ = if index % 2 == 0 {
            session.get(&cell).send().await
        } else {
            session
                .patch(&cell)
                .json(&json!({ "values": [[row]] }))
                .send()
                .await
        };
    }

    match plan.fate {
        Fate::Close => {
            let _ = session.close().await;
            None
        }
        Fate::CloseCancelled => {
            let _ = tokio::time::timeout(plan.cancel_after, session.close()).await;
            None
        }
        Fate::DropInPanic => {
            let task = tokio::spawn(async move {
                let _held = session;
                std::panic::panic_any(INTENTIONAL_PANIC);
            });
            let joined = task.await;
            assert!(
                joined.is_err_and(|error| error.is_panic()),
                "the task panicked as planned"
            );
            None
        }
        Fate::OpenAtShutdown => Some(session),
        Fate::Drop | Fate::CreateCancelled => None,
    }
}

/// The message of the panics the soak causes on purpose.
const INTENTIONAL_PANIC: &str = "intentional panic while holding a guard";

/// Keeps the panics the soak causes on purpose out of the output; any other panic is
/// reported as usual. This binary contains one test, so the process-wide hook is safe to set.
fn silence_intentional_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&INTENTIONAL_PANIC) {
            default(info);
        }
    }));
}

#[tokio::test(start_paused = true)]
async fn chaos_soak_leaks_nothing() {
    silence_intentional_panics();
    let sessions = env_number("SOAK_SESSIONS", 2_000);
    let seed = env_number("SOAK_SEED", 20_261_204);
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_max_level(tracing::Level::TRACE)
        .with_env_filter("workbook_session=trace,reqwest=trace,hyper=trace,hyper_util=trace")
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    let wall = std::time::Instant::now();
    let emulated = tokio::time::Instant::now();
    let file = sample_file();
    let emulator = start_emulator(&file, seed).await;
    let client = client_builder(&emulator).build().expect("client builds");

    let mut rng = Rng(seed);
    let limit = Arc::new(Semaphore::new(64));
    let kept = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for row in 0..sessions {
        let plan = plan(&mut rng);
        let permit = Arc::clone(&limit)
            .acquire_owned()
            .await
            .expect("semaphore open");
        let client = client.clone();
        let kept = Arc::clone(&kept);
        tasks.spawn(async move {
            if let Some(guard) = live(client, plan, row).await {
                kept.lock().push(guard);
            }
            drop(permit);
        });
        while let Some(joined) = tasks.try_join_next() {
            joined.expect("no session task panics");
        }
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("no session task panics");
    }
    let still_open = kept.lock().len();
    let report = client.shutdown(Duration::from_secs(600)).await;
    let refused = client
        .create_session(&sample_workbook(), SessionOptions::persistent())
        .await;
    drop(std::mem::take(&mut *kept.lock()));
    let stats = client.stats();
    let counters = emulator.counters();
    let ids = emulator.created_session_ids();
    let logs = String::from_utf8_lossy(&logs.0.lock()).into_owned();

    println!(
        "soak: {sessions} sessions, {} created, {still_open} open at shutdown, {} faults injected, \
         {} retries, {} requests, {} refreshes, {} expired, {} recreated, {} log bytes, \
         {:?} wall time, {:?} emulated time, report {report:?}",
        ids.len(),
        counters.faults_injected,
        stats.retries,
        counters.requests_total,
        stats.refreshed,
        stats.expired,
        stats.recreated,
        logs.len(),
        wall.elapsed(),
        emulated.elapsed()
    );
    assert!(
        matches!(refused, Err(workbook_session::Error::ShutDown)),
        "no session after shutdown"
    );
    assert_eq!(
        emulator.open_sessions(),
        0,
        "the emulator has no open session"
    );
    let unclosed: Vec<_> = ids
        .iter()
        .filter(|id| emulator.closes_accepted(id) != 1)
        .collect();
    for id in unclosed.iter().take(5) {
        let fingerprint = Fingerprint::of(id).to_string();
        println!(
            "session {fingerprint}: {} closes received",
            emulator.closes_received(id)
        );
        for line in logs
            .lines()
            .filter(|line| line.contains(&fingerprint))
            .take(40)
        {
            println!("  {line}");
        }
    }
    assert!(
        unclosed.is_empty(),
        "{} sessions without exactly one accepted close",
        unclosed.len()
    );
    assert_eq!(
        counters.sessions_expired, 0,
        "no session was left to expire"
    );
    assert_eq!(
        stats.created,
        ids.len() as u64,
        "the client created what the server saw"
    );
    assert_eq!(stats.open, 0, "the client holds no open session");
    let closed = stats.closed_explicitly + stats.closed_on_drop + stats.closed_at_shutdown;
    let ended = closed + stats.already_gone + stats.close_failures + stats.abandoned;
    assert_eq!(
        stats.created, ended,
        "every created session ended exactly once: {stats:?}"
    );
    assert_eq!(
        stats.already_gone, 0,
        "no close found its session gone, so none was closed twice"
    );
    assert_eq!(
        stats.close_failures, 0,
        "the server recovered, so no close failed"
    );
    assert_eq!(stats.abandoned, 0, "nothing was abandoned");
    assert!(
        counters.faults_injected > sessions / 10,
        "faults were injected: {}",
        counters.faults_injected
    );
    assert!(stats.retries > 0, "faults caused retries");

    assert!(!logs.is_empty(), "the logs were captured");
    assert!(
        !logs.contains(EMULATOR_TOKEN),
        "the token never reaches a log line"
    );
    let ids: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let leaked = logs
        .split(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '(' | ')' | '[' | ']' | '{' | '}')
        })
        .filter(|word| ids.contains(word) || word.contains("&session="))
        .count();
    assert_eq!(
        leaked, 0,
        "no session id, whole or in part, reaches a log line"
    );
    assert!(
        !logs.contains("a close job panicked"),
        "no close job panicked"
    );
}
