//! Hybrid logical clock: stamps every journal write with a totally ordered, never-repeating value.
//!
//! A stamp is physical milliseconds since the Unix epoch plus a 16-bit logical counter, packed
//! into one `i64` (`physical_ms << 16 | logical`) so SQLite can index and compare it as an
//! INTEGER. The clock never goes backwards: when the wall clock jumps back, or several stamps
//! fall in one millisecond, the logical counter advances instead; when the counter is full the
//! physical part is carried forward by one millisecond. The journal persists a high-water mark
//! at least as high as every stamp it commits, in the same transaction as the first write it
//! stamps above the mark before (it sets the mark a little ahead of the clock, so most commits
//! leave it alone), and a restarted clock starts from it with [`HlcClock::new`], so stamps stay
//! monotonic across restarts too.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the packed stamp that hold the logical counter.
const LOGICAL_BITS: u32 = 16;
/// Largest logical counter value before the physical part is carried forward.
const LOGICAL_MAX: u16 = u16::MAX;
/// Largest physical millisecond value that still packs into a non-negative `i64`.
const PHYSICAL_MS_MAX: u64 = (i64::MAX as u64) >> LOGICAL_BITS;

/// One hybrid logical clock reading; ordered first by physical time, then by the counter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HlcStamp(i64);

impl HlcStamp {
    /// The smallest stamp; a fresh journal starts its high-water mark here.
    pub const ZERO: HlcStamp = HlcStamp(0);

    /// Builds a stamp from its parts; the physical part is clamped to the packable range.
    pub fn new(physical_ms: u64, logical: u16) -> HlcStamp {
        let physical_ms = physical_ms.min(PHYSICAL_MS_MAX);
        HlcStamp(((physical_ms << LOGICAL_BITS) | u64::from(logical)) as i64)
    }

    /// Reads a stamp back from its packed form; negative values (never written) become zero.
    pub fn from_i64(packed: i64) -> HlcStamp {
        HlcStamp(packed.max(0))
    }

    /// The packed form stored in the journal's `hlc` column.
    pub fn as_i64(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch (the physical part).
    pub fn physical_ms(self) -> u64 {
        (self.0 as u64) >> LOGICAL_BITS
    }

    /// The logical counter within one physical millisecond.
    pub fn logical(self) -> u16 {
        (self.0 as u64 & u64::from(LOGICAL_MAX)) as u16
    }

    /// The next stamp after this one, carrying into the physical part when the counter is full.
    fn successor(self) -> HlcStamp {
        match self.logical() {
            LOGICAL_MAX => HlcStamp::new(self.physical_ms() + 1, 0),
            n => HlcStamp::new(self.physical_ms(), n + 1),
        }
    }
}

impl fmt::Debug for HlcStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HlcStamp({}ms+{})", self.physical_ms(), self.logical())
    }
}

/// Where the clock reads physical time; tests inject a manual source.
pub trait ClockSource: Send {
    /// Milliseconds since the Unix epoch; may jump backwards.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl ClockSource for SystemClock {
    fn now_ms(&self) -> u64 {
        // A wall clock before 1970 reads as 0; the logical counter still keeps stamps ordered.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

impl<F: Fn() -> u64 + Send> ClockSource for F {
    fn now_ms(&self) -> u64 {
        self()
    }
}

/// A wall clock moved by hand, forwards or backwards: for deterministic ("paused time") tests.
/// Clones share one reading.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A manual clock reading `ms`.
    pub fn at(ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    /// Sets the reading.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the reading forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl ClockSource for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A hybrid logical clock over a [`ClockSource`]; every [`HlcClock::now`] is strictly greater
/// than every stamp it returned or observed before.
pub struct HlcClock {
    source: Box<dyn ClockSource>,
    last: HlcStamp,
}

impl fmt::Debug for HlcClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HlcClock")
            .field("last", &self.last)
            .finish()
    }
}

impl HlcClock {
    /// Starts a clock whose stamps will all exceed `high_water` (the persisted mark).
    pub fn new(source: Box<dyn ClockSource>, high_water: HlcStamp) -> HlcClock {
        HlcClock {
            source,
            last: high_water,
        }
    }

    /// A new stamp, strictly greater than every earlier one.
    pub fn now(&mut self) -> HlcStamp {
        let wall = HlcStamp::new(self.source.now_ms(), 0);
        self.last = if wall > self.last {
            wall
        } else {
            self.last.successor()
        };
        self.last
    }

