//! Data directories of processes, and power-cut mounts: the runner spawns the built `powercut-fs`
//! binary for each (a black box: its loopback control API only), and unmounts them at the end.
//!
//! **Invariant:** every mount this module made is unmounted when its `Disks` is dropped, after a
//! failure or a panic too; an interrupted run asks each `powercut-fs` to unmount (SIGTERM), never
//! SIGKILLs it first, because a killed FUSE server leaves a dead mount behind.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use reqwest::blocking::Client;
use serde_json::Value;

/// How long `powercut-fs` may take to mount and print its control address.
const MOUNT_LIMIT: Duration = Duration::from_secs(20);
/// Time limit of one control request (a remount retries for about 2 s while the mount is busy).
const CONTROL_LIMIT: Duration = Duration::from_secs(30);
/// How long a clean unmount may take before SIGTERM, and SIGTERM before SIGKILL.
const UNMOUNT_LIMIT: Duration = Duration::from_secs(10);

/// One process's data directory.
#[derive(Debug)]
pub struct Disk {
    /// The process that owns it (the `[process.NAME]` that declared it).
    pub process: String,
    /// What `{{data.NAME}}` renders to.
    pub path: PathBuf,
    /// For power-cut mounts: where the durable bytes live.
    pub backing: Option<PathBuf>,
    /// For power-cut mounts: `127.0.0.1:PORT` of the control API.
    pub control: Option<String>,
    child: Option<Child>,
}

/// Every data directory of one scenario.
#[derive(Debug, Default)]
pub struct Disks {
    disks: Vec<Disk>,
}

impl Disks {
    /// The data directory of `process`.
    pub fn get(&self, process: &str) -> Option<&Disk> {
        self.disks.iter().find(|d| d.process == process)
    }

    /// Every data directory, in declaration order.
    pub fn all(&self) -> &[Disk] {
        &self.disks
    }

    /// Creates a plain data directory `DIR/data/NAME`.
    pub fn plain(&mut self, dir: &Path, process: &str) -> Result<PathBuf, String> {
        let path = dir.join("data").join(process);
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.disks.push(Disk {
            process: process.to_owned(),
            path: path.clone(),
            backing: None,
            control: None,
            child: None,
        });
        Ok(path)
    }

