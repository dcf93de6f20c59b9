//! Set-up shared by the benchmarks: the workbook emulator, in a child process or in-process,
//! a library client aimed at it, and the raw reqwest calls the library is compared with.
//!
//! The child process is this benchmark binary started again with [`CHILD_VARIABLE`] set, so
//! no other program has to be built first. It keeps the emulator's own memory and allocations
//! out of the process that the memory benchmarks measure.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use tempfile::TempDir;
use workbook_emulator::{Emulator, EmulatorBuilder};
use workbook_session::{SESSION_HEADER, SessionGuard, SessionOptions, Workbook, WorkbookClient};

pub const TOKEN: &str = "bench-token";
pub const ITEM: &str = "sample";
/// The range read by the request benchmarks: four cells of the sample's `Sales` sheet.
pub const RANGE_PATH: &str = "worksheets('Sales')/range(address='A1:B2')";
/// How many requests the set-up helpers keep in flight while creating or closing sessions.
pub const SETUP_CONCURRENCY: usize = 16;

/// Set in the environment of the child process that serves the emulator.
const CHILD_VARIABLE: &str = "WORKBOOK_SESSION_BENCH_EMULATOR_CHILD";
/// How long a stopped parent waits for the child to exit before killing it.
const CHILD_EXIT_WAIT: Duration = Duration::from_secs(5);

/// A copy of `examples/data/sample.xlsx` in a temporary folder, removed on drop.
pub struct SampleFile {
    _folder: TempDir,
    pub path: PathBuf,
}

pub fn sample_file() -> SampleFile {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("sample.xlsx");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/sample.xlsx");
    std::fs::copy(sample, &path).expect("the sample workbook copies");
    SampleFile {
        _folder: folder,
        path,
    }
}

/// Returns an emulator builder for the sample workbook, with no practical session cap.
pub fn emulator_builder(path: &Path) -> EmulatorBuilder {
    Emulator::builder()
        .workbook(ITEM, path)
        .token(TOKEN)
        .session_cap(usize::MAX)
}

pub fn workbook() -> Workbook {
    Workbook::me_item(ITEM).expect("a valid item id")
}

/// Returns a reqwest client as the library builds its own: redirects off.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client builds")
}

/// Builds a library client on `http`, with keep-alive set to `keep_alive`.
///
/// Must be called inside a tokio runtime, which then runs the client's background tasks.
pub fn library_client(
    base_url: &str,
    http: reqwest::Client,
    keep_alive: Option<Duration>,
) -> WorkbookClient {
    WorkbookClient::builder()
        .base_url(base_url)
        .bearer_token(TOKEN)
        .respond_async(false)
        .keep_alive(keep_alive)
        .http_client(http)
        .build()
        .expect("the library client builds")
}

/// Creates `count` persistent sessions through the library.
pub async fn create_guards(client: &WorkbookClient, count: usize) -> Vec<SessionGuard> {
    let workbook = workbook();
    futures_util::stream::iter(0..count)
        .map(|_| client.create_session(&workbook, SessionOptions::persistent()))
        .buffer_unordered(SETUP_CONCURRENCY)
        .map(|created| created.expect("the emulator creates a session"))
        .collect()
        .await
}

