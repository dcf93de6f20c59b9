//! [`WorkbookClient`] and its builder: the HTTP client, authentication, the registry of open
//! sessions, the counters, and the background close and keep-alive tasks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{Instrument, info, info_span};
use url::Url;

use crate::auth::{AccessToken, Auth, TokenProvider};
use crate::close_queue::{self, DEFAULT_CLOSE_TIMEOUT, Message};
use crate::create;
use crate::error::Error;
use crate::keep_alive::{self, Schedule};
use crate::retry::RetryPolicy;
use crate::session::{SessionGuard, SessionOptions};
use crate::shutdown::InFlight;
use crate::state::{Registry, SessionSettings, SessionState};
use crate::stats::{Counters, Stats};
use crate::transport::{self, Core};
use crate::workbook::Workbook;

/// The Graph endpoint used when no base URL is set.
pub const DEFAULT_BASE_URL: &str = "https://graph.microsoft.com/v1.0";

/// The settings of a client; see the builder for each default.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) request_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) create_timeout: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) max_poll_interval: Duration,
    pub(crate) respond_async: bool,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) refresh_concurrency: usize,
    pub(crate) max_concurrent_requests: usize,
    pub(crate) close_concurrency: usize,
    pub(crate) close_timeout: Duration,
    pub(crate) max_response_bytes: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            request_timeout: Duration::from_secs(100),
            retry: RetryPolicy::default(),
            create_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            max_poll_interval: Duration::from_secs(30),
            respond_async: true,
            // Graph drops a persistent session after about 5 minutes without requests; 3
            // minutes leaves time for a throttled refresh to be retried before that.
            keep_alive: Some(Duration::from_secs(180)),
            refresh_concurrency: 32,
            max_concurrent_requests: 1,
            close_concurrency: 16,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Builds a [`WorkbookClient`].
#[must_use = "a builder does nothing until build is called"]
pub struct WorkbookClientBuilder {
    base_url: String,
    auth: Option<Auth>,
    http: Option<reqwest::Client>,
    connect_timeout: Duration,
    allow_insecure_http: bool,
    config: Config,
    auth_error: Option<Error>,
}

impl WorkbookClientBuilder {
    /// Sets the Graph base URL, such as `https://graph.microsoft.com/beta`. Default is
    /// [`DEFAULT_BASE_URL`].
    ///
    /// The token is sent only to this URL's origin. Plain `http` is accepted only for
    /// loopback hosts, unless [`allow_insecure_http`](Self::allow_insecure_http) is set.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Authenticates every request with this bearer token (without the `Bearer ` prefix).
    pub fn bearer_token(mut self, token: impl Into<AccessToken>) -> Self {
        match token.into().header_value() {
            Ok(value) => self.auth = Some(Auth::Static(value)),
            Err(error) => self.auth_error = Some(error),
        }
        self
    }

