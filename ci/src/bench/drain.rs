//! Backlog drain and recovery (issue #16 items 2, 4 and 5) on one real stack per repetition:
//! sell N with the OFD offline, SIGKILL the adapter and time its restart, bring the OFD online and
//! time the drain to `pending 0`; then the same drain with the emulator paced at 115200 baud, and
//! the mock's bare-client ceiling with one real message.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::Plan;
use super::bare;
use super::figure::Samples;
use super::load;
use super::procs::{BAUD, Bins, Peaks, Stack};
use super::split::{Split, push_split};

/// Clients selling the backlog: enough to keep the one register busy.
const BACKLOG_CONCURRENCY: usize = 8;
/// How often the journal's `pending 0` is polled once the mock has every document. Not while the
/// drain runs: the adapter counts its buffer with a scan of the whole journal.
const PENDING_POLL: Duration = Duration::from_millis(50);
/// How often the mock is asked how many documents arrived (an in-memory count), for the drain's
/// first and last document alike.
const MOCK_POLL: Duration = Duration::from_millis(10);
/// The adapter's settings for a fast drain, as a shop would set them: a pass every second, 500
/// documents a pass, and at most a second of backoff or open breaker after the OFD comes back.
const DRAIN_FLAGS: [(&str, &str); 5] = [
    ("--sync-interval-ms", "1000"),
    ("--batch-size-max", "500"),
    ("--backoff-initial-ms", "200"),
    ("--backoff-max-ms", "1000"),
    ("--breaker-open-ms", "1000"),
];

/// The adapter's default `--wal-autocheckpoint` (pages), restored for the drains.
const DEFAULT_WAL_AUTOCHECKPOINT: &str = "100";

/// One repetition: a fresh stack, N sold offline, a crash and restart, then (with `drains`) the
/// unpaced drain, the bare client, and Np sold offline and drained with the emulator paced.
pub async fn rep(
    bins: &Bins,
    plan: &Plan,
    rep: usize,
    drains: bool,
    out: &mut Samples,
) -> anyhow::Result<Peaks> {
    let n = plan.count(10_000, 20);
    let n_paced = plan.count(1_000, 20);
    let mut args: Vec<(&str, String)> = DRAIN_FLAGS
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    // Room for the backlog and the sales after it; an un-checkpointed WAL for the crash.
    args.push(("--capacity", (2 * n + 100).to_string()));
    args.push(("--wal-autocheckpoint", "1000000".to_owned()));
    let dir = plan.dir.join(format!("drain-{rep}"));
    let mut stack = Stack::start(bins, &dir, None, &args).await?;
    let r = rep + 1;
    eprintln!("  drain rep {r}: selling {n} with the OFD offline");
    let sold = Instant::now();
    load::sell(
        stack.http(),
        &stack.adapter_url,
        BACKLOG_CONCURRENCY,
        n,
        &format!("d{rep}"),
    )
    .await?;
    eprintln!(
        "  drain rep {r}: sold in {:.1} s",
        sold.elapsed().as_secs_f64()
    );
    recover(&mut stack, &dir, rep, "recovery.", out).await?;
    if !drains {
        let peaks = Peaks {
            adapter_mib: stack.adapter_peak_mib(),
            emulator_mib: stack.emulator_peak_mib(),
        };
        drop(stack);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(peaks);
    }
    // The drain runs as in a shop: the adapter restarted cleanly (its journal checkpointed on
    // close) with the default checkpoint interval, not on the un-checkpointed WAL the recovery
    // figure needs, whose lookups slow every read of the drain.
    stack.stop_adapter(Duration::from_secs(60));
    stack.set_adapter_flag("--wal-autocheckpoint", DEFAULT_WAL_AUTOCHECKPOINT);
    stack.start_adapter()?;
    stack.wait_ready(Duration::from_secs(60)).await?;
    drain(&stack, rep, "unpaced", out).await?;
    bare_client(&stack, plan, rep, out).await?;
    stack.mock_mode("offline").await?;
    load::sell(
        stack.http(),
        &stack.adapter_url,
        BACKLOG_CONCURRENCY,
        n_paced,
        &format!("p{rep}"),
    )
    .await?;
    stack.restart_emulator(Some(BAUD)).await?;
    // The adapter stops, so the bare host is alone on the paced line; the drain runs after it.
    stack.stop_adapter(Duration::from_secs(60));
    out.push("drain.paced_turnaround_us", "us", {
        // The drain's long answers, where the sale's figure has status commands.
        let reads = plan.count(100, 5);
        bare::turnaround(&stack, move |link| bare::message_reads(link, reads)).await?
    });
    stack.start_adapter()?;
    stack.wait_ready(Duration::from_secs(60)).await?;
    drain(&stack, rep, "paced", out).await?;
    let peaks = Peaks {
        adapter_mib: stack.adapter_peak_mib(),
        emulator_mib: stack.emulator_peak_mib(),
    };
    // The journal and its WAL take a gigabyte after a full drain; a failed run keeps its files.
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(peaks)
}

