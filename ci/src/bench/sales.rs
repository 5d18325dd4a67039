//! Sale acceptance (issue #16 items 2 and 3): sales posted to the real adapter at concurrency 1, 8
//! and 64 with the emulator unpaced and paced at 115200 baud, and at concurrency 1 where the time
//! of a sale goes (journal commits, KKT round trips, bytes each way, device and line time).
//!
//! The OFD is offline and the adapter's breaker opens at the first failure and stays open for an
//! hour, so the serial line carries only the sales, not their delivery.

use std::time::Duration;

use super::Plan;
use super::bare;
use super::figure::Samples;
use super::load;
use super::procs::{AdapterSums, BAUD, Bins, CpuTicks, Peaks, Stack, ticks_per_s};
use super::split::{Split, push_split};

/// Sales before the measured runs: the first opens the shift and trips the breaker.
const WARMUP_SALES: usize = 3;

/// Counter readings at the start of a measured run.
struct Before {
    sums: AdapterSums,
    /// CPU time of the adapter and the emulator so far.
    cpu_ticks: [CpuTicks; 2],
}

/// One repetition: a fresh stack, unpaced then paced, concurrency 1, 8, 64.
pub async fn rep(bins: &Bins, plan: &Plan, rep: usize, out: &mut Samples) -> anyhow::Result<Peaks> {
    let args = [
        ("--breaker-failures", "1".to_owned()),
        ("--breaker-open-ms", "3600000".to_owned()),
    ];
    let dir = plan.dir.join(format!("sales-{rep}"));
    let mut stack = Stack::start(bins, &dir, None, &args).await?;
    for paced in [false, true] {
        let pace = if paced { "paced" } else { "unpaced" };
        if paced {
            stack.restart_emulator(Some(BAUD)).await?;
        }
        load::sell(
            stack.http(),
            &stack.adapter_url,
            1,
            WARMUP_SALES,
            &format!("w{rep}{pace}"),
        )
        .await?;
        // The relay pass a sale wakes (and that fails on the offline OFD) ends before counting starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for concurrency in [1usize, 8, 64] {
            let count = plan.count(if paced { 150 } else { 600 }, 10);
            let before = if concurrency == 1 {
                stack.reset_emu_counters().await?;
                Some(Before {
                    sums: stack.adapter_sums().await?,
                    cpu_ticks: stack.cpu_ticks(),
                })
            } else {
                None
            };
            let sales = load::sell(
                stack.http(),
                &stack.adapter_url,
                concurrency,
                count,
                &format!("s{rep}{pace}{concurrency}"),
            )
            .await?;
            let name = format!("sale.{pace}_c{concurrency}");
            let p50 = sales.quantile_ms(0.5);
            out.push(&format!("{name}_rate"), "/s", sales.rate);
            out.push(&format!("{name}_p50"), "ms", p50);
            out.push(&format!("{name}_p99"), "ms", sales.quantile_ms(0.99));
            out.push(&format!("{name}_max"), "ms", sales.quantile_ms(1.0));
            eprintln!(
                "  sale rep {}: {pace} c{concurrency}: {count} sales, {:.1}/s, p50 {p50:.2} ms",
                rep + 1,
                sales.rate
            );
            if let Some(before) = before {
                split(&stack, paced, count as f64, p50, &before, out).await?;
            }
        }
    }
    // The adapter stops, so the bare host is alone on the paced line.
    stack.stop_adapter(Duration::from_secs(10));
    out.push("sale.paced_turnaround_us", "us", {
        let count = plan.count(400, 20);
        bare::turnaround(&stack, move |link| bare::status_commands(link, count)).await?
    });
    let peaks = Peaks {
        adapter_mib: stack.adapter_peak_mib(),
        emulator_mib: stack.emulator_peak_mib(),
    };
    // A finished repetition's files go at once; a failed run keeps them for its logs.
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(peaks)
}

/// Where the time of a sale at concurrency 1 goes, from the counter deltas over `sales` sales.
async fn split(
    stack: &Stack,
    paced: bool,
    sales: f64,
    p50_ms: f64,
    before: &Before,
    out: &mut Samples,
) -> anyhow::Result<()> {
    let emu = stack.emu_counters().await?;
    let sums = stack.adapter_sums().await?;
    let commits = sums.commits - before.sums.commits;
    let split = Split::new(&emu, commits, sales);
    let adapter_ms = p50_ms - split.device_ms - split.wire_ms;
    if paced {
        out.push("sale.paced_device_ms", "ms", split.device_ms);
        out.push("sale.paced_wire_ms", "ms", split.wire_ms);
        out.push("sale.paced_adapter_ms", "ms", adapter_ms);
        return Ok(());
    }
    eprintln!(
        "    per sale: {:.2} commits, {:.1} commands, {:.0} B to and {:.0} B from the KKT, device {:.2} ms",
        split.commits, split.commands, split.to_kkt, split.from_kkt, split.device_ms
    );
    // The adapter's own clock: inside KKT exchanges and inside journal commits, per sale.
    let per_sale = |secs: f64| secs * 1e3 / sales;
    let [adapter_now, emulator_now] = stack.cpu_ticks();
    let [adapter_then, emulator_then] = before.cpu_ticks;
    let cpu_ms = |now: u64, then: u64| per_sale(now.saturating_sub(then) as f64 / ticks_per_s());
    push_split(
        out,
        "sale",
        &split,
        &[
            ("adapter_ms", "ms", adapter_ms),
            (
                "kkt_exchange_ms",
                "ms",
                per_sale(sums.kkt_s - before.sums.kkt_s),
            ),
            (
                "commit_ms",
                "ms",
                per_sale(sums.commit_s - before.sums.commit_s),
            ),
            (
                "adapter_cpu_ms",
                "ms",
                cpu_ms(adapter_now.total(), adapter_then.total()),
            ),
            (
                "adapter_system_cpu_ms",
                "ms",
                cpu_ms(adapter_now.system, adapter_then.system),
            ),
            (
                "emulator_cpu_ms",
                "ms",
                cpu_ms(emulator_now.total(), emulator_then.total()),
            ),
        ],
    );
    Ok(())
}