    /// Asks `provider` for a token before every request, and once more after a 401.
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.auth = Some(Auth::Provider(Arc::new(provider)));
        self.auth_error = None;
        self
    }

    /// Sends requests with the caller's own `reqwest` client, sharing its connection pool.
    ///
    /// The client should not follow redirects (`redirect::Policy::none()`): this crate
    /// treats a redirect as an error, but a client that follows it sends the request, with
    /// the session id, to wherever the redirect points. Default is a client built here,
    /// with redirects off and the connect timeout below.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Sets the timeout for opening a connection, for the client built here. Default is 10
    /// seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the timeout of each request attempt, body included. Default is 100 seconds.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Sets the retry policy for every request. Default is [`RetryPolicy::default`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Sets the deadline of a whole createSession, polling included. Default is 5 minutes.
    pub fn create_timeout(mut self, timeout: Duration) -> Self {
        self.config.create_timeout = timeout;
        self
    }

    /// Sets the first and the longest wait between polls of a long-running createSession.
    /// The wait grows by half each poll. Default is 1 second, growing to 30 seconds.
    pub fn poll_interval(mut self, first: Duration, max: Duration) -> Self {
        self.config.poll_interval = first;
        self.config.max_poll_interval = max;
        self
    }

    /// Sets whether createSession sends `Prefer: respond-async`, allowing the 202 form.
    /// Default is `true`.
    pub fn respond_async(mut self, respond_async: bool) -> Self {
        self.config.respond_async = respond_async;
        self
    }

    /// Sets how long a session may stay idle before it is refreshed; `None` turns
    /// keep-alive off. Default is 3 minutes, under Graph's 5-minute inactivity expiry.
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.config.keep_alive = interval;
        self
    }

    /// Sets how many requests of one session may be in flight at once. Default is 1, as
    /// Graph recommends for a workbook.
    pub fn max_concurrent_requests(mut self, limit: usize) -> Self {
        self.config.max_concurrent_requests = limit;
        self
    }

    /// Sets how many queued closes of dropped guards run at once. Default is 16.
    pub fn close_concurrency(mut self, limit: usize) -> Self {
        self.config.close_concurrency = limit;
        self
    }

    /// Sets the time one close may take, retries included. Default is 60 seconds.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// Sets the largest response body read, in bytes. Default is 32 MiB.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.config.max_response_bytes = limit;
        self
    }

    /// Allows a plain `http` base URL on a host other than loopback, which sends the token
    /// unencrypted. Default is `false`.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Builds the client and starts its close worker and keep-alive task on the current
    /// tokio runtime.
    ///
    /// # Errors
    ///
    /// - [`Error::NoRuntime`] outside a tokio runtime.
    /// - [`Error::InvalidArgument`] for an invalid base URL, a missing or invalid token, or a
    ///   zero limit.
    pub fn build(self) -> Result<WorkbookClient, Error> {
        let handle = Handle::try_current().map_err(|_| Error::NoRuntime)?;
        if let Some(error) = self.auth_error {
            return Err(error);
        }
        let auth = self.auth.ok_or_else(|| {
            Error::invalid_argument("token", "", "set bearer_token or token_provider")
        })?;
        let base = parse_base_url(&self.base_url, self.allow_insecure_http)?;
        check_limits(&self.config)?;
        let http = match self.http {
            Some(http) => http,
            None => build_http_client(self.connect_timeout)?,
        };

        let core = Arc::new(Core {
            http,
            base,
            auth,
            config: self.config,
            counters: Counters::default(),
            epoch: Instant::now(),
            registry: Mutex::new(Registry::default()),
            schedule: Schedule::default(),
            in_flight: Arc::new(InFlight::default()),
            abort_closes: Notify::new(),
        });
        let (queue, receiver) = mpsc::unbounded_channel();
        let concurrency = core.config.close_concurrency;
        handle.spawn(
            close_queue::run_worker(Arc::clone(&core), receiver, concurrency)
                .instrument(info_span!("close_worker")),
        );
        let (stop, stopped) = oneshot::channel();
        handle.spawn(
            keep_alive::run(Arc::clone(&core), stopped).instrument(info_span!("keep_alive")),
        );
        Ok(WorkbookClient {
            inner: Arc::new(ClientInner {
                core,
                queue,
                stop_keep_alive: Mutex::new(Some(stop)),
            }),
        })
    }
}

