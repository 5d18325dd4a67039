//! Seeded, reproducible randomness: the mixing function behind every choice and the flapping schedule.

/// Most entries a rendered flapping timeline holds.
pub const TIMELINE_LEN_MAX: usize = 10_000;

/// SplitMix64: a tiny, stable mixing function, so seeded choices never change with a dependency upgrade.
pub fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed
        ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0x632B_E59B_D9B3_E50B);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from `(seed, n)`.
pub fn unit(seed: u64, n: u64) -> f64 {
    (mix(seed, n) >> 11) as f64 / (1u64 << 53) as f64
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
        let offset = mix(self.seed, cycle_index) % span;
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
