//! Several registers behind one adapter (issue #16 item 8, issue #17): sales per second with 1, 2,
//! 4 and 8 emulators, paced at 115200 baud and unpaced, and each rate's ratio to N times the
//! one-register rate of the same run.
//!
//! Each register has its own emulator (its own FN, `--fn-seed N`) and `concurrency / N` clients;
//! the OFD is offline and the breaker held open, so the serial lines carry only the sales.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::Plan;
use super::figure::Samples;
use super::load;
use super::procs::{
    AdapterSums, BAUD, Bins, CpuTicks, Proc, cpu_ticks, field, machine_ticks, ticks_per_s,
};

/// Register counts measured.
pub const REGISTERS: [usize; 4] = [1, 2, 4, 8];
/// Clients per register: enough that a register never waits for its next sale.
const CLIENTS_PER_REGISTER_PACED: usize = 2;
/// Unpaced, the 8-register run has 64 clients: the concurrency 64.
const CLIENTS_PER_REGISTER_UNPACED: usize = 8;

/// Mock, `n` emulators and one adapter over them.
struct Shop {
    // Declared first so it is killed first.
    adapter: Proc,
    emulators: Vec<Proc>,
    _mock: Proc,
    url: String,
    kkt_ids: Vec<String>,
}

impl Shop {
    async fn start(
        bins: &Bins,
        dir: &Path,
        n: usize,
        baud: Option<u32>,
        http: &reqwest::Client,
    ) -> anyhow::Result<Shop> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<String>>();
        let (mock, line) = Proc::start(
            dir,
            "ofd-mock",
            &bins.mock,
            &s(&["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"]),
        )?;
        let ofd = field(&line, "ofd")?.to_owned();
        let control = field(&line, "control")?.to_owned();
        let answer = http
            .post(format!("http://{control}/_mock/mode"))
            .json(&serde_json::json!({"mode": "offline"}))
            .send()
            .await?;
        anyhow::ensure!(
            answer.status().is_success(),
            "mock mode: {}",
            answer.status()
        );
        let mut emulators = Vec::with_capacity(n);
        let mut adapter_args = s(&[
            "--listen",
            "127.0.0.1:0",
            "--db",
            &dir.join("data/buffer.db").display().to_string(),
            "--ofd-addr",
            &ofd,
            "--breaker-failures",
            "1",
            "--breaker-open-ms",
            "3600000",
        ]);
        let mut kkt_ids = Vec::with_capacity(n);
        for i in 1..=n {
            let link = dir.join(format!("kkt{i}.tty"));
            let mut args = s(&[
                "--pty-link",
                &link.display().to_string(),
                "--state",
                &dir.join(format!("kkt{i}-fn.json")).display().to_string(),
                "--control",
                "127.0.0.1:0",
                "--fn-seed",
                &i.to_string(),
            ]);
            if let Some(baud) = baud {
                args.extend(s(&["--baud", &baud.to_string()]));
            }
            let (emu, _) = Proc::start(dir, &format!("kkt-emulator-{i}"), &bins.emulator, &args)?;
            emulators.push(emu);
            let id = format!("till-{i}");
            adapter_args.extend(s(&["--kkt", &format!("{id}={}", link.display())]));
            kkt_ids.push(id);
        }
        let (adapter, line) = Proc::start(dir, "adapter", &bins.adapter, &adapter_args)?;
        let url = line
            .strip_prefix("adapter listening on ")
            .with_context(|| format!("unexpected adapter start line {line:?}"))?
            .trim_end_matches('/')
            .to_owned();
        Ok(Shop {
            adapter,
            emulators,
            _mock: mock,
            url,
            kkt_ids,
        })
    }

    /// The adapter's time and commit sums so far, from one `GET /metrics`.
    async fn adapter_sums(&self, http: &reqwest::Client) -> anyhow::Result<AdapterSums> {
        let url = format!("{}/metrics", self.url);
        let text = http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        AdapterSums::parse(&text, &url)
    }
}

/// CPU time used so far, clock ticks: the adapter, the emulators together, this process (the
/// load's clients) and the whole machine (busy, total; summed over its CPUs).
#[derive(Debug, Clone, Copy)]
struct CpuUse {
    adapter: u64,
    emulators: u64,
    client: u64,
    busy: u64,
    total: u64,
}

