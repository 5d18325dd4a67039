//! The real binaries as a benchmark drives them: `ofd-mock`, `kkt-emulator` and `adapter` started on
//! loopback in a scratch directory, with their control APIs and the counters the figures are made of.
//!
//! Boundary: every process is started here and killed by its [`Proc`] guard (SIGKILL by pid) on every
//! exit path, panics included; every wait for a start line, a state or an answer has a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

/// How long a process may take to print its start line.
const START_LINE_WAIT: Duration = Duration::from_secs(30);
/// Every HTTP call of a benchmark is bounded.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The paced emulator's line speed, the seed's `--kkt-baud` default.
pub const BAUD: u32 = 115_200;

/// The three binaries, beside the running `ci` executable (the same profile).
#[derive(Debug, Clone)]
pub struct Bins {
    pub adapter: PathBuf,
    pub emulator: PathBuf,
    pub mock: PathBuf,
}

impl Bins {
    /// Finds the binaries beside `ci`; builds them with cargo first when one is missing (and says so).
    pub fn beside_ci() -> anyhow::Result<Bins> {
        let dir = ci_dir()?;
        let bins = Bins {
            adapter: dir.join("adapter"),
            emulator: dir.join("kkt-emulator"),
            mock: dir.join("ofd-mock"),
        };
        build_missing(
            &dir,
            &["adapter", "kkt-emulator", "ofd-mock"],
            &["adapter", "ofd-mock", "kkt-emulator"],
        )?;
        Ok(bins)
    }
}

/// The directory of the running `ci` executable (a cargo profile directory).
pub fn ci_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("where is the ci executable")?;
    Ok(exe
        .parent()
        .context("the ci executable has no directory")?
        .to_path_buf())
}

/// Builds `packages` with cargo, in `dir`'s profile, when one of the binaries `names` is missing from
/// `dir` (and says so).
pub fn build_missing(dir: &Path, names: &[&str], packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<String> = names
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let release = dir.file_name().is_some_and(|n| n == "release");
    let mut args = vec!["build"];
    if release {
        args.push("--release");
    }
    for p in packages {
        args.extend(["-p", p]);
    }
    args.push("--bins");
    eprintln!(
        "bench: {} missing; building first: cargo {}",
        missing.join(", "),
        args.join(" ")
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(&args)
        .current_dir(workspace_root())
        .status()
        .context("run cargo build")?;
    anyhow::ensure!(status.success(), "cargo {} failed", args.join(" "));
    Ok(())
}

/// The workspace root, where `scenarios/` lies.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A started process; dropping it SIGKILLs and reaps it.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Its highest VmHWM seen, KiB.
    peak_kib: u64,
}