    /// Mounts a power-cut filesystem at `DIR/data/NAME` over `DIR/data/NAME.backing` with the
    /// binary `bin`, and waits for its control address.
    pub fn mount(&mut self, bin: &Path, dir: &Path, process: &str) -> Result<PathBuf, String> {
        let data = dir.join("data");
        let (path, backing) = (data.join(process), data.join(format!("{process}.backing")));
        for d in [&path, &backing] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let out_path = dir.join(format!("powercut-fs.{process}.stdout.log"));
        let err_path = dir.join(format!("powercut-fs.{process}.stderr.log"));
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        let (out, err) = (open(&out_path)?, open(&err_path)?);
        let mut child = Command::new(bin)
            .arg("mount")
            .arg("--backing")
            .arg(&backing)
            .arg("--mountpoint")
            .arg(&path)
            .args(["--control", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own group: the terminal's Ctrl-C must not kill it before the runner unmounts.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        crate::procs::register_disk(child.id() as i32);
        let control = match await_control(&mut child, &out_path, &err_path) {
            Ok(c) => c,
            Err(m) => {
                let _ = child.kill();
                let _ = child.wait();
                crate::procs::unregister_disk(child.id() as i32);
                return Err(format!("mounting the data directory of `{process}`: {m}"));
            }
        };
        self.disks.push(Disk {
            process: process.to_owned(),
            path: path.clone(),
            backing: Some(backing),
            control: Some(control),
            child: Some(child),
        });
        Ok(path)
    }

    /// `path` under a power-cut mount, mapped into its backing directory (for artifacts, which
    /// are copied after the unmount).
    pub fn backing_path(&self, path: &Path) -> Option<PathBuf> {
        self.disks.iter().find_map(|d| {
            let rest = path.strip_prefix(&d.path).ok()?;
            d.backing.as_ref().map(|b| b.join(rest))
        })
    }

    /// Unmounts every power-cut mount: `/shutdown`, then SIGTERM, then SIGKILL and a lazy
    /// `fusermount3 -u -z`. Errors name what was left mounted.
    pub fn unmount_all(&mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        for d in &mut self.disks {
            if let Err(m) = unmount(d) {
                errors.push(m);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        if let Err(m) = self.unmount_all() {
            eprintln!("uat: {m}");
        }
    }
}

/// Polls the stdout log for `control=ADDR`; fails when the child exits or the time is up.
fn await_control(child: &mut Child, out: &Path, err: &Path) -> Result<String, String> {
    let end = Instant::now() + MOUNT_LIMIT;
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if let Some(addr) = text.lines().find_map(|l| l.trim().strip_prefix("control=")) {
            return Ok(addr.to_owned());
        }
        let tail = || {
            let e = std::fs::read_to_string(err).unwrap_or_default();
            let lines: Vec<&str> = e.lines().rev().take(5).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
        };
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("powercut-fs exited ({st}): {}", tail()));
        }
        if Instant::now() >= end {
            return Err(format!(
                "powercut-fs printed no control address within {}s: {}",
                MOUNT_LIMIT.as_secs(),
                tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn unmount(d: &mut Disk) -> Result<(), String> {
    let Some(mut child) = d.child.take() else {
        return Ok(());
    };
    let pid = child.id() as i32;
    let client = crate::probe::client()?;
    if let Some(c) = &d.control {
        // An error here (the server is gone or wedged) is handled by the signals below.
        let _ = client
            .post(format!("http://{c}/shutdown"))
            .timeout(UNMOUNT_LIMIT)
            .send();
    }
    let mut how = "cleanly";
    if !wait_exit(&mut child, UNMOUNT_LIMIT) {
        how = "after SIGTERM";
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if !wait_exit(&mut child, UNMOUNT_LIMIT) {
            how = "after SIGKILL and a lazy fusermount3 -u -z";
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait();
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&d.path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    crate::procs::unregister_disk(pid);
    if is_mounted(&d.path) {
        return Err(format!(
            "the power-cut mount {} is still mounted (powercut-fs pid {pid} stopped {how})",
            d.path.display()
        ));
    }
    if how != "cleanly" {
        return Err(format!(
            "powercut-fs (pid {pid}) for {} did not shut down on request; unmounted {how}",
            d.path.display()
        ));
    }
    Ok(())
}

/// Is `path` a mountpoint right now (listed in /proc/self/mounts)?
pub fn is_mounted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    // Spaces in mount paths are escaped as \040; scenario folders do not contain them.
    let want = path.display().to_string();
    text.lines()
        .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
}

/// POSTs `route` (with a JSON body, if any) to a control API and returns the JSON answer.
pub fn control_post(
    client: &Client,
    control: &str,
    route: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let url = format!("http://{control}/{route}");
    let mut rb = client.post(&url).timeout(CONTROL_LIMIT);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    answer(&url, rb.send())
}

/// GETs `/stats` of a control API.
pub fn control_stats(client: &Client, control: &str) -> Result<Value, String> {
    let url = format!("http://{control}/stats");
    answer(&url, client.get(&url).timeout(CONTROL_LIMIT).send())
}

fn answer(url: &str, r: reqwest::Result<reqwest::blocking::Response>) -> Result<Value, String> {
    let resp = r.map_err(|e| format!("powercut-fs control {url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        Ok(v)
    } else {
        Err(format!("powercut-fs control {url}: status {status}: {v}"))
    }
}

/// The power cut as a real outage: freeze the processes using the mount (SIGSTOP, waiting until
/// every thread is stopped, so none of them sees the failing filesystem), cut, then SIGKILL them. When the cut itself is refused,
/// the processes are resumed instead and the error is returned.
pub fn cut_now(
    client: &Client,
    control: &str,
    route: &str,
    body: Option<&Value>,
    groups: &[i32],
) -> Result<Value, String> {
    // Every thread must be stopped before the cut: one still running would see the dead disk
    // and answer a client, which a real outage never lets it do.
    let mut frozen = Ok(());
    for g in groups {
        if let Err(e) = crate::procs::stop_group(*g, crate::procs::STOP_LIMIT) {
            frozen = Err(format!("process group {g} did not stop: {e}"));
            break;
        }
    }
    let r = frozen.and_then(|()| control_post(client, control, route, body));
    let after = if r.is_ok() {
        Signal::SIGKILL
    } else {
        Signal::SIGCONT
    };
    for g in groups {
        let _ = killpg(Pid::from_raw(*g), after);
    }
    r
}

/// A one-line summary of a cut report from `powercut-fs`.
pub fn report_text(v: &Value) -> String {
    let keys = [
        "mode",
        "dropped_pages",
        "persisted_pages",
        "undone_entry_changes",
        "kept_entry_changes",
        "undo_errors",
    ];
    let mut parts: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            v.get(*k)
                .map(|x| format!("{k}={}", crate::check::id_text(x)))
        })
        .collect();
    if let Some(t) = v.get("torn").filter(|t| !t.is_null()) {
        parts.push(format!("torn={t}"));
    }
    parts.join(" ")
}