impl CpuUse {
    fn read(shop: &Shop) -> anyhow::Result<CpuUse> {
        let ticks = |pid: u32| {
            cpu_ticks(pid)
                .map(CpuTicks::total)
                .with_context(|| format!("CPU time of pid {pid}"))
        };
        let mut emulators = 0;
        for emulator in &shop.emulators {
            emulators += ticks(emulator.pid())?;
        }
        let (busy, total) = machine_ticks().context("the machine's CPU time (/proc/stat)")?;
        Ok(CpuUse {
            adapter: ticks(shop.adapter.pid())?,
            emulators,
            client: ticks(std::process::id())?,
            busy,
            total,
        })
    }

    /// Where the CPUs went between `before` and `self`, as figures `registers.<prefix>_...` per
    /// sale of the `count` sold meanwhile.
    fn push_split(&self, before: &CpuUse, prefix: &str, count: usize, out: &mut Samples) {
        let per_sale_ms = |ticks: u64| ticks as f64 / ticks_per_s() * 1e3 / count as f64;
        let adapter = self.adapter - before.adapter;
        let emulators = self.emulators - before.emulators;
        let client = self.client - before.client;
        let busy = self.busy - before.busy;
        let total = self.total - before.total;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        out.push(
            &format!("registers.{prefix}_machine_busy"),
            "x",
            busy as f64 / total.max(1) as f64,
        );
        out.push(
            &format!("registers.{prefix}_adapter_cpu_ms"),
            "ms",
            per_sale_ms(adapter),
        );
        out.push(
            &format!("registers.{prefix}_emulators_cpu_ms"),
            "ms",
            per_sale_ms(emulators),
        );
        out.push(
            &format!("registers.{prefix}_client_cpu_ms"),
            "ms",
            per_sale_ms(client),
        );
        out.push(
            &format!("registers.{prefix}_other_cpu_ms"),
            "ms",
            per_sale_ms(busy.saturating_sub(adapter + emulators + client)),
        );
        // A run shorter than one tick of the adapter's (a smoke run) counts one, so the bound
        // stays finite.
        out.push(
            &format!("registers.{prefix}_adapter_cpu_bound_rate"),
            "/s",
            cpus * 1e3 / per_sale_ms(adapter.max(1)),
        );
    }
}

