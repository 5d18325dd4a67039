//! The adapter's own figures (issue #16 items 2 to 6), measured on real stacks of the built
//! binaries: sales (`sales.rs`), drain and recovery (`drain.rs`), and the peak memory of both.
//!
//! Each repetition starts fresh stacks in its own scratch directories (`procs.rs`), so repetitions
//! share no state; the figures are gathered per repetition and turned into [`Figure`]s at the end.

use super::figure::{Figure, Samples};
use super::procs::{Bins, Peaks};
use super::{Plan, REPS, drain, sales};

/// The seed's design ceiling of the drain: a batch of 100 documents per 10 s poll.
const DESIGN_CEILING_PER_S: f64 = 100.0 / 10.0;

/// Measures items 2 to 6 for the groups `wanted` selects.
pub fn all(
    plan: &Plan,
    wanted: &dyn Fn(&str) -> bool,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let memory = wanted("memory.adapter") || wanted("memory.emulator");
    let run_sales = wanted("sale") || memory;
    // The drains also run for the memory figures and the mock's ceiling; `--only recovery` stops
    // after the restart.
    let run_drains = wanted("drain") || memory || wanted("ceiling.ofd_bare_client");
    let run_drain = run_drains || wanted("recovery");
    if !run_sales && !run_drain {
        return Ok(());
    }
    let bins = Bins::beside_ci()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut samples = Samples::default();
    for rep in 0..REPS {
        let mut peaks = Peaks::default();
        if run_sales {
            peaks = peaks.max(runtime.block_on(sales::rep(&bins, plan, rep, &mut samples))?);
        }
        if run_drain {
            peaks = peaks.max(runtime.block_on(drain::rep(
                &bins,
                plan,
                rep,
                run_drains,
                &mut samples,
            ))?);
            if run_drains {
                samples.push("drain.design_ceiling", "/s", DESIGN_CEILING_PER_S);
            }
        }
        if wanted("recovery") {
            let shop = runtime.block_on(drain::shop_recovery(&bins, plan, rep, &mut samples))?;
            peaks = peaks.max(shop);
        }
        samples.push("memory.adapter_peak_mib", "MiB", peaks.adapter_mib);
        samples.push("memory.emulator_peak_mib", "MiB", peaks.emulator_mib);
    }
    out.extend(samples.into_figures(NOTES));
    Ok(())
}

