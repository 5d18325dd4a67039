//! Traffic counters of the OFD port (`GET /_mock/counters`) and the last complete message received
//! (`GET /_mock/last_message_raw`), for benchmarks. Plain atomics beside the session counters of
//! [`crate::state`], so counting never waits for a lock and never changes what the mock records or answers.
//!
//! **Invariant:** a byte is counted as soon as a read returns it or a write has taken it, and an answer's
//! handling time is added before the connection is shut down, so a client that has read the answer to its
//! end sees its exchange counted. The fields are read one by one, not as a snapshot.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// `GET /_mock/counters`: every figure since `since_unix_ms` (start or the last reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrafficView {
    /// Connections accepted on the OFD port (those then refused, dropped or over capacity included).
    pub connections: u64,
    /// Complete messages read (the envelope's lengths satisfied), whatever the mock did with them next.
    pub messages: u64,
    /// Every byte read from OFD connections (partial and invalid messages, blackholed bytes included).
    pub bytes_received: u64,
    /// Every byte written to OFD connections (answers, half answers, garbage).
    pub bytes_sent: u64,
    /// Time from a message fully read to its answer fully written, summed over the complete answers
    /// (`answers_sent` in `/_mock/stats`); a `slow` mode's delay is part of it.
    pub handling_time_us: u64,
    /// When counting started: process start, `POST /_mock/counters/reset` or `POST /_mock/reset`,
    /// Unix milliseconds.
    pub since_unix_ms: u64,
}

/// The live counters and the last message.
#[derive(Debug)]
pub struct Traffic {
    connections: AtomicU64,
    messages: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    handling_time_ns: AtomicU64,
    since_unix_ms: AtomicU64,
    /// The last complete message, byte for byte; the buffer is reused, so keeping it costs one copy.
    last_message: Mutex<Option<Vec<u8>>>,
}

impl Default for Traffic {
    fn default() -> Self {
        Self::new()
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Relaxed is enough: each counter is independent and nothing is published through them.
fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Traffic {
    /// All zero, counting from now, no message yet.
    pub fn new() -> Self {
        Self {
            connections: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            handling_time_ns: AtomicU64::new(0),
            since_unix_ms: AtomicU64::new(unix_ms_now()),
            last_message: Mutex::new(None),
        }
    }

    /// The current figures.
    pub fn view(&self) -> TrafficView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TrafficView {
            connections: get(&self.connections),
            messages: get(&self.messages),
            bytes_received: get(&self.bytes_received),
            bytes_sent: get(&self.bytes_sent),
            handling_time_us: get(&self.handling_time_ns) / 1_000,
            since_unix_ms: get(&self.since_unix_ms),
        }
    }

    /// Zeroes every counter and restarts `since_unix_ms`; returns the zeroed figures. The last message is
    /// kept (it is not a counter). Traffic after a counter was zeroed counts in the new period.
    pub fn reset(&self) -> TrafficView {
        for c in [
            &self.connections,
            &self.messages,
            &self.bytes_received,
            &self.bytes_sent,
            &self.handling_time_ns,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        let since_unix_ms = unix_ms_now();
        self.since_unix_ms.store(since_unix_ms, Ordering::Relaxed);
        TrafficView {
            since_unix_ms,
            ..TrafficView::default()
        }
    }

    /// Forgets the last message (`POST /_mock/reset` forgets what was received).
    pub fn forget_last_message(&self) {
        *self.last_message() = None;
    }

    /// A copy of the last complete message received, if any.
    pub fn last_message_raw(&self) -> Option<Vec<u8>> {
        self.last_message().clone()
    }

    fn last_message(&self) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
        // A copy into a buffer cannot be left half done in a way that matters, so poison is harmless.
        self.last_message
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One connection accepted.
    pub(crate) fn connection(&self) {
        add(&self.connections, 1);
    }

    /// `n` bytes read from a connection.
    pub(crate) fn received(&self, n: usize) {
        add(&self.bytes_received, n as u64);
    }

    /// `n` bytes taken by a write.
    pub(crate) fn sent(&self, n: usize) {
        add(&self.bytes_sent, n as u64);
    }

    /// A complete message was read.
    pub(crate) fn message(&self, bytes: &[u8]) {
        add(&self.messages, 1);
        let mut last = self.last_message();
        let buf = last.get_or_insert_with(Vec::new);
        buf.clear();
        buf.extend_from_slice(bytes);
    }

    /// One answer fully written, `d` after its message was fully read.
    pub(crate) fn handled(&self, d: Duration) {
        add(
            &self.handling_time_ns,
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_zeroes_the_counters_and_keeps_the_last_message() {
        let t = Traffic::new();
        t.connection();
        t.received(10);
        t.message(&[1, 2, 3]);
        t.message(&[4]);
        t.sent(7);
        t.handled(Duration::from_micros(3));
        assert_eq!(
            (t.view().messages, t.view().handling_time_us),
            (2, 3),
            "{:?}",
            t.view()
        );
        let zero = t.reset();
        assert_eq!(t.view(), zero);
        assert_eq!(zero.connections + zero.bytes_received + zero.bytes_sent, 0);
        assert_eq!(t.last_message_raw(), Some(vec![4]));
        t.forget_last_message();
        assert_eq!(t.last_message_raw(), None);
    }
}