fn parse_base_url(text: &str, allow_insecure_http: bool) -> Result<Url, Error> {
    let url = Url::parse(text)
        .map_err(|error| Error::invalid_argument("base URL", text, error.to_string()))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback || allow_insecure_http => {}
        "http" => {
            return Err(Error::invalid_argument(
                "base URL",
                text,
                "plain http would send the token unencrypted; use https, or allow_insecure_http",
            ));
        }
        _ => {
            return Err(Error::invalid_argument(
                "base URL",
                text,
                "the scheme must be https",
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Error::invalid_argument(
            "base URL",
            text,
            "it must not carry a query, a fragment or credentials",
        ));
    }
    Ok(url)
}

fn check_limits(config: &Config) -> Result<(), Error> {
    let zero = [
        (
            "max_concurrent_requests",
            config.max_concurrent_requests == 0,
        ),
        ("close_concurrency", config.close_concurrency == 0),
        ("max_response_bytes", config.max_response_bytes == 0),
        ("keep_alive", config.keep_alive.is_some_and(|d| d.is_zero())),
    ];
    for (what, is_zero) in zero {
        if is_zero {
            return Err(Error::invalid_argument(
                "limit",
                what,
                "it must be greater than zero",
            ));
        }
    }
    Ok(())
}

fn build_http_client(connect_timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|error| Error::invalid_argument("HTTP client", "", error.to_string()))
}

/// A Microsoft Graph workbook client: creates sessions and closes the ones left behind.
///
/// Cloning is cheap and shares everything. The client's background tasks stop when the
/// client and every guard from it are gone, after the queued closes have run.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use workbook_session::{SessionOptions, Workbook, WorkbookClient};
///
/// # async fn run() -> Result<(), workbook_session::Error> {
/// let client = WorkbookClient::builder().bearer_token("token").build()?;
/// let workbook = Workbook::drive_item("drive-id", "item-id")?;
///
/// let session = client.create_session(&workbook, SessionOptions::persistent()).await?;
/// session
///     .patch("worksheets('Sheet1')/range(address='A1')")
///     .json(&serde_json::json!({ "values": [[42]] }))
///     .send()
///     .await?;
/// session.close().await?;
///
/// let report = client.shutdown(Duration::from_secs(10)).await;
/// assert_eq!(report.failed, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WorkbookClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    core: Arc<Core>,
    queue: mpsc::UnboundedSender<Message>,
    /// Dropping or firing it stops the keep-alive task.
    stop_keep_alive: Mutex<Option<oneshot::Sender<()>>>,
}

impl WorkbookClient {
    /// Starts a builder with every default.
    pub fn builder() -> WorkbookClientBuilder {
        WorkbookClientBuilder {
            base_url: DEFAULT_BASE_URL.to_owned(),
            auth: None,
            http: None,
            connect_timeout: Duration::from_secs(10),
            allow_insecure_http: false,
            config: Config::default(),
            auth_error: None,
        }
    }

    /// Creates a session on `workbook` and returns the guard that closes it.
    ///
    /// Sends `persistChanges` explicitly, and `Prefer: respond-async` unless turned off; a
    /// 202 response is polled until the session exists.
    ///
    /// # Errors
    ///
    /// - [`Error::ShutDown`] after [`shutdown`](WorkbookClient::shutdown) began.
    /// - [`Error::Graph`] and [`Error::Throttled`] for refused requests.
    /// - [`Error::OperationFailed`], [`Error::UnknownOperationStatus`],
    ///   [`Error::OperationTimedOut`] for a long-running creation that did not succeed.
    /// - [`Error::InvalidResponse`] and [`Error::ForeignOrigin`] for responses that cannot be
    ///   trusted. Nothing is sent to another origin.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: the creation runs in its own task, and a session created
    /// after the caller stopped waiting is closed through the close queue.
    pub async fn create_session(
        &self,
        workbook: &Workbook,
        options: SessionOptions,
    ) -> Result<SessionGuard, Error> {
        let core = self.core();
        core.registry.lock().check_open()?;
        let settings = self.settings(&options)?;
        let span =
            info_span!("create_session", workbook = %workbook, persistent = settings.persistent);

        let (reply, answer) = oneshot::channel();
        let ticket = core.in_flight.ticket();
        let client = self.clone();
        let workbook = workbook.clone();
        tokio::spawn(
            async move {
                let _ticket = ticket;
                // If the caller stopped waiting, the guard comes back here and its drop
                // queues the close.
                let _ = reply.send(client.open(workbook, settings).await);
            }
            .instrument(span),
        );
        answer.await.unwrap_or(Err(Error::invalid_response(
            "createSession",
            "the creating task stopped before it finished; its runtime is shutting down",
        )))
    }