/// The shop's recovery: a fresh stack with the adapter's default checkpoint interval, N sold
/// offline, SIGKILL, restart (`recovery.shop_*`): the WAL holds what the last automatic checkpoint
/// left, as after a crash in a shop.
pub async fn shop_recovery(
    bins: &Bins,
    plan: &Plan,
    rep: usize,
    out: &mut Samples,
) -> anyhow::Result<Peaks> {
    let n = plan.count(10_000, 20);
    let args = [("--capacity", (n + 100).to_string())];
    let dir = plan.dir.join(format!("shop-recovery-{rep}"));
    let mut stack = Stack::start(bins, &dir, None, &args).await?;
    eprintln!(
        "  shop recovery rep {}: selling {n} with the OFD offline",
        rep + 1
    );
    load::sell(
        stack.http(),
        &stack.adapter_url,
        BACKLOG_CONCURRENCY,
        n,
        &format!("s{rep}"),
    )
    .await?;
    recover(&mut stack, &dir, rep, "recovery.shop_", out).await?;
    let peaks = Peaks {
        adapter_mib: stack.adapter_peak_mib(),
        emulator_mib: stack.emulator_peak_mib(),
    };
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(peaks)
}

/// SIGKILL with the backlog pending, restart, and time spawn to `/v1/ready` 200 and spawn to the
/// first accepted sale (posted from the start line on, the same key again after each refusal, as a
/// POS retries); figures named `<prefix>*` (`recovery.`, `recovery.shop_`). Before the restart, SQLite alone opens a copy of the
/// journal as the crash left it (`<prefix>sqlite_open_ms`): what reading the WAL back costs.
async fn recover(
    stack: &mut Stack,
    dir: &std::path::Path,
    rep: usize,
    prefix: &str,
    out: &mut Samples,
) -> anyhow::Result<()> {
    let pending = stack.pending().await?;
    stack.kill_adapter();
    let db = dir.join("data/buffer.db");
    let wal_mib = std::fs::metadata(dir.join("data/buffer.db-wal"))
        .map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0));
    let sqlite_ms = sqlite_open_ms(&db, &dir.join("sqlite-open"))?;
    let started = stack.start_adapter()?;
    let limit = Duration::from_secs(60);
    let ready = async {
        stack.wait_ready(limit).await?;
        Ok::<_, anyhow::Error>(started.elapsed())
    };
    let sale = async {
        load::sell_until_accepted(stack.http(), &stack.adapter_url, &format!("r{rep}"), limit)
            .await?;
        Ok::<_, anyhow::Error>(started.elapsed())
    };
    let (ready, sale) = tokio::join!(ready, sale);
    let (ready_ms, sale_ms) = (ready?.as_secs_f64() * 1e3, sale?.as_secs_f64() * 1e3);
    out.push(&format!("{prefix}start_to_ready_ms"), "ms", ready_ms);
    out.push(&format!("{prefix}start_to_first_sale_ms"), "ms", sale_ms);
    // Where the start's time went: the journal's own "journal open" line says how long its open
    // (SQLite reading the WAL back, the schema) and the whole-journal invariant check took.
    let log = stack.adapter_log()?;
    let open_ms = log_field(&log, "journal open", "open_ms")?;
    let check_ms = log_field(&log, "journal open", "check_ms")?;
    out.push(&format!("{prefix}journal_open_ms"), "ms", open_ms);
    out.push(&format!("{prefix}journal_check_ms"), "ms", check_ms);
    out.push(&format!("{prefix}sqlite_open_ms"), "ms", sqlite_ms);
    out.push(&format!("{prefix}wal_mib"), "MiB", wal_mib);
    eprintln!(
        "  {prefix}* rep {}: {pending} pending, WAL {wal_mib:.1} MiB: ready after {ready_ms:.0} ms (journal open {open_ms:.0} ms, check {check_ms:.0} ms; SQLite alone opens it in {sqlite_ms:.0} ms), first sale after {sale_ms:.0} ms",
        rep + 1
    );
    Ok(())
}

