//! The OFD circuit breaker: CLOSED, OPEN and HALF_OPEN, driven by a consecutive-failure count.
//!
//! Time is `tokio::time::Instant`, so paused-time tests see exact instants. Wall-clock copies of the
//! instants are kept only for display in `/v1/health`.
//!
//! **Invariant:** while OPEN and before `opened_at + open_for`, [`Breaker::try_acquire`] refuses, so
//! no connection to the OFD is attempted at all.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The breaker's state, as `/v1/health` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Attempts flow; consecutive failures are counted.
    Closed,
    /// No attempt at all until the open period ends.
    Open,
    /// Attempts are probes: enough successes close the breaker, any failure reopens it.
    HalfOpen,
}

impl BreakerState {
    /// `CLOSED`, `OPEN` or `HALF_OPEN`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "CLOSED",
            BreakerState::Open => "OPEN",
            BreakerState::HalfOpen => "HALF_OPEN",
        }
    }
}

/// Thresholds of the breaker; [`BreakerConfig::default`] gives the specification's 5 / 60 s / 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed breaker.
    pub failures_max: u32,
    /// How long the breaker stays open before it lets a probe through.
    pub open_for: Duration,
    /// Successful probes in HALF_OPEN that close the breaker.
    pub probes_needed: u32,
}

impl Default for BreakerConfig {
    fn default() -> BreakerConfig {
        BreakerConfig {
            failures_max: 5,
            open_for: Duration::from_secs(60),
            probes_needed: 2,
        }
    }
}

/// How many times the breaker entered each state since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransitionCounts {
    /// Transitions into CLOSED.
    pub to_closed: u64,
    /// Transitions into OPEN.
    pub to_open: u64,
    /// Transitions into HALF_OPEN (the start-up state is not counted).
    pub to_half_open: u64,
}

/// A point-in-time view for `/v1/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// Current state (an OPEN breaker whose period is over shows as HALF_OPEN).
    pub state: BreakerState,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When the breaker last opened, if it is open or probing after an opening.
    pub opened_at: Option<Instant>,
    /// When an open breaker lets the next probe through.
    pub next_probe_at: Option<Instant>,
    /// `opened_at` as Unix milliseconds (wall clock, for display only).
    pub opened_at_unix_ms: Option<i64>,
    /// `next_probe_at` as Unix milliseconds (wall clock, for display only).
    pub next_probe_at_unix_ms: Option<i64>,
    /// Transition counters.
    pub transitions: TransitionCounts,
}