    async fn open(
        &self,
        workbook: Workbook,
        settings: SessionSettings,
    ) -> Result<SessionGuard, Error> {
        let core = self.core();
        let root_url = transport::root_url(&core.base, &workbook)?;
        let created =
            create::create_session(core, &workbook, settings.persistent, settings.respond_async)
                .await?;
        Counters::add(&core.counters.created);
        let persistent = settings.persistent;
        let key = core.registry.lock().next_key();
        let state = Arc::new(SessionState::new(
            core, key, workbook, root_url, settings, created.id,
        ));
        let guard = SessionGuard::new(self.clone(), Arc::clone(&state));

        if core.registry.lock().insert(Arc::clone(&state)).is_err() {
            guard.close_on_shutdown();
            return Err(Error::ShutDown);
        }
        if created
            .persist_reported
            .is_some_and(|reported| reported != persistent)
        {
            // Dropping the guard closes the session that is not what the caller asked for.
            drop(guard);
            return Err(Error::invalid_response(
                "createSession",
                format!(
                    "persistChanges {persistent} was requested but the server created the session with {}",
                    !persistent
                ),
            ));
        }
        core.schedule.track(core, &state);
        info!(session = %guard.fingerprint(), "session created");
        Ok(guard)
    }

    fn settings(&self, options: &SessionOptions) -> Result<SessionSettings, Error> {
        let config = &self.core().config;
        let settings = SessionSettings {
            persistent: options.persistent,
            keep_alive: options.keep_alive.unwrap_or(config.keep_alive),
            max_concurrent_requests: options
                .max_concurrent_requests
                .unwrap_or(config.max_concurrent_requests),
            respond_async: options.respond_async.unwrap_or(config.respond_async),
            retry: options.retry.clone(),
        };
        if settings.max_concurrent_requests == 0 {
            return Err(Error::invalid_argument(
                "session option",
                "max_concurrent_requests",
                "it must be greater than zero",
            ));
        }
        if settings
            .keep_alive
            .is_some_and(|interval| interval.is_zero())
        {
            return Err(Error::invalid_argument(
                "session option",
                "keep_alive",
                "the interval must be greater than zero",
            ));
        }
        Ok(settings)
    }

    /// Returns a snapshot of the session counters.
    pub fn stats(&self) -> Stats {
        let core = self.core();
        let open = core.registry.lock().len() as u64;
        let mut stats = core.counters.snapshot(open);
        stats.keep_alive_wakeups = core.schedule.wakeups();
        stats
    }

    /// Returns `true` once [`shutdown`](WorkbookClient::shutdown) has begun.
    pub fn is_shut_down(&self) -> bool {
        self.core().registry.lock().is_shutting_down()
    }

    /// Returns the base URL requests are sent to.
    pub fn base_url(&self) -> &str {
        self.core().base.as_str()
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.inner.core
    }

    pub(crate) fn queue(&self) -> &mpsc::UnboundedSender<Message> {
        &self.inner.queue
    }

    pub(crate) fn stop_keep_alive(&self) {
        if let Some(stop) = self.inner.stop_keep_alive.lock().take() {
            let _ = stop.send(());
        }
    }

    /// Returns how many keep-alive entries are scheduled; for benchmarks and tests.
    #[doc(hidden)]
    pub fn keep_alive_entries(&self) -> usize {
        self.core().schedule.len()
    }
}

impl fmt::Debug for WorkbookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core();
        f.debug_struct("WorkbookClient")
            .field("base_url", &core.base.as_str())
            .field("auth", &core.auth)
            .field("open_sessions", &core.registry.lock().len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for WorkbookClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkbookClientBuilder")
            .field("base_url", &self.base_url)
            .field("auth", &self.auth)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