/// What each figure is and how it is derived, printed under its line.
const NOTES: &[(&str, &str)] = &[
    (
        "sale.unpaced_c1_rate",
        "sales (the seed's lenses sale) accepted per second by the adapter on one emulated register; 600 a run unpaced, 150 paced (smoke: 10); the OFD is offline and the breaker held open, so the line carries only the sales",
    ),
    (
        "sale.journal_commits",
        "journal group commits per sale at concurrency 1, unpaced (adapter_journal_commit_duration_seconds_count in /metrics)",
    ),
    (
        "sale.kkt_round_trips",
        "KKT commands per sale at concurrency 1, unpaced (the emulator's GET /_emu/counters: commands)",
    ),
    (
        "sale.bytes_to_kkt",
        "serial bytes per sale host to device, ENQ/ACK/NAK included (bytes_from_host); sale.bytes_from_kkt the other way",
    ),
    (
        "sale.device_ms",
        "the emulator's command time per sale (last request byte to first answer byte), unpaced, concurrency 1",
    ),
    (
        "sale.adapter_ms",
        "derived: p50 latency at concurrency 1 minus the device time and the line time per sale (means of the run), unpaced: HTTP, journal, and the adapter's side of the link",
    ),
    (
        "sale.paced_wire_ms",
        "line time per sale at 115200 baud as the emulator paces it, both ways: the device's bytes are released, and the host's heard, no sooner than the line could carry them (its counters' wire_time_us)",
    ),
    (
        "sale.paced_adapter_ms",
        "derived: paced p50 at concurrency 1 minus the device and line time per sale",
    ),
    (
        "sale.paced_turnaround_us",
        "a bare host's paced command (status 10: ENQ, NAK, frame, ACK, answer, ACK from one thread straight over the pty, the adapter stopped), minus its bytes' line time and the device's time: what the pty and the emulator cost any host a command (400 commands, smoke: 20)",
    ),
    (
        "sale.wire_limit_115200",
        "115200 / (10 bits x the sale's bytes each way summed): the sales per second a real 115200 8N1 line carries",
    ),
    (
        "drain.unpaced_rate",
        "(pending - 1) documents per second from the mock's first distinct document to its last (GET /_mock/stats polled every 10 ms; the journal's pending 0 checked after, not during: the adapter counts its buffer with a scan of the whole journal); 10,000 pending (smoke: 20); adapter flags --sync-interval-ms 1000 --batch-size-max 500 --backoff-initial-ms 200 --backoff-max-ms 1000 --breaker-open-ms 1000",
    ),
    (
        "drain.paced_rate",
        "as drain.unpaced_rate with the emulator restarted at --baud 115200 on the same FN state; 1,000 documents (smoke: 20), not 10,000: a paced drain of 10,000 takes about 8 minutes, too long for 3 repetitions",
    ),
    (
        "drain.paced_wire_ms",
        "line time per drained document at 115200 baud as the emulator paces it (its counters' wire_time_us); drain.paced_device_ms and drain.paced_ofd_ms as unpaced, over the paced drain",
    ),
    (
        "drain.paced_kkt_exchange_ms",
        "the adapter's own time inside KKT exchanges per document of the paced drain: the line, the device and the turnarounds; drain.paced_commit_ms likewise inside journal commits",
    ),
    (
        "drain.paced_turnaround_us",
        "a bare host's paced command reading the FN's outgoing message as the relay does (FF30, then FF31 blocks of up to 200 bytes; the full ENQ/NAK/frame/ACK/answer/ACK exchange from one thread straight over the pty, the adapter stopped, before the paced drain), minus its bytes' line time and the device's time: what the pty and the emulator cost any host a command of the drain's kind (100 message reads, smoke: 5)",
    ),
    (
        "drain.paced_outside_kkt_ms",
        "derived: 1000 / drain.paced_rate minus drain.paced_kkt_exchange_ms: what a paced document costs while the line is idle (the adapter's commits, the OFD round trip, the pass's own steps)",
    ),
    (
        "drain.paced_adapter_ms",
        "derived: 1000 / drain.paced_rate minus the device, line and OFD time per document",
    ),
    (
        "drain.design_ceiling",
        "the seed's design: a batch of 100 documents per 10 s poll (a constant)",
    ),
    (
        "drain.journal_commits",
        "journal group commits per drained document (unpaced); drain.kkt_round_trips, drain.bytes_* from the emulator's counters likewise",
    ),
    (
        "drain.ofd_ms",
        "ofd-mock's handling time per message (GET /_mock/counters: handling_time_us / messages)",
    ),
    (
        "drain.adapter_ms",
        "derived: 1000 / drain.unpaced_rate minus the device, line and OFD time per document",
    ),
    (
        "sale.kkt_exchange_ms",
        "the adapter's own time inside KKT exchanges per sale at concurrency 1, unpaced (adapter_kkt_command_duration_seconds_sum): the device's command time, the pty and the link's handshakes; sale.commit_ms likewise inside journal commits",
    ),
    (
        "sale.adapter_cpu_ms",
        "CPU time (user + system, /proc/PID/stat) the adapter used per sale at concurrency 1, unpaced: its own work, where sale.adapter_ms is the wall time it adds, waits included; sale.adapter_system_cpu_ms the part of it in the kernel (system calls: fsync, the pty, sockets, waking threads); sale.emulator_cpu_ms likewise the emulator's",
    ),
    (
        "drain.kkt_exchange_ms",
        "the adapter's own time inside KKT exchanges per drained document (adapter_kkt_command_duration_seconds_sum in /metrics): the device's command time, the pty and the link's ENQ/ACK handshakes",
    ),
    (
        "drain.commit_ms",
        "the adapter's time inside journal commits per drained document (adapter_journal_commit_duration_seconds_sum)",
    ),
    (
        "drain.serial_ceiling",
        "1000 / drain.kkt_exchange_ms: the documents per second one relay could drain if nothing but its serial exchanges took time (the FN hands out one document at a time)",
    ),
    (
        "drain.wire_limit_115200",
        "115200 / (10 bits x a drained document's bytes each way summed): documents per second a real 115200 line carries",
    ),
    (
        "ceiling.ofd_bare_client",
        "one real message (the mock's last) sent to ofd-mock again and again, a fresh TCP connection each, one at a time",
    ),
    (
        "recovery.start_to_ready_ms",
        "SIGKILL with 10,000 pending (smoke: 20) and the WAL never checkpointed (--wal-autocheckpoint 1000000), then spawn to GET /v1/ready 200, polled every 2 ms",
    ),
    (
        "recovery.start_to_first_sale_ms",
        "spawn to the first accepted sale; the POS posts from the adapter's start line on, the same key again every 5 ms after a refusal",
    ),
    (
        "recovery.journal_open_ms",
        "the restarted adapter's own \"journal open\" log line: open_ms, SQLite's open with the WAL read back and the schema checked; recovery.journal_check_ms likewise, the whole-journal invariant check (every row read once)",
    ),
    (
        "recovery.sqlite_open_ms",
        "SQLite alone (rusqlite, no adapter) opening a copy of the journal as the SIGKILL left it, to its first read: the WAL read back, what no program on this journal can start faster than",
    ),
    ("recovery.wal_mib", "the WAL's size at the SIGKILL"),
    (
        "recovery.shop_start_to_ready_ms",
        "as recovery.start_to_ready_ms on a fresh stack run as a shop runs it, with the default --wal-autocheckpoint (100 pages): 10,000 sold (smoke: 20), SIGKILL, restart; the WAL holds what the last automatic checkpoint left. recovery.shop_* likewise",
    ),
    (
        "memory.adapter_peak_mib",
        "the highest VmHWM of the adapter processes of one repetition (its sales and drain stacks)",
    ),
    (
        "memory.emulator_peak_mib",
        "the highest VmHWM of the emulator processes of one repetition (its FN holds every document sold)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_become_one_figure_a_name_in_first_measured_order() {
        let mut s = Samples::default();
        for rep in 0..3 {
            s.push("sale.unpaced_c1_rate", "/s", 100.0 + f64::from(rep));
            s.push("memory.adapter_peak_mib", "MiB", 18.0);
        }
        let figures = s.into_figures(NOTES);
        assert_eq!(figures.len(), 2);
        assert_eq!(figures[0].name, "sale.unpaced_c1_rate");
        assert_eq!(figures[0].runs, vec![100.0, 101.0, 102.0]);
        assert!(figures[0].note.as_deref().unwrap().contains("600 a run"));
        assert_eq!(figures[1].median, 18.0);
    }
}
