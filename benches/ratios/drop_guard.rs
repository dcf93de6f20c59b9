//! Dropping an unclosed guard against a bare unbounded-channel send of a job of the same shape.
//!
//! Each round creates a batch of real sessions on the emulator, then times dropping their
//! guards one by one, and, in the other order every second round, times sending as many
//! baseline jobs on a fresh `tokio::sync::mpsc::unbounded_channel`. Both run synchronously
//! on a current-thread runtime, so the close worker cannot run during the timed loop. The
//! queued closes are drained afterwards, outside the timing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use tokio::sync::{mpsc, oneshot};
use workbook_session::SessionGuard;

use crate::report::{Line, Quantity, Summary};
use crate::support::{self, EmulatorProcess, env_count};

const TARGET: f64 = 1.5;
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// The per-session object a baseline job points to, about the size of the library's.
struct SessionStandIn {
    _payload: [u64; 32],
}

/// The client-wide object every baseline job points to.
struct CoreStandIn {
    _payload: [u64; 8],
}

/// The target of a baseline job, with the same variants and field sizes as the library's close target.
#[allow(dead_code)]
enum TargetStandIn {
    Session(Arc<SessionStandIn>),
    Orphan {
        workbook: Arc<str>,
        id: HeaderValue,
        fingerprint: u32,
    },
}

/// A job with the fields of the library's close job: the client core, the target, the
/// reason, an optional reply, the claimed id and a settled flag.
#[allow(dead_code)]
struct JobStandIn {
    core: Arc<CoreStandIn>,
    target: TargetStandIn,
    reason: u8,
    reply: Option<oneshot::Sender<()>>,
    claimed: Option<(HeaderValue, u32, bool)>,
    settled: bool,
}

/// The message type of the baseline channel, shaped like the library's worker messages.
#[allow(dead_code)]
enum MessageStandIn {
    Close(JobStandIn),
    Flush(oneshot::Sender<()>),
}

pub fn run(emulator: &EmulatorProcess) -> Line {
    let rounds = env_count("WBS_BENCH_DROP_ROUNDS", 15);
    let batch = env_count("WBS_BENCH_DROP_BATCH", 1_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (library, baseline) = runtime.block_on(measure(emulator.base_url(), rounds, batch));

    let ratios: Vec<f64> = library.iter().zip(&baseline).map(|(l, b)| l / b).collect();
    println!(
        "  drop_guard: {rounds} rounds of {batch} drops; per-round ns/drop library {library:.1?}, baseline {baseline:.1?}"
    );
    Line::ratio(
        "drop_guard",
        Quantity::Nanoseconds(Summary::of(&library).median),
        Quantity::Nanoseconds(Summary::of(&baseline).median),
        &Summary::of(&ratios),
        TARGET,
    )
}

/// Returns the nanoseconds per drop and per baseline send of every round.
async fn measure(base_url: &str, rounds: usize, batch: usize) -> (Vec<f64>, Vec<f64>) {
    let client = support::library_client(base_url, support::http_client(), None);
    let core = Arc::new(CoreStandIn { _payload: [0; 8] });
    let mut library = Vec::with_capacity(rounds);
    let mut baseline = Vec::with_capacity(rounds);
    let mut dropped = 0;

    for round in 0..rounds {
        let (guards, stand_ins) = create_batch(&client, batch).await;

        let (library_time, baseline_time) = if round % 2 == 0 {
            let library_time = time_drops(guards);
            (library_time, time_sends(&core, &stand_ins))
        } else {
            let baseline_time = time_sends(&core, &stand_ins);
            (time_drops(guards), baseline_time)
        };
        library.push(library_time.as_nanos() as f64 / batch as f64);
        baseline.push(baseline_time.as_nanos() as f64 / batch as f64);

        dropped += batch as u64;
        support::wait_for_stats(&client, DRAIN_LIMIT, |stats| {
            stats.closed_on_drop >= dropped
        })
        .await;
    }
    (library, baseline)
}

/// Creates `batch` sessions and, in step with them, one baseline target each, so that both
/// sets are spread through the heap alike.
async fn create_batch(
    client: &workbook_session::WorkbookClient,
    batch: usize,
) -> (Vec<SessionGuard>, Vec<Arc<SessionStandIn>>) {
    let mut guards = Vec::with_capacity(batch);
    let mut stand_ins = Vec::with_capacity(batch);
    for chunk_start in (0..batch).step_by(support::SETUP_CONCURRENCY) {
        let chunk = support::SETUP_CONCURRENCY.min(batch - chunk_start);
        guards.extend(support::create_guards(client, chunk).await);
        stand_ins.extend((0..chunk).map(|_| Arc::new(SessionStandIn { _payload: [0; 32] })));
    }
    (guards, stand_ins)
}

fn time_drops(mut guards: Vec<SessionGuard>) -> Duration {
    let started = Instant::now();
    for guard in guards.drain(..) {
        drop(guard);
    }
    started.elapsed()
}

fn time_sends(core: &Arc<CoreStandIn>, stand_ins: &[Arc<SessionStandIn>]) -> Duration {
    let (sender, receiver) = mpsc::unbounded_channel();
    let started = Instant::now();
    for session in stand_ins {
        let job = JobStandIn {
            core: Arc::clone(core),
            target: TargetStandIn::Session(Arc::clone(session)),
            reason: 1,
            reply: None,
            claimed: None,
            settled: false,
        };
        let _ = sender.send(MessageStandIn::Close(job));
    }
    let elapsed = started.elapsed();
    drop(black_box(receiver));
    elapsed
}