impl Proc {
    /// Starts `bin` with stdout and stderr in `<dir>/<name>.stdout.log|.stderr.log` and waits for
    /// its first stdout line, which every one of the three prints once it listens. It blocks the
    /// calling thread for those milliseconds: stacks start between loads, never during one.
    pub fn start(
        dir: &Path,
        name: &str,
        bin: &Path,
        args: &[String],
    ) -> anyhow::Result<(Proc, String)> {
        let out_path = dir.join(format!("{name}.stdout.log"));
        let err_path = dir.join(format!("{name}.stderr.log"));
        let out = std::fs::File::create(&out_path)
            .with_context(|| format!("create {}", out_path.display()))?;
        let err = std::fs::File::create(&err_path)
            .with_context(|| format!("create {}", err_path.display()))?;
        let child = Command::new(bin)
            .args(args)
            // Warnings, and the journal's own lines (its open says how long the start's parts
            // took, which the recovery figure reads).
            .env("RUST_LOG", "warn,adapter::journal=info")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut proc = Proc { child, peak_kib: 0 };
        let end = Instant::now() + START_LINE_WAIT;
        loop {
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            if let Some((line, _)) = text.split_once('\n') {
                return Ok((proc, line.trim().to_owned()));
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                bail!(
                    "{name} exited ({status}) before its start line; stderr: {}",
                    tail(&err_path)
                );
            }
            if Instant::now() >= end {
                bail!(
                    "{name} printed no start line within {START_LINE_WAIT:?}; stderr: {}",
                    tail(&err_path)
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The highest resident set size the process has had (VmHWM), KiB; remembered across reads.
    pub fn peak_kib(&mut self) -> u64 {
        if let Some(kib) = vm_hwm_kib(self.child.id()) {
            self.peak_kib = self.peak_kib.max(kib);
        }
        self.peak_kib
    }

    /// SIGTERM, then wait up to `limit` for a clean exit (SIGKILL after it); returns the peak
    /// RSS read just before.
    pub fn stop(mut self, limit: Duration) -> u64 {
        let peak = self.peak_kib();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return peak;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        peak
    }

    /// SIGKILL and reap; returns the peak RSS read just before.
    pub fn kill(mut self) -> u64 {
        let peak = self.peak_kib();
        let _ = self.child.kill();
        let _ = self.child.wait();
        peak
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time a process has used, in clock ticks ([`ticks_per_s`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

impl CpuTicks {
    pub fn total(self) -> u64 {
        self.user + self.system
    }
}

/// CPU time `pid` has used (`/proc/PID/stat` fields 14 and 15: every thread of the process, not
/// its children).
pub fn cpu_ticks(pid: u32) -> Option<CpuTicks> {
    stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// [`cpu_ticks`] of one `/proc/PID/stat` text.
fn stat_cpu_ticks(stat: &str) -> Option<CpuTicks> {
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(CpuTicks { user, system })
}

/// The machine's CPU time since boot from `/proc/stat`, in clock ticks summed over all CPUs:
/// `(busy, total)`, busy being all but idle and waiting for I/O.
pub fn machine_ticks() -> Option<(u64, u64)> {
    machine_stat_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// [`machine_ticks`] of one `/proc/stat` text.
fn machine_stat_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle, total))
}

/// Clock ticks per second, the unit of [`cpu_ticks`] and [`machine_ticks`].
pub fn ticks_per_s() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// What the benchmarks split the adapter's time by, from its `/metrics` histograms.
#[derive(Debug, Clone, Copy)]
pub struct AdapterSums {
    /// Seconds inside KKT exchanges: every command of every register, the device's time included.
    pub kkt_s: f64,
    /// Seconds inside journal commits.
    pub commit_s: f64,
    /// Journal group commits.
    pub commits: f64,
}

impl AdapterSums {
    /// From the adapter's `/metrics` text, fetched from `url`.
    pub fn parse(text: &str, url: &str) -> anyhow::Result<AdapterSums> {
        let sum = |name: &str| {
            super::load::metric(text, name).with_context(|| format!("no {name} in {url}"))
        };
        Ok(AdapterSums {
            kkt_s: sum("adapter_kkt_command_duration_seconds_sum")?,
            commit_s: sum("adapter_journal_commit_duration_seconds_sum")?,
            commits: sum("adapter_journal_commit_duration_seconds_count")?,
        })
    }
}

/// VmHWM of `pid` from /proc, KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The last lines of a log, for an error message.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text[text.len().saturating_sub(1500)..].trim().to_owned()
}

/// `key=value` out of a start line such as `ofd-mock listening ofd=127.0.0.1:1 control=127.0.0.1:2`.
pub(super) fn field<'a>(line: &'a str, key: &str) -> anyhow::Result<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("no {key}= in start line {line:?}"))
}

/// The emulator's `GET /_emu/counters`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct EmuCounters {
    pub bytes_from_host: u64,
    pub bytes_to_host: u64,
    pub commands: u64,
    pub command_time_us: u64,
    pub wire_time_us: u64,
}

/// The mock's `GET /_mock/counters`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct MockCounters {
    pub messages: u64,
    pub handling_time_us: u64,
}

/// Emulator, mock and adapter of one benchmark, each in its own files under `dir`.
pub struct Stack {
    // Declared first so it is killed first: an adapter outliving its device only logs errors.
    adapter: Option<Proc>,
    emulator: Option<Proc>,
    /// Held for its guard: the mock is driven through its control API only.
    _mock: Proc,
    dir: PathBuf,
    bins: Bins,
    adapter_args: Vec<String>,
    pub adapter_url: String,
    emu_url: String,
    mock_url: String,
    /// The mock's OFD address (it keeps the port while offline).
    pub ofd_addr: String,
    http: reqwest::Client,
    /// Starts so far, to name each one's log files.
    starts: usize,
    /// The latest adapter's stderr log.
    adapter_log: PathBuf,
    /// Peak RSS of the adapter and emulator processes already gone, KiB.
    adapter_peak_gone_kib: u64,
    emulator_peak_gone_kib: u64,
}

impl Stack {
    /// Starts the mock (in `offline` mode), the emulator (paced at `baud` when given) and the adapter
    /// with `adapter_args` added to the loopback addresses and paths.
    pub async fn start(
        bins: &Bins,
        dir: &Path,
        baud: Option<u32>,
        adapter_args: &[(&str, String)],
    ) -> anyhow::Result<Stack> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let (mock, line) = Proc::start(
            dir,
            "ofd-mock",
            &bins.mock,
            &strings(&["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"]),
        )?;
        let ofd_addr = field(&line, "ofd")?.to_owned();
        let mock_url = format!("http://{}", field(&line, "control")?);
        let mut adapter_base = strings(&[
            "--listen",
            "127.0.0.1:0",
            "--db",
            &dir.join("data/buffer.db").display().to_string(),
            "--kkt-port",
            &dir.join("kkt.tty").display().to_string(),
            "--ofd-addr",
            &ofd_addr,
        ]);
        for (k, v) in adapter_args {
            adapter_base.push((*k).to_owned());
            adapter_base.push(v.clone());
        }
        let mut s = Stack {
            adapter: None,
            emulator: None,
            _mock: mock,
            dir: dir.to_owned(),
            bins: bins.clone(),
            adapter_args: adapter_base,
            adapter_url: String::new(),
            emu_url: String::new(),
            mock_url,
            ofd_addr,
            http: reqwest::Client::builder().timeout(HTTP_TIMEOUT).build()?,
            starts: 0,
            adapter_log: PathBuf::new(),
            adapter_peak_gone_kib: 0,
            emulator_peak_gone_kib: 0,
        };
        s.mock_mode("offline").await?;
        s.start_emulator(baud)?;
        s.start_adapter()?;
        Ok(s)
    }

