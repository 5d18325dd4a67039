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
use super::procs::{BAUD, Bins, Proc, field};

/// Register counts measured.
pub const REGISTERS: [usize; 4] = [1, 2, 4, 8];
/// Clients per register: enough that a register never waits for its next sale.
const CLIENTS_PER_REGISTER_PACED: usize = 2;
/// Unpaced, the 8-register run has 64 clients: the concurrency 64.
const CLIENTS_PER_REGISTER_UNPACED: usize = 8;

/// Mock, `n` emulators and one adapter over them.
struct Shop {
    // Declared first so it is killed first; held for its guard.
    _adapter: Proc,
    _emulators: Vec<Proc>,
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
            _adapter: adapter,
            _emulators: emulators,
            _mock: mock,
            url,
            kkt_ids,
        })
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
            let sales = load::sell_on(
                &http,
                &shop.url,
                &shop.kkt_ids,
                clients,
                count,
                &format!("r{rep}{pace}{n}"),
            )
            .await?;
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
