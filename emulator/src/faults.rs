//! Fault injection: scripted rules that match a route, and seeded random faults.
//!
//! Scripted rules are checked first, in the order they were injected; a request that no rule
//! matches may still draw a random fault. A fault is decided once per request, after the
//! bearer check and the URL parse and before the request is processed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::ops::{Range, RangeInclusive};
use std::time::{Duration, SystemTime};

/// A group of endpoints that a [`FaultRule`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `createSession`, plain or `microsoft.graph.` prefixed.
    CreateSession,
    /// `refreshSession`, plain or prefixed.
    RefreshSession,
    /// `closeSession`, plain or prefixed.
    CloseSession,
    /// `GET .../workbook/operations/{id}`: polling a long-running createSession.
    Operation,
    /// `GET .../workbook/sessionInfoResource(key='...')`.
    SessionInfo,
    /// Listing worksheets and getting one worksheet.
    Worksheets,
    /// `range(address=...)` and `usedRange`, read or written.
    Range,
    /// Every route above.
    Any,
}

impl Route {
    /// Returns whether a rule for `self` applies to a request on `route`.
    pub(crate) fn matches(self, route: Route) -> bool {
        self == Route::Any || self == route
    }
}

/// The value of a `Retry-After` response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// A delay in whole seconds, sent as a decimal number.
    Seconds(u64),
    /// A point in time, sent as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
    HttpDate(SystemTime),
    /// Any text, sent unchanged, for testing how a client copes with a malformed header.
    ///
    /// Text that is not a legal header value (a control character, for example) cannot be
    /// sent at all: the header is then left out and a warning is logged.
    Raw(String),
}

impl RetryAfter {
    /// Renders the header value.
    pub(crate) fn header_value(&self) -> String {
        match self {
            RetryAfter::Seconds(seconds) => seconds.to_string(),
            RetryAfter::HttpDate(time) => httpdate::fmt_http_date(clamp_http_date(*time)),
            RetryAfter::Raw(text) => text.clone(),
        }
    }
}

/// Clamps a time into the years an HTTP date can express (1970 to 9999), because the
/// formatter panics outside them.
fn clamp_http_date(time: SystemTime) -> SystemTime {
    let latest = std::time::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    time.clamp(std::time::UNIX_EPOCH, latest)
}

/// The action the emulator takes on a request that a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Responds with `status` and the documented error body, without processing the request.
    ///
    /// 429 carries the second-level code `tooManyRequestsUncategorized`, 503
    /// `serviceUnavailableUncategorized`, 504 `gatewayTimeoutUncategorized`; 502 carries no
    /// second-level code, and other statuses carry their documented top-level code.
    Status {
        /// The HTTP status code.
        status: u16,
        /// The `Retry-After` header to send, if any.
        retry_after: Option<RetryAfter>,
    },
    /// Processes the request, then delays the response by this long, so the side effect
    /// happens but the response is late.
    DelayResponse(Duration),
    /// Holds the request for this long before processing it.
    DelayRequest(Duration),
    /// Closes the TCP connection without a response and without processing the request.
    DropConnection,
}

/// A scripted fault for the next requests that match a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub(crate) route: Route,
    pub(crate) fault: Fault,
    pub(crate) remaining: u32,
}

impl FaultRule {
    /// Creates a rule that applies `fault` to the next request on `route`.
    pub fn new(route: Route, fault: Fault) -> Self {
        FaultRule {
            route,
            fault,
            remaining: 1,
        }
    }

    /// Sets how many matching requests the rule applies to before it is used up.
    ///
    /// Default is 1. A rule with 0 applies to nothing.
    #[must_use]
    pub fn times(mut self, count: u32) -> Self {
        self.remaining = count;
        self
    }
}

/// Seeded random faults, drawn for every request on a recognized route.
///
/// Each request draws one number in [0, 1). Below `rate_429` it gets 429, below
/// `rate_429 + rate_503` a 503, and so on through 504 and a dropped connection. Any other
/// request is served after a latency drawn from `latency`. The sequence of draws depends only on the seed, so a run that sends the
/// same requests in the same order meets the same faults.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomFaults {
    /// The seed of the random sequence.
    pub seed: u64,
    /// The share of requests, from 0.0 to 1.0, that get 429 Too Many Requests.
    pub rate_429: f64,
    /// The `Retry-After` of each 429, in seconds, drawn uniformly from this range.
    pub retry_after_secs: RangeInclusive<u64>,
    /// The share of requests that get 503 Service Unavailable.
    pub rate_503: f64,
    /// The share of requests that get 504 Gateway Timeout.
    pub rate_504: f64,
    /// The share of requests whose connection is closed without a response.
    pub rate_drop: f64,
    /// The latency added before processing each served request, drawn uniformly from this
    /// range. An empty range adds its start.
    pub latency: Range<Duration>,
}

impl Default for RandomFaults {
    /// Returns a configuration that injects nothing, with seed 0.
    fn default() -> Self {
        RandomFaults {
            seed: 0,
            rate_429: 0.0,
            retry_after_secs: 1..=1,
            rate_503: 0.0,
            rate_504: 0.0,
            rate_drop: 0.0,
            latency: Duration::ZERO..Duration::ZERO,
        }
    }
}

