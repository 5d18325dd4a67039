//! Load and arithmetic for the stack figures: POS clients posting sales and timing each answer, a
//! bare OFD client, and the pure helpers (percentiles, the serial-line limit, one Prometheus sample).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use ofd_proto::envelope::{SESSION_HEADER_LEN, SessionHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ceilings::SALE_BODY;

/// Bits one byte takes on an 8N1 serial line: start, eight data bits, stop.
pub const BITS_PER_BYTE: f64 = 10.0;
/// One bare OFD exchange (connect, send, read the answer) may take this long.
const OFD_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The answers of one load run.
#[derive(Debug)]
pub struct Sales {
    /// Accepted sales per second over the whole run.
    pub rate: f64,
    /// Each sale's latency, milliseconds, sorted.
    pub latencies_ms: Vec<f64>,
}

impl Sales {
    /// The `q` quantile (0..=1) of the latencies, milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        quantile(&self.latencies_ms, q)
    }
}

/// Posts `count` sales (the ceilings' sale body, idempotency keys `<key_prefix>-<i>`) to the adapter
/// from `concurrency` clients, each waiting for its answer before its next sale. Any answer but 2xx
/// fails the run.
pub async fn sell(
    http: &reqwest::Client,
    adapter_url: &str,
    concurrency: usize,
    count: usize,
    key_prefix: &str,
) -> anyhow::Result<Sales> {
    let bodies = [SALE_BODY.to_owned()];
    sell_bodies(http, adapter_url, &bodies, concurrency, count, key_prefix).await
}

/// Posts `count` sales like [`sell`], client `j` selling on register `kkt_ids[j % len]`, so every
/// register has `concurrency / len` sales in progress at once.
pub async fn sell_on(
    http: &reqwest::Client,
    adapter_url: &str,
    kkt_ids: &[String],
    concurrency: usize,
    count: usize,
    key_prefix: &str,
) -> anyhow::Result<Sales> {
    anyhow::ensure!(!kkt_ids.is_empty(), "no register to sell on");
    let bodies: Vec<String> = kkt_ids.iter().map(|id| sale_body_on(id)).collect();
    sell_bodies(http, adapter_url, &bodies, concurrency, count, key_prefix).await
}

/// The load loop: client `j` posts `bodies[j % len]` until `count` sales are answered in all.
async fn sell_bodies(
    http: &reqwest::Client,
    adapter_url: &str,
    bodies: &[String],
    concurrency: usize,
    count: usize,
    key_prefix: &str,
) -> anyhow::Result<Sales> {
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{adapter_url}/v1/kkt/receipt");
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency.max(1))
        .map(|j| {
            let (http, next, url) = (http.clone(), next.clone(), url.clone());
            let key_prefix = key_prefix.to_owned();
            let body = bodies[j % bodies.len()].clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok::<_, anyhow::Error>(latencies);
                    }
                    let t = Instant::now();
                    post_body(&http, &url, &format!("{key_prefix}-{i}"), &body).await?;
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
            })
        })
        .collect();
    let mut latencies_ms = Vec::with_capacity(count);
    for c in clients {
        latencies_ms.extend(c.await.context("sale client panicked")??);
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);
    Ok(Sales { rate, latencies_ms })
}

/// The sale body naming register `kkt_id`.
fn sale_body_on(kkt_id: &str) -> String {
    let mut body: serde_json::Value =
        serde_json::from_str(SALE_BODY).expect("the sale body is JSON");
    body["kkt_id"] = serde_json::Value::String(kkt_id.to_owned());
    body.to_string()
}

/// One sale; an answer other than 2xx is an error with the adapter's body.
async fn post_sale(http: &reqwest::Client, url: &str, key: &str) -> anyhow::Result<()> {
    post_body(http, url, key, SALE_BODY).await
}

async fn post_body(http: &reqwest::Client, url: &str, key: &str, body: &str) -> anyhow::Result<()> {
    let answer = http
        .post(url)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send()
        .await
        .with_context(|| format!("sale {key}"))?;
    let status = answer.status();
    if !status.is_success() {
        let text = answer.text().await.unwrap_or_default();
        anyhow::bail!("sale {key}: {status} {}", &text[..text.len().min(300)]);
    }
    Ok(())
}

/// Posts one sale as a POS does after a failure: the same idempotency key again every 5 ms until it
/// is accepted, at most `limit`.
pub async fn sell_until_accepted(
    http: &reqwest::Client,
    adapter_url: &str,
    key: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let url = format!("{adapter_url}/v1/kkt/receipt");
    let end = Instant::now() + limit;
    loop {
        let last = post_sale(http, &url, key).await;
        match last {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= end => {
                return Err(e.context(format!("not accepted within {limit:?}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// `count` exchanges of `message` with the OFD at `addr`, one fresh connection each, one after the
/// other as the adapter sends; returns exchanges per second.
pub async fn ofd_bare_client(addr: &str, message: &[u8], count: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    for i in 0..count {
        tokio::time::timeout(OFD_EXCHANGE_TIMEOUT, ofd_exchange(addr, message))
            .await
            .with_context(|| format!("OFD exchange {i} timed out"))?
            .with_context(|| format!("OFD exchange {i}"))?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Connects, sends `message`, reads the whole answer (its session header says how long it is).
async fn ofd_exchange(addr: &str, message: &[u8]) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream.write_all(message).await?;
    let mut head = [0u8; SESSION_HEADER_LEN];
    stream.read_exact(&mut head).await?;
    let session = SessionHeader::decode(&head).context("the answer's session header")?;
    let mut rest = vec![0u8; usize::from(session.container_len)];
    stream.read_exact(&mut rest).await?;
    Ok(())
}

/// The nearest-rank `q` quantile (0..=1) of sorted values; NaN when there are none.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Exchanges per second an 8N1 line at `baud` carries when each exchange moves `bytes` bytes (both
/// directions summed: a half-duplex exchange, the host waits for each answer).
pub fn wire_limit(baud: u32, bytes: f64) -> f64 {
    f64::from(baud) / (BITS_PER_BYTE * bytes)
}

/// The sum of every sample of `name` (any labels) in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let bare = key.split_once('{').map_or(key, |(k, _)| k);
        if bare == name
            && let Ok(v) = value.parse::<f64>()
        {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// Bytes from hex digits (surrounding whitespace ignored).
pub fn unhex(digits: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(digits.trim()).with_context(|| format!("not hex: {digits:.40}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_wire_limit_is_the_baud_over_ten_bits_a_byte() {
        // 288 bytes each way summed at 115200 baud: 11,520 bytes/s, 40 exchanges/s.
        assert_eq!(wire_limit(115_200, 288.0), 40.0);
        assert_eq!(wire_limit(9_600, 96.0), 10.0);
    }

    #[test]
    fn a_metric_sums_its_samples_and_ignores_comments_and_longer_names() {
        let text =
            "# TYPE a_count counter\na_count 3\na_count_total 100\nb{x=\"1\"} 2\nb{x=\"2\"} 5.5\n";
        assert_eq!(metric(text, "a_count"), Some(3.0));
        assert_eq!(metric(text, "b"), Some(7.5));
        assert_eq!(metric(text, "c"), None);
    }

    #[test]
    fn hex_round_trips_and_odd_input_is_refused() {
        assert_eq!(unhex("00ff2A").unwrap(), vec![0, 255, 42]);
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").is_err());
    }
}