/// Waits until `done` returns `true` for the client's stats, polling every millisecond.
///
/// # Panics
///
/// Panics when `done` is still `false` after `limit`.
pub async fn wait_for_stats(
    client: &WorkbookClient,
    limit: Duration,
    done: impl Fn(&workbook_session::Stats) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let stats = client.stats();
        if done(&stats) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the library did not finish within {limit:?}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The hand-built reqwest calls that the library's calls are measured against.
#[derive(Clone)]
pub struct RawCalls {
    http: reqwest::Client,
    authorization: HeaderValue,
    create_url: reqwest::Url,
    close_url: reqwest::Url,
}

impl RawCalls {
    pub fn new(base_url: &str, http: reqwest::Client) -> RawCalls {
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("a valid header value");
        authorization.set_sensitive(true);
        RawCalls {
            http,
            authorization,
            create_url: raw_url(base_url, "createSession"),
            close_url: raw_url(base_url, "closeSession"),
        }
    }

    /// Returns the URL of `path` below the sample workbook's root.
    pub fn url(base_url: &str, path: &str) -> reqwest::Url {
        raw_url(base_url, path)
    }

    /// Sends a GET of `url` in the session `session_id` and reads the whole body.
    pub async fn get(&self, url: &reqwest::Url, session_id: &HeaderValue) -> bytes::Bytes {
        let response = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(SESSION_HEADER, session_id.clone())
            .send()
            .await
            .expect("the raw GET gets a response");
        assert!(
            response.status().is_success(),
            "raw GET failed: {}",
            response.status()
        );
        response.bytes().await.expect("the raw GET body reads")
    }

    /// Sends createSession and returns the new session id as a header value.
    pub async fn create(&self) -> HeaderValue {
        let response = self
            .http
            .post(self.create_url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(r#"{"persistChanges":true}"#)
            .send()
            .await
            .expect("the raw createSession gets a response");
        assert_eq!(response.status(), 201, "raw createSession failed");
        let body = response
            .bytes()
            .await
            .expect("the createSession body reads");
        let answer: serde_json::Value =
            serde_json::from_slice(&body).expect("createSession returns JSON");
        let id = answer["id"].as_str().expect("createSession returns an id");
        let mut value = HeaderValue::from_str(id).expect("the session id is a header value");
        value.set_sensitive(true);
        value
    }

    /// Sends closeSession for `session_id`, as the library's close worker does.
    pub async fn close(&self, session_id: &HeaderValue) {
        let response = self
            .http
            .post(self.close_url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(SESSION_HEADER, session_id.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .expect("the raw closeSession gets a response");
        assert_eq!(response.status(), 204, "raw closeSession failed");
        response.bytes().await.expect("the closeSession body reads");
    }

    /// Creates `count` sessions with raw createSession calls.
    pub async fn create_many(&self, count: usize) -> Vec<HeaderValue> {
        futures_util::stream::iter(0..count)
            .map(|_| self.create())
            .buffer_unordered(SETUP_CONCURRENCY)
            .collect()
            .await
    }
}

fn raw_url(base_url: &str, path: &str) -> reqwest::Url {
    let text = format!("{base_url}/me/drive/items/{ITEM}/workbook/{path}");
    reqwest::Url::parse(&text).expect("a valid URL")
}

/// The emulator, served by a child process of this benchmark binary on loopback.
///
/// Dropping it closes the child's standard input, which makes the child stop. A child that
/// has not exited after a few seconds is killed.
pub struct EmulatorProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    base_url: String,
}

impl EmulatorProcess {
    /// Starts this binary again as the emulator and reads its base URL.
    ///
    /// # Panics
    ///
    /// Panics when the child cannot start or does not print its base URL.
    pub fn start() -> EmulatorProcess {
        let program = std::env::current_exe().expect("the path of this benchmark binary");
        let mut child = Command::new(program)
            .env(CHILD_VARIABLE, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the emulator child process starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the child's standard output");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the child's standard output reads");
        let base_url = line.trim().to_owned();
        assert!(
            base_url.starts_with("http://127.0.0.1:"),
            "the emulator child printed {base_url:?} instead of its loopback base URL"
        );
        EmulatorProcess {
            child,
            stdin,
            base_url,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let started = std::time::Instant::now();
        while started.elapsed() < CHILD_EXIT_WAIT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "the emulator child {} did not exit within {CHILD_EXIT_WAIT:?}; killing it",
            self.child.id()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves the emulator when this process was started by [`EmulatorProcess::start`].
///
/// Returns `false` at once in any other process. In the child it prints the base URL on
/// standard output, serves until standard input closes, and returns `true`.
pub fn serve_if_child() -> bool {
    if std::env::var_os(CHILD_VARIABLE).is_none() {
        return false;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the emulator runtime builds");
    runtime.block_on(async {
        let file = sample_file();
        let emulator = emulator_builder(&file.path)
            .start()
            .await
            .expect("the emulator starts");
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", emulator.base_url()).expect("standard output writes");
        stdout.flush().expect("standard output flushes");

        // Standard input reaches its end when the parent closes it or exits.
        let _ = tokio::task::spawn_blocking(|| {
            let mut ignored = Vec::new();
            std::io::stdin().read_to_end(&mut ignored)
        })
        .await;
        emulator.shutdown().await;
    });
    true
}

/// Reads an unsigned number from the environment variable `name`, or returns `default`.
///
/// # Panics
///
/// Panics when the variable is set but is not a positive whole number.
pub fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(value) if value > 0 => value,
            _ => panic!("invalid {name}={text:?}: expected a positive whole number"),
        },
        Err(_) => default,
    }
}
