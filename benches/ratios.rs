//! The ratio harness: every benchmark measures the library beside a raw baseline in the same
//! process and run, and prints one line with both medians, their ratio, the spread of that
//! ratio over the rounds, the target and the verdict.
//!
//! Run it with `cargo bench --bench ratios`; the process exits with status 1 when a figure
//! misses its target by more than the spread measured with it. Pass benchmark names as
//! arguments to run only some of them: `drop_guard`, `guarded_get`, `drain`, `memory`,
//! `keep_alive`. The environment variables read by each benchmark (all optional) set its
//! size; BENCHMARKS.md lists them with their defaults.

#[path = "ratios/drain.rs"]
mod drain;
#[path = "ratios/drop_guard.rs"]
mod drop_guard;
#[path = "ratios/guarded_get.rs"]
mod guarded_get;
#[path = "ratios/keep_alive.rs"]
mod keep_alive;
#[path = "ratios/memory.rs"]
mod memory;
#[path = "ratios/report.rs"]
mod report;
#[path = "support/mod.rs"]
mod support;

use std::process::ExitCode;

use report::{Line, Verdict};

#[global_allocator]
static ALLOCATOR: memory::CountingAllocator = memory::CountingAllocator;

const BENCHMARKS: [&str; 5] = ["drop_guard", "guarded_get", "drain", "memory", "keep_alive"];

fn main() -> ExitCode {
    if support::serve_if_child() {
        return ExitCode::SUCCESS;
    }
    let mut emulator: Option<support::EmulatorProcess> = None;
    let mut lines = Vec::new();
    for name in selected_benchmarks() {
        println!("running {name}");
        if name == "keep_alive" {
            // It needs the emulator on its own paused clock, so it starts one in-process.
            lines.extend(keep_alive::run());
            continue;
        }
        let emulator = emulator.get_or_insert_with(support::EmulatorProcess::start);
        match name {
            "drop_guard" => lines.push(drop_guard::run(emulator)),
            "guarded_get" => lines.push(guarded_get::run(emulator)),
            "drain" => lines.push(drain::run(emulator)),
            "memory" => lines.extend(memory::run(emulator)),
            _ => unreachable!("names are checked by selected_benchmarks"),
        }
    }
    drop(emulator);

    println!();
    println!("{}", Line::header());
    for line in &lines {
        println!("{line}");
    }
    if lines.iter().any(|line| line.verdict == Verdict::Fail) {
        println!("at least one benchmark missed its target by more than its measured spread");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Returns the benchmarks named on the command line, or all of them.
///
/// Arguments starting with `-` are skipped: `cargo bench` passes `--bench`.
fn selected_benchmarks() -> Vec<&'static str> {
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with('-'))
        .collect();
    if names.is_empty() {
        return BENCHMARKS.to_vec();
    }
    names
        .iter()
        .map(|name| {
            BENCHMARKS
                .iter()
                .find(|known| *known == name)
                .copied()
                .unwrap_or_else(|| {
                    panic!("unknown benchmark {name:?}; expected one of {BENCHMARKS:?}")
                })
        })
        .collect()
}