    /// Folds in a stamp written elsewhere (another process on the same journal), so later
    /// stamps exceed it too.
    pub fn observe(&mut self, seen: HlcStamp) {
        self.last = self.last.max(seen);
    }

    /// The greatest stamp issued or observed: the value to persist as the high-water mark.
    pub fn high_water(&self) -> HlcStamp {
        self.last
    }

    /// Reads the physical source without issuing a stamp (for lease expiry, for example).
    pub fn wall_ms(&self) -> u64 {
        self.source.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn clock_at(ms: u64, high_water: HlcStamp) -> (ManualClock, HlcClock) {
        let manual = ManualClock::at(ms);
        let clock = HlcClock::new(Box::new(manual.clone()), high_water);
        (manual, clock)
    }

    #[test]
    fn packing_round_trips_and_orders_by_physical_then_logical() {
        let s = HlcStamp::new(1_700_000_000_123, 7);
        assert_eq!(s.physical_ms(), 1_700_000_000_123);
        assert_eq!(s.logical(), 7);
        assert_eq!(HlcStamp::from_i64(s.as_i64()), s);
        assert!(HlcStamp::new(5, u16::MAX) < HlcStamp::new(6, 0));
        assert_eq!(HlcStamp::from_i64(-5), HlcStamp::ZERO);
        assert_eq!(HlcStamp::new(u64::MAX, 0).physical_ms(), PHYSICAL_MS_MAX);
    }

    #[test]
    fn follows_the_wall_clock_when_it_moves_forward() {
        let (wall, mut clock) = clock_at(1_000, HlcStamp::ZERO);
        assert_eq!(clock.now(), HlcStamp::new(1_000, 0));
        wall.set(1_005);
        assert_eq!(clock.now(), HlcStamp::new(1_005, 0));
    }

    #[test]
    fn repeated_stamps_in_one_millisecond_count_up() {
        let (_wall, mut clock) = clock_at(2_000, HlcStamp::ZERO);
        let stamps: Vec<_> = (0..5).map(|_| clock.now()).collect();
        let expected: Vec<_> = (0..5).map(|n| HlcStamp::new(2_000, n)).collect();
        assert_eq!(stamps, expected);
    }

    #[test]
    fn wall_clock_jumping_back_never_moves_stamps_back() {
        let (wall, mut clock) = clock_at(10_000, HlcStamp::ZERO);
        assert_eq!(clock.now(), HlcStamp::new(10_000, 0));
        wall.set(4_000);
        assert_eq!(clock.now(), HlcStamp::new(10_000, 1));
        assert_eq!(clock.now(), HlcStamp::new(10_000, 2));
        // Once the wall clock overtakes the high-water mark again, it is followed again.
        wall.set(10_001);
        assert_eq!(clock.now(), HlcStamp::new(10_001, 0));
    }

    #[test]
    fn full_logical_counter_carries_into_the_physical_part() {
        let (_wall, mut clock) = clock_at(50, HlcStamp::new(100, u16::MAX - 1));
        assert_eq!(clock.now(), HlcStamp::new(100, u16::MAX));
        assert_eq!(clock.now(), HlcStamp::new(101, 0));
    }

    #[test]
    fn restart_from_persisted_high_water_stays_monotonic() {
        let (_wall, mut first) = clock_at(9_000_000, HlcStamp::ZERO);
        let before_restart = (0..3).map(|_| first.now()).last().unwrap_or_default();
        let persisted = first.high_water();
        assert_eq!(persisted, before_restart);
        // The machine comes back with its wall clock an hour behind.
        let (_wall, mut second) = clock_at(9_000_000 - 3_600_000, persisted);
        let after_restart = second.now();
        assert!(after_restart > before_restart);
        assert_eq!(after_restart, HlcStamp::new(9_000_000, 3));
    }

    #[test]
    fn observing_a_foreign_stamp_pushes_later_stamps_past_it() {
        let (_wall, mut clock) = clock_at(1_000, HlcStamp::ZERO);
        clock.observe(HlcStamp::new(5_000, 9));
        assert_eq!(clock.now(), HlcStamp::new(5_000, 10));
        clock.observe(HlcStamp::new(1, 0));
        assert_eq!(clock.high_water(), HlcStamp::new(5_000, 10));
    }

    #[test]
    fn closures_work_as_clock_sources() {
        let mut clock = HlcClock::new(Box::new(|| 77_u64), HlcStamp::ZERO);
        assert_eq!(clock.now(), HlcStamp::new(77, 0));
        assert_eq!(clock.wall_ms(), 77);
    }
}