    fn next_name(&mut self, what: &str) -> String {
        self.starts += 1;
        format!("{what}-{}", self.starts)
    }

    /// The emulator's pty link, where the adapter's `--kkt-port` points.
    pub fn pty_link(&self) -> PathBuf {
        self.dir.join("kkt.tty")
    }

    /// Starts the emulator on the stack's FN state file and pty link, paced at `baud` when given.
    pub fn start_emulator(&mut self, baud: Option<u32>) -> anyhow::Result<()> {
        anyhow::ensure!(self.emulator.is_none(), "the emulator already runs");
        let mut args = strings(&[
            "--pty-link",
            &self.dir.join("kkt.tty").display().to_string(),
            "--state",
            &self.dir.join("kkt-fn.json").display().to_string(),
            "--control",
            "127.0.0.1:0",
        ]);
        if let Some(baud) = baud {
            args.extend(strings(&["--baud", &baud.to_string()]));
        }
        let name = self.next_name("kkt-emulator");
        let (proc, line) = Proc::start(&self.dir, &name, &self.bins.emulator, &args)?;
        self.emu_url = format!("http://{}", field(&line, "control")?);
        self.emulator = Some(proc);
        Ok(())
    }

    /// Stops the emulator (SIGKILL: its FN state is durable before each answer) and starts it again
    /// on the same state file, paced at `baud` when given; then waits until the adapter has talked to
    /// the new one (`/v1/ready` would still show the old link's last answer).
    pub async fn restart_emulator(&mut self, baud: Option<u32>) -> anyhow::Result<()> {
        if let Some(p) = self.emulator.take() {
            self.emulator_peak_gone_kib = self.emulator_peak_gone_kib.max(p.kill());
        }
        self.start_emulator(baud)?;
        let limit = Duration::from_secs(30);
        let end = Instant::now() + limit;
        let url = format!("{}/v1/kkt/status", self.adapter_url);
        loop {
            if matches!(self.http.get(&url).send().await, Ok(a) if a.status().is_success()) {
                return Ok(());
            }
            if Instant::now() >= end {
                bail!("the adapter did not reach the restarted emulator within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the adapter and returns the instant just before it was spawned.
    pub fn start_adapter(&mut self) -> anyhow::Result<Instant> {
        anyhow::ensure!(self.adapter.is_none(), "the adapter already runs");
        let name = self.next_name("adapter");
        self.adapter_log = self.dir.join(format!("{name}.stderr.log"));
        let started = Instant::now();
        let (proc, line) = Proc::start(&self.dir, &name, &self.bins.adapter, &self.adapter_args)?;
        self.adapter_url = line
            .strip_prefix("adapter listening on ")
            .with_context(|| format!("unexpected adapter start line {line:?}"))?
            .trim_end_matches('/')
            .to_owned();
        self.adapter = Some(proc);
        Ok(started)
    }

    /// SIGKILLs the adapter (no clean shutdown, no final checkpoint).
    pub fn kill_adapter(&mut self) {
        if let Some(p) = self.adapter.take() {
            self.adapter_peak_gone_kib = self.adapter_peak_gone_kib.max(p.kill());
        }
    }

    /// Stops the adapter as a service manager does (SIGTERM: it finishes, checkpoints and closes
    /// the journal), at most `limit`.
    pub fn stop_adapter(&mut self, limit: Duration) {
        if let Some(p) = self.adapter.take() {
            self.adapter_peak_gone_kib = self.adapter_peak_gone_kib.max(p.stop(limit));
        }
    }

    /// The latest adapter's log (its stderr) so far.
    pub fn adapter_log(&self) -> anyhow::Result<String> {
        std::fs::read_to_string(&self.adapter_log)
            .with_context(|| format!("read {}", self.adapter_log.display()))
    }

    /// Replaces (or adds) one of the adapter's flags for its next start.
    pub fn set_adapter_flag(&mut self, flag: &str, value: &str) {
        match self.adapter_args.iter().position(|a| a == flag) {
            Some(i) if i + 1 < self.adapter_args.len() => {
                self.adapter_args[i + 1] = value.to_owned()
            }
            _ => self
                .adapter_args
                .extend([flag.to_owned(), value.to_owned()]),
        }
    }

    /// Peak RSS of every adapter process of this stack so far, MiB.
    pub fn adapter_peak_mib(&mut self) -> f64 {
        let live = self.adapter.as_mut().map_or(0, Proc::peak_kib);
        live.max(self.adapter_peak_gone_kib) as f64 / 1024.0
    }

    /// CPU time the running adapter and emulator have used so far (0 for one not running).
    pub fn cpu_ticks(&self) -> [CpuTicks; 2] {
        let ticks = |p: &Option<Proc>| {
            p.as_ref()
                .and_then(|p| cpu_ticks(p.pid()))
                .unwrap_or_default()
        };
        [ticks(&self.adapter), ticks(&self.emulator)]
    }

    /// Peak RSS of every emulator process of this stack so far, MiB.
    pub fn emulator_peak_mib(&mut self) -> f64 {
        let live = self.emulator.as_mut().map_or(0, Proc::peak_kib);
        live.max(self.emulator_peak_gone_kib) as f64 / 1024.0
    }

    /// The client every call of this stack uses.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// One control call: `method url`, with `body` as JSON when given. A non-2xx answer is an
    /// error naming the call; the answer's body comes back as text.
    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> anyhow::Result<String> {
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = answer.status();
        let text = answer.text().await?;
        anyhow::ensure!(status.is_success(), "{method} {url}: {status} {text}");
        Ok(text)
    }

    /// `GET url`, its answer decoded as JSON.
    async fn get(&self, url: String) -> anyhow::Result<Value> {
        let text = self.call(Method::GET, &url, None).await?;
        serde_json::from_str(&text).with_context(|| format!("GET {url}: not JSON: {text}"))
    }

    /// `POST url` with a JSON body, for its effect: the answer is not read.
    async fn post(&self, url: String, body: Value) -> anyhow::Result<()> {
        self.call(Method::POST, &url, Some(body)).await.map(|_| ())
    }

    /// Sets the mock's mode (`online`, `offline`); the call answers once the mode is in effect.
    pub async fn mock_mode(&self, mode: &str) -> anyhow::Result<()> {
        self.post(
            format!("{}/_mock/mode", self.mock_url),
            json!({"mode": mode}),
        )
        .await
    }

    /// Documents the mock has received (stored, duplicates included).
    /// Distinct documents the mock has received (a resent document counts once).
    pub async fn mock_documents_received(&self) -> anyhow::Result<u64> {
        let stats = self.get(format!("{}/_mock/stats", self.mock_url)).await?;
        stats["unique"]
            .as_u64()
            .context("/_mock/stats has no unique")
    }

    pub async fn mock_counters(&self) -> anyhow::Result<MockCounters> {
        let v = self
            .get(format!("{}/_mock/counters", self.mock_url))
            .await?;
        serde_json::from_value(v).context("GET /_mock/counters: unexpected shape")
    }

    pub async fn reset_mock_counters(&self) -> anyhow::Result<()> {
        self.post(
            format!("{}/_mock/counters/reset", self.mock_url),
            Value::Null,
        )
        .await
    }

    /// One message the mock received, as sent (`GET /_mock/last_message_raw`).
    pub async fn mock_last_message(&self) -> anyhow::Result<Vec<u8>> {
        let v = self
            .get(format!("{}/_mock/last_message_raw", self.mock_url))
            .await?;
        let hex = v["hex"]
            .as_str()
            .context("/_mock/last_message_raw has no hex")?;
        super::load::unhex(hex)
    }

    pub async fn emu_counters(&self) -> anyhow::Result<EmuCounters> {
        let v = self.get(format!("{}/_emu/counters", self.emu_url)).await?;
        serde_json::from_value(v).context("GET /_emu/counters: unexpected shape")
    }

    pub async fn reset_emu_counters(&self) -> anyhow::Result<()> {
        self.post(format!("{}/_emu/counters/reset", self.emu_url), Value::Null)
            .await
    }

    /// The adapter's time and commit sums so far, from one `GET /metrics`.
    pub async fn adapter_sums(&self) -> anyhow::Result<AdapterSums> {
        let url = format!("{}/metrics", self.adapter_url);
        let text = self.call(Method::GET, &url, None).await?;
        AdapterSums::parse(&text, &url)
    }

    /// `GET /v1/kkt/buffer/status`'s `pending`.
    pub async fn pending(&self) -> anyhow::Result<u64> {
        let st = self
            .get(format!("{}/v1/kkt/buffer/status", self.adapter_url))
            .await?;
        st["pending"]
            .as_u64()
            .with_context(|| format!("buffer status without pending: {st}"))
    }

    /// Is `GET /v1/ready` 200?
    pub async fn ready(&self) -> bool {
        let url = format!("{}/v1/ready", self.adapter_url);
        matches!(self.http.get(&url).send().await, Ok(a) if a.status().is_success())
    }

    /// Polls `GET /v1/ready` every 2 ms until 200, at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + limit;
        while !self.ready().await {
            if Instant::now() >= end {
                bail!("the adapter was not ready within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}
/// Peak RSS of one repetition's processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Peaks {
    pub adapter_mib: f64,
    pub emulator_mib: f64,
}

impl Peaks {
    pub fn max(self, other: Peaks) -> Peaks {
        Peaks {
            adapter_mib: self.adapter_mib.max(other.adapter_mib),
            emulator_mib: self.emulator_mib.max(other.emulator_mib),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces_and_parentheses() {
        // Fields 14 and 15 (utime 1200, stime 345) of a process named "kkt (emu) 1".
        let stat = "4242 (kkt (emu) 1) S 1 4242 4242 0 -1 4194560 900 0 0 0 1200 345 0 0 20 0 3 0 100 \
                    1000000 500 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            stat_cpu_ticks(stat),
            Some(CpuTicks {
                user: 1200,
                system: 345
            })
        );
        assert_eq!(stat_cpu_ticks("4242 (truncated) S 1 2"), None);
    }

    #[test]
    fn the_machine_is_busy_in_all_but_idle_and_io_wait() {
        let stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\nintr 1\n";
        // user + nice + system + irq + softirq + steal = 160 busy of 1000.
        assert_eq!(machine_stat_ticks(stat), Some((160, 1000)));
        assert_eq!(machine_stat_ticks("intr 1\n"), None);
        let (busy, total) = machine_ticks().expect("this machine's /proc/stat");
        assert!(busy <= total && total > 0, "{busy} of {total}");
        assert!(cpu_ticks(std::process::id()).is_some());
    }
}