/// The fault decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    None,
    Apply(Fault),
}

/// The scripted rules and the random generator, behind the emulator's state lock.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    rules: VecDeque<FaultRule>,
    random: Option<(RandomFaults, StdRng)>,
}

impl FaultState {
    pub(crate) fn push_rule(&mut self, rule: FaultRule) {
        if rule.remaining > 0 {
            self.rules.push_back(rule);
        }
    }

    pub(crate) fn set_random(&mut self, random: Option<RandomFaults>) {
        self.random = random.map(|config| {
            let rng = StdRng::seed_from_u64(config.seed);
            (config, rng)
        });
    }

    /// Decides the fault for a request on `route`, using up one application of a rule.
    pub(crate) fn decide(&mut self, route: Route) -> Decision {
        if let Some(fault) = self.take_rule(route) {
            return Decision::Apply(fault);
        }

        match &mut self.random {
            Some((config, rng)) => draw_random(config, rng),
            None => Decision::None,
        }
    }

    fn take_rule(&mut self, route: Route) -> Option<Fault> {
        let index = self
            .rules
            .iter()
            .position(|rule| rule.route.matches(route))?;
        let rule = &mut self.rules[index];
        let fault = rule.fault.clone();
        rule.remaining -= 1;
        if rule.remaining == 0 {
            self.rules.remove(index);
        }
        Some(fault)
    }
}

fn draw_random(config: &RandomFaults, rng: &mut StdRng) -> Decision {
    let draw: f64 = rng.random();
    let mut threshold = config.rate_429;
    if draw < threshold {
        let seconds = draw_inclusive(rng, &config.retry_after_secs);
        return Decision::Apply(Fault::Status {
            status: 429,
            retry_after: Some(RetryAfter::Seconds(seconds)),
        });
    }

    threshold += config.rate_503;
    if draw < threshold {
        return status_fault(503);
    }

    threshold += config.rate_504;
    if draw < threshold {
        return status_fault(504);
    }

    threshold += config.rate_drop;
    if draw < threshold {
        return Decision::Apply(Fault::DropConnection);
    }

    let latency = draw_duration(rng, &config.latency);
    if latency.is_zero() {
        Decision::None
    } else {
        Decision::Apply(Fault::DelayRequest(latency))
    }
}

fn status_fault(status: u16) -> Decision {
    Decision::Apply(Fault::Status {
        status,
        retry_after: None,
    })
}

/// Draws from an inclusive range; an empty range (start after end) yields its start.
fn draw_inclusive(rng: &mut StdRng, range: &RangeInclusive<u64>) -> u64 {
    if range.start() >= range.end() {
        *range.start()
    } else {
        rng.random_range(range.clone())
    }
}

/// Draws from a half-open range of durations; an empty range yields its start.
fn draw_duration(rng: &mut StdRng, range: &Range<Duration>) -> Duration {
    if range.start >= range.end {
        return range.start;
    }

    let start = range.start.as_nanos().min(u128::from(u64::MAX)) as u64;
    let end = range.end.as_nanos().min(u128::from(u64::MAX)) as u64;
    if start >= end {
        return range.start;
    }
    Duration::from_nanos(rng.random_range(start..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_in_order_and_are_used_up() {
        let mut state = FaultState::default();
        state.push_rule(FaultRule::new(Route::CreateSession, Fault::DropConnection).times(2));
        state.push_rule(FaultRule::new(
            Route::Any,
            Fault::DelayRequest(Duration::ZERO),
        ));

        let decisions: Vec<Decision> = (0..4).map(|_| state.decide(Route::CreateSession)).collect();

        assert_eq!(
            decisions[0],
            Decision::Apply(Fault::DropConnection),
            "first"
        );
        assert_eq!(
            decisions[1],
            Decision::Apply(Fault::DropConnection),
            "second"
        );
        assert_eq!(
            decisions[2],
            Decision::Apply(Fault::DelayRequest(Duration::ZERO)),
            "the second rule after the first is used up"
        );
        assert_eq!(decisions[3], Decision::None, "no rule left");
    }

    #[test]
    fn http_dates_outside_the_expressible_years_are_clamped() {
        let before_epoch = std::time::UNIX_EPOCH - Duration::from_secs(1);
        let far_future = std::time::UNIX_EPOCH + Duration::from_secs(400_000_000_000);

        let early = RetryAfter::HttpDate(before_epoch).header_value();
        let late = RetryAfter::HttpDate(far_future).header_value();

        assert_eq!(
            early, "Thu, 01 Jan 1970 00:00:00 GMT",
            "clamped to the epoch"
        );
        assert_eq!(
            late, "Fri, 31 Dec 9999 23:59:59 GMT",
            "clamped to the year 9999"
        );
    }

    #[test]
    #[allow(
        clippy::reversed_empty_ranges,
        reason = "inverted ranges are the case under test"
    )]
    fn random_faults_with_inverted_ranges_do_not_panic() {
        let mut state = FaultState::default();
        state.set_random(Some(RandomFaults {
            rate_429: 0.5,
            retry_after_secs: 9..=2,
            latency: Duration::from_secs(3)..Duration::from_secs(1),
            ..RandomFaults::default()
        }));

        for _ in 0..100 {
            let _ = state.decide(Route::Range);
        }
    }
}
