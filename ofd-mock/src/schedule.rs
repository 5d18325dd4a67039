//! Seeded, reproducible randomness: the generator behind every choice and the flapping schedule.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Most entries a rendered flapping timeline holds.
pub const TIMELINE_LEN_MAX: usize = 10_000;

/// What a seeded stream is drawn for: each purpose has its own key, so two kinds of choice never
/// share numbers (the jitter of cycle 3 says nothing about the fate of connection 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The fate of accepted connection `n` (the probability draw, then any garbage bytes).
    Connection = 1,
    /// The jitter of flapping cycle `k`.
    FlapCycle = 2,
}

/// The generator of choice `index` for `purpose` under `seed`: ChaCha8 keyed by `(seed, purpose)`,
/// on stream `index`. ChaCha8's stream is portable and documented as stable, so a seed means the
/// same choices on every machine and across dependency upgrades; reaching `index` directly keeps
/// each choice a pure function of `(seed, index)`, computed in constant time.
pub fn stream(seed: u64, purpose: Purpose, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8] = purpose as u8;
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(index);
    rng
}

/// A uniform number in [0, 1) from the next 53 bits of `rng`.
pub fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Parameters of a flapping schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flap {
    pub online_ms: u64,
    pub offline_ms: u64,
    pub jitter_ms: u64,
    pub seed: u64,
}

impl Flap {
    /// Whether the schedule is online `elapsed_ms` after the mode was set, and when (in elapsed ms) that changes.
    ///
    /// Each cycle lasts `online_ms + offline_ms` and starts online; its online part is moved by a seeded offset
    /// in `-jitter_ms..=jitter_ms`. This is a pure function of `(seed, elapsed_ms)`: the same seed gives the
    /// same timeline, computed in constant time however long the run.
    pub fn phase(&self, elapsed_ms: u64) -> (bool, u64) {
        let cycle = self.online_ms + self.offline_ms;
        let k = elapsed_ms / cycle;
        let start = k * cycle;
        let boundary = start + self.online_len(k);
        if elapsed_ms < boundary {
            (true, boundary)
        } else {
            (false, start + cycle)
        }
    }

    fn online_len(&self, cycle_index: u64) -> u64 {
        if self.jitter_ms == 0 {
            return self.online_ms;
        }
        let span = 2 * self.jitter_ms + 1;
        let offset = stream(self.seed, Purpose::FlapCycle, cycle_index).next_u64() % span;
        // Validation keeps jitter below both phases, so the result stays inside (0, cycle).
        self.online_ms + offset - self.jitter_ms
    }

    /// Every state change from 0 up to `until_ms`, as `(at_ms, online)`, starting with `(0, true)`.
    pub fn timeline(&self, until_ms: u64) -> Vec<(u64, bool)> {
        let mut out = vec![(0, true)];
        let mut t = 0;
        while out.len() < TIMELINE_LEN_MAX {
            let (_, next) = self.phase(t);
            if next > until_ms {
                break;
            }
            out.push((next, self.phase(next).0));
            t = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_a_pure_function_of_seed_purpose_and_index() {
        let first = |seed, purpose, index| stream(seed, purpose, index).next_u64();
        assert_eq!(
            first(7, Purpose::Connection, 3),
            first(7, Purpose::Connection, 3)
        );
        assert_ne!(
            first(7, Purpose::Connection, 3),
            first(8, Purpose::Connection, 3)
        );
        assert_ne!(
            first(7, Purpose::Connection, 3),
            first(7, Purpose::Connection, 4)
        );
        assert_ne!(
            first(7, Purpose::Connection, 3),
            first(7, Purpose::FlapCycle, 3)
        );
        let mut rng = stream(7, Purpose::Connection, 0);
        assert!(
            (0..1000)
                .map(|_| unit(&mut rng))
                .all(|u| (0.0..1.0).contains(&u))
        );
    }

    #[test]
    fn flapping_timeline_is_a_pure_function_of_the_seed() {
        let f = Flap {
            online_ms: 100,
            offline_ms: 50,
            jitter_ms: 20,
            seed: 7,
        };
        let a = f.timeline(10_000);
        assert_eq!(a, f.timeline(10_000));
        assert_eq!(a[0], (0, true));
        // States alternate, and each online phase lasts 80..=120 ms.
        for w in a.windows(2) {
            assert_ne!(w[0].1, w[1].1);
            if w[0].1 {
                assert!((80..=120).contains(&(w[1].0 - w[0].0)), "{w:?}");
            }
        }
        // Another seed moves the switch points.
        assert_ne!(a, Flap { seed: 8, ..f }.timeline(10_000));
        // Without jitter the schedule is exact.
        let plain = Flap {
            online_ms: 100,
            offline_ms: 50,
            jitter_ms: 0,
            seed: 1,
        }
        .timeline(300);
        assert_eq!(
            plain,
            vec![
                (0, true),
                (100, false),
                (150, true),
                (250, false),
                (300, true)
            ]
        );
    }
}