/// Copies the journal (database, WAL, shared-memory index) as a crash left it into `scratch`, opens
/// the copy with SQLite alone and times the open and first read (the WAL is read back then). The
/// copy is removed afterwards; the original is not touched.
fn sqlite_open_ms(db: &std::path::Path, scratch: &std::path::Path) -> anyhow::Result<f64> {
    std::fs::create_dir_all(scratch).with_context(|| format!("create {}", scratch.display()))?;
    let copy = scratch.join("buffer.db");
    for suffix in ["", "-wal", "-shm"] {
        let from = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        let to = std::path::PathBuf::from(format!("{}{suffix}", copy.display()));
        if from.exists() {
            std::fs::copy(&from, &to).with_context(|| format!("copy {}", from.display()))?;
        }
    }
    let started = Instant::now();
    let conn = rusqlite::Connection::open(&copy)?;
    let _: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    drop(conn);
    std::fs::remove_dir_all(scratch).with_context(|| format!("remove {}", scratch.display()))?;
    Ok(ms)
}

/// The number `field=N` on the first log line that says `message`.
fn log_field(log: &str, message: &str, field: &str) -> anyhow::Result<f64> {
    let line = log
        .lines()
        .find(|l| l.contains(message))
        .with_context(|| format!("no {message:?} line in the adapter's log"))?;
    let key = format!("{field}=");
    let value = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&key))
        .with_context(|| format!("no {field} on the line {line:?}"))?;
    value
        .parse()
        .with_context(|| format!("{field}={value} is not a number"))
}