/// One repetition: for each pace, each register count on a fresh shop.
pub async fn rep(bins: &Bins, plan: &Plan, rep: usize, out: &mut Samples) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    for paced in [true, false] {
        let pace = if paced { "paced" } else { "unpaced" };
        let mut one_register_rate = None;
        for n in REGISTERS {
            let dir = plan.dir.join(format!("registers-{rep}-{pace}-{n}"));
            let shop = Shop::start(bins, &dir, n, paced.then_some(BAUD), &http).await?;
            // One sale per register opens its shift (and trips the breaker on the offline OFD).
            load::sell_on(
                &http,
                &shop.url,
                &shop.kkt_ids,
                n,
                n,
                &format!("w{rep}{pace}{n}"),
            )
            .await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let per_register = if paced { 40 } else { 150 };
            let count = plan.count(per_register * n, 3 * n);
            let clients = n * if paced {
                CLIENTS_PER_REGISTER_PACED
            } else {
                CLIENTS_PER_REGISTER_UNPACED
            };
            let split = !paced && n == REGISTERS[REGISTERS.len() - 1];
            let before = if split {
                Some((CpuUse::read(&shop)?, shop.adapter_sums(&http).await?))
            } else {
                None
            };
            let sales = load::sell_on(
                &http,
                &shop.url,
                &shop.kkt_ids,
                clients,
                count,
                &format!("r{rep}{pace}{n}"),
            )
            .await?;
            if let Some((cpu, sums)) = before {
                let prefix = format!("{pace}_n{n}");
                CpuUse::read(&shop)?.push_split(&cpu, &prefix, count, out);
                let now = shop.adapter_sums(&http).await?;
                let run_s = count as f64 / sales.rate;
                let per_sale_ms = |secs: f64| secs * 1e3 / count as f64;
                for (name, unit, value) in [
                    ("register_sale_ms", "ms", n as f64 * 1e3 / sales.rate),
                    ("kkt_exchange_ms", "ms", per_sale_ms(now.kkt_s - sums.kkt_s)),
                    (
                        "journal_commits",
                        "commits",
                        (now.commits - sums.commits) / count as f64,
                    ),
                    ("writer_busy", "x", (now.commit_s - sums.commit_s) / run_s),
                ] {
                    out.push(&format!("registers.{prefix}_{name}"), unit, value);
                }
            }
            let one = *one_register_rate.get_or_insert(sales.rate);
            out.push(&format!("registers.{pace}_n{n}_rate"), "/s", sales.rate);
            out.push(
                &format!("registers.{pace}_n{n}_scaling"),
                "x",
                sales.rate / (n as f64 * one),
            );
            eprintln!(
                "  registers rep {}: {pace} {n} registers, {clients} clients: {count} sales, {:.1}/s",
                rep + 1,
                sales.rate
            );
            drop(shop);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    Ok(())
}

/// What each figure is, printed under its line.
pub const NOTES: &[(&str, &str)] = &[
    (
        "registers.paced_n1_rate",
        "sales per second over N registers behind one adapter (N = 1, 2, 4, 8; each its own emulator at 115200 baud and its own FN), 2 clients per register, 40 sales per register (smoke: 3); the OFD offline, the breaker held open",
    ),
    (
        "registers.paced_n1_scaling",
        "the N-register rate over N x the one-register rate of the same repetition: 1.0 is perfect scaling (the issue's target: 0.9 at 8)",
    ),
    (
        "registers.unpaced_n1_rate",
        "as registers.paced_n1_rate with the emulators unpaced and 8 clients per register (64 at 8 registers), 150 sales per register: bound by the machine's CPUs, not by lines",
    ),
    (
        "registers.unpaced_n8_machine_busy",
        "during the 8-register unpaced run: the share of all CPUs' time busy (from /proc/stat; idle and I/O wait are not busy); 1.0 means the machine's CPUs were the limit",
    ),
    (
        "registers.unpaced_n8_adapter_cpu_ms",
        "CPU time (user + system, /proc/PID/stat) per sale over that run: the adapter's; below, the 8 emulators' together, this process's (the 64 clients), and the busy time none of them was charged (kernel threads flushing the journal and the FN files, the loopback, ofd-mock)",
    ),
    (
        "registers.unpaced_n8_register_sale_ms",
        "derived: 8 x 1000 / registers.unpaced_n8_rate, the time one register takes for a sale when all 8 are busy (one sale at a time goes to a register)",
    ),
    (
        "registers.unpaced_n8_kkt_exchange_ms",
        "the adapter's time inside KKT exchanges per sale over that run (adapter_kkt_command_duration_seconds_sum, every register's): the device's command time, its FN's fsync among them, the pty and the link",
    ),
    (
        "registers.unpaced_n8_journal_commits",
        "the journal's group commits per sale over that run: below 3 when commits of several registers share one fsync",
    ),
    (
        "registers.unpaced_n8_writer_busy",
        "the share of that run's wall time the one journal writer spent inside commits (adapter_journal_commit_duration_seconds_sum): near 1.0 it is the limit",
    ),
    (
        "registers.unpaced_n8_adapter_cpu_bound_rate",
        "the machine's CPUs over the adapter's CPU time per sale: the most sales per second the adapter could take on this machine if the registers and clients cost nothing",
    ),
];

/// Measures the register figures when `wanted` selects them.
pub fn all(
    plan: &Plan,
    wanted: &dyn Fn(&str) -> bool,
    out: &mut Vec<super::figure::Figure>,
) -> anyhow::Result<()> {
    if !wanted("registers") {
        return Ok(());
    }
    let bins = Bins::beside_ci()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut samples = Samples::default();
    for r in 0..super::REPS {
        runtime.block_on(rep(&bins, plan, r, &mut samples))?;
    }
    out.extend(samples.into_figures(NOTES));
    Ok(())
}