/// The breaker itself; wrap it in a mutex to share it.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive_failures: u32,
    probe_successes: u32,
    opened_at: Option<Instant>,
    opened_at_unix_ms: Option<i64>,
    transitions: TransitionCounts,
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Breaker {
    /// A breaker after a (re)start: HALF_OPEN, because the last state is unknown.
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config: BreakerConfig {
                failures_max: config.failures_max.max(1),
                probes_needed: config.probes_needed.max(1),
                ..config
            },
            state: BreakerState::HalfOpen,
            consecutive_failures: 0,
            probe_successes: 0,
            opened_at: None,
            opened_at_unix_ms: None,
            transitions: TransitionCounts::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// The state at `now`, moving OPEN to HALF_OPEN once the open period is over.
    pub fn state(&mut self, now: Instant) -> BreakerState {
        if self.state == BreakerState::Open
            && self
                .opened_at
                .is_some_and(|at| now >= at + self.config.open_for)
        {
            self.transition(BreakerState::HalfOpen);
        }
        self.state
    }

    /// Asks to make one attempt (a send or a connect probe) at `now`: `false` while OPEN.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        self.state(now) != BreakerState::Open
    }

    /// When an OPEN breaker lets the next probe through; `None` otherwise.
    pub fn next_probe_at(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open => self.opened_at.map(|at| at + self.config.open_for),
            _ => None,
        }
    }

    /// Records a successful attempt.
    pub fn on_success(&mut self, now: Instant) {
        self.state(now);
        self.consecutive_failures = 0;
        match self.state {
            BreakerState::Closed => {}
            BreakerState::HalfOpen => {
                self.probe_successes += 1;
                if self.probe_successes >= self.config.probes_needed {
                    self.transition(BreakerState::Closed);
                }
            }
            // A success reported for an attempt made before the breaker opened changes nothing:
            // the open period must run out before traffic resumes.
            BreakerState::Open => {}
        }
    }

    /// Records a failed attempt.
    pub fn on_failure(&mut self, now: Instant) {
        self.state(now);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            BreakerState::Closed if self.consecutive_failures >= self.config.failures_max => {
                self.open(now);
            }
            BreakerState::HalfOpen => self.open(now),
            BreakerState::Closed | BreakerState::Open => {}
        }
    }

    fn open(&mut self, now: Instant) {
        self.opened_at = Some(now);
        self.opened_at_unix_ms = Some(unix_ms_now());
        self.transition(BreakerState::Open);
    }

    fn transition(&mut self, to: BreakerState) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.probe_successes = 0;
        match to {
            BreakerState::Closed => {
                self.transitions.to_closed += 1;
                self.opened_at = None;
                self.opened_at_unix_ms = None;
            }
            BreakerState::Open => self.transitions.to_open += 1,
            BreakerState::HalfOpen => self.transitions.to_half_open += 1,
        }
        tracing::info!(
            target: "adapter::sync::breaker",
            event = "circuit_breaker_transition",
            from = from.as_str(),
            to = to.as_str(),
            consecutive_failures = self.consecutive_failures,
            open_for_ms = ms(self.config.open_for),
            "circuit breaker {} -> {}",
            from.as_str(),
            to.as_str()
        );
    }

    /// The view for `/v1/health` at `now`.
    pub fn snapshot(&mut self, now: Instant) -> BreakerSnapshot {
        let state = self.state(now);
        let next_probe_at = self.next_probe_at();
        BreakerSnapshot {
            state,
            consecutive_failures: self.consecutive_failures,
            opened_at: self.opened_at,
            next_probe_at,
            opened_at_unix_ms: self.opened_at_unix_ms,
            next_probe_at_unix_ms: next_probe_at
                .and(self.opened_at_unix_ms)
                .map(|at| at.saturating_add(ms(self.config.open_for))),
            transitions: self.transitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    const S: Duration = Duration::from_secs(1);

    fn closed_breaker(now: Instant) -> Breaker {
        let mut b = Breaker::new(BreakerConfig::default());
        b.on_success(now);
        b.on_success(now);
        assert_eq!(b.state(now), BreakerState::Closed);
        b
    }

    #[tokio::test(start_paused = true)]
    async fn starts_half_open_and_two_probes_close_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::default());
        assert_eq!(b.snapshot(t0).state, BreakerState::HalfOpen);
        assert!(b.try_acquire(t0));
        b.on_success(t0);
        assert_eq!(b.state(t0), BreakerState::HalfOpen);
        b.on_success(t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert_eq!(b.snapshot(t0).transitions.to_closed, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn five_consecutive_failures_open_and_sixty_seconds_half_open() {
        let t0 = Instant::now();
        let mut b = closed_breaker(t0);
        for i in 1..=4 {
            advance(S).await;
            b.on_failure(Instant::now());
            assert_eq!(b.state(Instant::now()), BreakerState::Closed, "failure {i}");
            assert_eq!(b.snapshot(Instant::now()).consecutive_failures, i);
        }
        advance(S).await;
        let opened = Instant::now();
        b.on_failure(opened);
        let snap = b.snapshot(opened);
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.opened_at, Some(t0 + 5 * S));
        assert_eq!(snap.next_probe_at, Some(t0 + 65 * S));
        assert!(!b.try_acquire(opened));

        // One millisecond before the end of the open period no attempt is allowed.
        advance(60 * S - Duration::from_millis(1)).await;
        assert!(!b.try_acquire(Instant::now()));
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
        advance(Duration::from_millis(1)).await;
        assert_eq!(Instant::now(), t0 + 65 * S);
        assert!(b.try_acquire(Instant::now()));
        assert_eq!(b.state(Instant::now()), BreakerState::HalfOpen);
        assert_eq!(b.snapshot(Instant::now()).next_probe_at, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = closed_breaker(t0);
        for _ in 0..4 {
            b.on_failure(t0);
        }
        b.on_success(t0);
        for _ in 0..4 {
            b.on_failure(t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.on_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn any_failure_in_half_open_reopens_for_another_full_period() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::default());
        b.on_success(t0);
        advance(3 * S).await;
        b.on_failure(Instant::now());
        let snap = b.snapshot(Instant::now());
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.opened_at, Some(t0 + 3 * S));
        assert_eq!(snap.next_probe_at, Some(t0 + 63 * S));
        advance(60 * S).await;
        assert_eq!(b.state(Instant::now()), BreakerState::HalfOpen);
        b.on_success(Instant::now());
        advance(S).await;
        b.on_failure(Instant::now());
        let snap = b.snapshot(Instant::now());
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.next_probe_at, Some(t0 + 124 * S));
        assert_eq!(snap.transitions.to_open, 2);
        assert_eq!(snap.transitions.to_half_open, 1);
        assert_eq!(snap.transitions.to_closed, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn configured_thresholds_apply() {
        let t0 = Instant::now();
        let config = BreakerConfig {
            failures_max: 2,
            open_for: Duration::from_millis(1500),
            probes_needed: 3,
        };
        let mut b = Breaker::new(config);
        for _ in 0..3 {
            b.on_success(t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.on_failure(t0);
        b.on_failure(t0);
        assert_eq!(b.snapshot(t0).next_probe_at, Some(t0 + config.open_for));
        advance(config.open_for).await;
        assert_eq!(b.state(Instant::now()), BreakerState::HalfOpen);
        b.on_success(Instant::now());
        b.on_success(Instant::now());
        assert_eq!(b.state(Instant::now()), BreakerState::HalfOpen);
        b.on_success(Instant::now());
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
    }
}