/// Brings the OFD online and times the drain from the mock's first document to its last, then
/// waits for `pending 0`; counters are read around it all for the per-document split.
async fn drain(stack: &Stack, rep: usize, pace: &str, out: &mut Samples) -> anyhow::Result<()> {
    let pending = stack.pending().await?;
    anyhow::ensure!(pending > 1, "{pending} pending: too few to time a drain");
    let received = stack.mock_documents_received().await?;
    stack.reset_emu_counters().await?;
    stack.reset_mock_counters().await?;
    let before = stack.adapter_sums().await?;
    stack.mock_mode("online").await?;
    let switched = Instant::now();
    // Half the seed's design rate at least, and a minute for the backoff and breaker to let go.
    let limit = Duration::from_secs(60 + pending / 5);
    let poll_mock = async |done: &dyn Fn(u64) -> bool, what: &str| {
        loop {
            if done(stack.mock_documents_received().await?) {
                return anyhow::Ok(Instant::now());
            }
            if switched.elapsed() > limit {
                bail!("{pace} drain: {what} within {limit:?}");
            }
            tokio::time::sleep(MOCK_POLL).await;
        }
    };
    let first = poll_mock(&|n| n > received, "no document reached the OFD").await?;
    // Timed from the first document's arrival at the OFD to the last's: pending - 1 documents,
    // each its whole relay step (the FN's exchanges, the journal, the OFD).
    let last = poll_mock(
        &|n| n >= received + pending,
        "not every pending document reached the OFD",
    )
    .await?;
    // The journal's side of the last document: concluded, nothing left pending.
    loop {
        let left = stack.pending().await?;
        if left == 0 {
            break;
        }
        if switched.elapsed() > limit {
            bail!("{pace} drain: {left} of {pending} still pending after {limit:?}");
        }
        tokio::time::sleep(PENDING_POLL).await;
    }
    let seconds = (last - first).as_secs_f64();
    let rate = (pending - 1) as f64 / seconds.max(1e-6);
    eprintln!(
        "  drain rep {}: {pace}: {pending} documents, the first to the last at the OFD in {seconds:.1} s ({rate:.1}/s), the first after {:.2} s",
        rep + 1,
        (first - switched).as_secs_f64()
    );
    out.push(&format!("drain.{pace}_rate"), "/s", rate);
    let emu = stack.emu_counters().await?;
    let after = stack.adapter_sums().await?;
    let commits = after.commits - before.commits;
    let split = Split::new(&emu, commits, pending as f64);
    let mock = stack.mock_counters().await?;
    let ofd_ms = mock.handling_time_us as f64 / 1e3 / mock.messages.max(1) as f64;
    let adapter_ms = 1e3 / rate - split.device_ms - split.wire_ms - ofd_ms;
    // The adapter's own clock: its time inside KKT exchanges (the device's time, the pty and the
    // link's handshakes) and inside journal commits, per document.
    let per_doc = |s: f64| s * 1e3 / pending as f64;
    let exchange_ms = per_doc(after.kkt_s - before.kkt_s);
    let commit_ms = per_doc(after.commit_s - before.commit_s);
    if pace == "paced" {
        // Paced, the exchanges hold the line time too: what they cost beyond the line and the
        // device is the turnarounds; what the document costs outside them is the rest of 1 / rate.
        for (name, value) in [
            ("device_ms", split.device_ms),
            ("wire_ms", split.wire_ms),
            ("ofd_ms", ofd_ms),
            ("adapter_ms", adapter_ms),
            ("kkt_exchange_ms", exchange_ms),
            ("commit_ms", commit_ms),
            ("outside_kkt_ms", 1e3 / rate - exchange_ms),
        ] {
            out.push(&format!("drain.paced_{name}"), "ms", value);
        }
        return Ok(());
    }
    push_split(
        out,
        "drain",
        &split,
        &[
            ("ofd_ms", "ms", ofd_ms),
            ("adapter_ms", "ms", adapter_ms),
            ("kkt_exchange_ms", "ms", exchange_ms),
            ("commit_ms", "ms", commit_ms),
            // What one relay could drain if nothing but its serial exchanges took time: the FN
            // hands out one document at a time, so these are one after the other.
            ("serial_ceiling", "/s", 1e3 / exchange_ms.max(1e-3)),
        ],
    );
    Ok(())
}

/// The mock's ceiling: one real message sent again and again over fresh connections.
async fn bare_client(
    stack: &Stack,
    plan: &Plan,
    rep: usize,
    out: &mut Samples,
) -> anyhow::Result<()> {
    let message = stack.mock_last_message().await?;
    let count = plan.count(2_000, 20);
    let rate = load::ofd_bare_client(&stack.ofd_addr, &message, count).await?;
    eprintln!(
        "  ofd bare client rep {}: {count} exchanges of {} bytes, {rate:.0}/s",
        rep + 1,
        message.len()
    );
    out.push("ceiling.ofd_bare_client", "/s", rate);
    Ok(())
}
