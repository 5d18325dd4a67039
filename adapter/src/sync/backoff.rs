//! Exponential backoff with full jitter (AWS "full jitter"): the n-th consecutive failure waits a
//! uniformly random time in `0..=min(max, initial * 2^(n-1))`.
//!
//! Full jitter spreads the retries of many adapters that lost the OFD at the same moment, so they
//! do not come back in lockstep. The random source is a `ChaCha8Rng` (the workspace's one seeded
//! generator), seeded from the thread generator in service and injectable, seeded, for tests.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

/// The backoff state of the relay: how many failures in a row and when the next attempt is due.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    next_at: Option<Instant>,
    jitter: Option<ChaCha8Rng>,
}

impl Backoff {
    /// A backoff with full jitter from a fresh seed (drawn from the thread generator, which the
    /// operating system seeds).
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff::with_rng(initial, max, ChaCha8Rng::from_rng(&mut rand::rng()))
    }

    /// A backoff with full jitter from the given generator (tests pass a seeded one).
    pub fn with_rng(initial: Duration, max: Duration, rng: ChaCha8Rng) -> Backoff {
        Backoff {
            initial: initial.max(Duration::from_millis(1)),
            max: max.max(initial),
            failures: 0,
            next_at: None,
            jitter: Some(rng),
        }
    }

    /// A backoff that always waits the full ceiling (no jitter): the deterministic schedule.
    pub fn without_jitter(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            jitter: None,
            ..Backoff::with_rng(initial, max, ChaCha8Rng::seed_from_u64(0))
        }
    }

    /// The upper bound of the wait after `failures` consecutive failures (1-based):
    /// `initial`, `2 * initial`, `4 * initial` ... capped at `max`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << exp)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// Records a failure at `now` and returns when the next attempt is due.
    pub fn on_failure(&mut self, now: Instant) -> Instant {
        self.failures = self.failures.saturating_add(1);
        let ceiling = self.ceiling(self.failures);
        let delay = match self.jitter.as_mut() {
            Some(rng) => {
                let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
                Duration::from_millis(rng.random_range(0..=ceiling_ms))
            }
            None => ceiling,
        };
        let at = now + delay;
        self.next_at = Some(at);
        at
    }

    /// Records a success: the next failure starts the schedule again.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.next_at = None;
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When the next attempt is due; `None` when not backing off.
    pub fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    /// True when an attempt may be made at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.next_at.is_none_or(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::sleep_until;

    const S: Duration = Duration::from_secs(1);

    fn schedule_secs() -> [u64; 9] {
        [1, 2, 4, 8, 16, 32, 60, 60, 60]
    }

    #[tokio::test(start_paused = true)]
    async fn without_jitter_the_schedule_is_exactly_1_2_4_up_to_60_seconds() {
        let t0 = Instant::now();
        let mut b = Backoff::without_jitter(S, 60 * S);
        let mut expected = t0;
        for secs in schedule_secs() {
            let at = b.on_failure(Instant::now());
            expected += Duration::from_secs(secs);
            assert_eq!(at, expected);
            assert!(!b.ready(Instant::now()));
            sleep_until(at).await;
            assert_eq!(Instant::now(), expected);
            assert!(b.ready(Instant::now()));
        }
        // 1+2+4+8+16+32+60+60+60 seconds after the start.
        assert_eq!(Instant::now(), t0 + 243 * S);
    }

    #[tokio::test(start_paused = true)]
    async fn full_jitter_stays_within_the_ceiling_and_is_reproducible_by_seed() {
        let mut a = Backoff::with_rng(S, 60 * S, ChaCha8Rng::seed_from_u64(42));
        let mut b = Backoff::with_rng(S, 60 * S, ChaCha8Rng::seed_from_u64(42));
        let mut waits = Vec::new();
        for (i, secs) in schedule_secs().into_iter().enumerate() {
            let now = Instant::now();
            let at_a = a.on_failure(now);
            let at_b = b.on_failure(now);
            assert_eq!(at_a, at_b, "same seed, same schedule (failure {})", i + 1);
            assert!(at_a >= now && at_a <= now + Duration::from_secs(secs));
            assert_eq!(a.ceiling(a.failures()), Duration::from_secs(secs));
            waits.push(at_a - now);
            sleep_until(at_a).await;
            assert_eq!(Instant::now(), at_a);
        }
        // Full jitter actually jitters: the waits are not all equal to their ceilings.
        let ceilings: Vec<_> = schedule_secs()
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect();
        assert_ne!(waits, ceilings);
        // Another seed draws another schedule.
        let mut c = Backoff::with_rng(S, 60 * S, ChaCha8Rng::seed_from_u64(43));
        let now = Instant::now();
        let other: Vec<_> = schedule_secs()
            .iter()
            .map(|_| c.on_failure(now) - now)
            .collect();
        assert_ne!(waits, other);
    }

    #[tokio::test(start_paused = true)]
    async fn reset_starts_again_at_the_initial_delay() {
        let mut b = Backoff::without_jitter(S, 60 * S);
        for _ in 0..10 {
            b.on_failure(Instant::now());
        }
        assert_eq!(b.ceiling(b.failures()), 60 * S);
        b.reset();
        assert!(b.ready(Instant::now()));
        let now = Instant::now();
        assert_eq!(b.on_failure(now), now + S);
    }

    #[test]
    fn the_ceiling_never_overflows() {
        let b = Backoff::without_jitter(S, 60 * S);
        assert_eq!(b.ceiling(u32::MAX), 60 * S);
        assert_eq!(b.ceiling(0), S);
    }
}
