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

/// Why a data directory, a power-cut mount or its control API failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A folder or log file that could not be created.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {}: {source}", .bin.display())]
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "mounting the data directory of `{process}`: powercut-fs exited ({status}): {stderr_tail}"
    )]
    MountExited {
        process: String,
        status: std::process::ExitStatus,
        stderr_tail: String,
    },
    #[error(
        "mounting the data directory of `{process}`: powercut-fs printed no control address within {secs}s: {stderr_tail}"
    )]
    MountSilent {
        process: String,
        secs: u64,
        stderr_tail: String,
    },
    #[error("http client: {0}")]
    Client(reqwest::Error),
    #[error("the power-cut mount {} is still mounted (powercut-fs pid {pid} stopped {how})", .path.display())]
    StillMounted {
        path: PathBuf,
        pid: i32,
        how: &'static str,
    },
    #[error("powercut-fs (pid {pid}) for {} did not shut down on request; unmounted {how}", .path.display())]
    NotShutDown {
        path: PathBuf,
        pid: i32,
        how: &'static str,
    },
    /// Several mounts that did not unmount cleanly.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unmount(Vec<DiskError>),
    #[error("powercut-fs control {url}: {source}")]
    ControlUnreachable { url: String, source: reqwest::Error },
    #[error("powercut-fs control {url}: status {status}: {answer}")]
    ControlRefused {
        url: String,
        status: reqwest::StatusCode,
        answer: Value,
    },
    /// A process using the mount that could not be frozen before a cut.
    #[error("process group {group} did not stop: {source}")]
    NotFrozen {
        group: i32,
        source: crate::procs::StopGroupError,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DiskError + '_ {
    move |source| DiskError::Io {
        path: path.to_owned(),
        source,
    }
}

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
    pub fn plain(&mut self, dir: &Path, process: &str) -> Result<PathBuf, DiskError> {
        let path = dir.join("data").join(process);
        std::fs::create_dir_all(&path).map_err(io_error(&path))?;
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
    pub fn mount(&mut self, bin: &Path, dir: &Path, process: &str) -> Result<PathBuf, DiskError> {
        let data = dir.join("data");
        let (path, backing) = (data.join(process), data.join(format!("{process}.backing")));
        for d in [&path, &backing] {
            std::fs::create_dir_all(d).map_err(io_error(d))?;
        }
        let out_path = dir.join(format!("powercut-fs.{process}.stdout.log"));
        let err_path = dir.join(format!("powercut-fs.{process}.stderr.log"));
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(io_error(p))
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
            .map_err(|source| DiskError::Spawn {
                bin: bin.to_owned(),
                source,
            })?;
        crate::procs::register_disk(child.id() as i32);
        let control = match await_control(&mut child, process, &out_path, &err_path) {
            Ok(c) => c,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                crate::procs::unregister_disk(child.id() as i32);
                return Err(e);
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
    pub fn unmount_all(&mut self) -> Result<(), DiskError> {
        let mut errors = Vec::new();
        for d in &mut self.disks {
            if let Err(e) = unmount(d) {
                errors.push(e);
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(DiskError::Unmount(errors)),
        }
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_all() {
            eprintln!("uat: {e}");
        }
    }
}

/// Polls the stdout log for `control=ADDR`; fails when the child exits or the time is up.
fn await_control(
    child: &mut Child,
    process: &str,
    out: &Path,
    err: &Path,
) -> Result<String, DiskError> {
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
        if let Ok(Some(status)) = child.try_wait() {
            return Err(DiskError::MountExited {
                process: process.to_owned(),
                status,
                stderr_tail: tail(),
            });
        }
        if Instant::now() >= end {
            return Err(DiskError::MountSilent {
                process: process.to_owned(),
                secs: MOUNT_LIMIT.as_secs(),
                stderr_tail: tail(),
            });
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

fn unmount(d: &mut Disk) -> Result<(), DiskError> {
    let Some(mut child) = d.child.take() else {
        return Ok(());
    };
    let pid = child.id() as i32;
    let client = crate::probe::client().map_err(DiskError::Client)?;
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
        return Err(DiskError::StillMounted {
            path: d.path.clone(),
            pid,
            how,
        });
    }
    if how != "cleanly" {
        return Err(DiskError::NotShutDown {
            path: d.path.clone(),
            pid,
            how,
        });
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
) -> Result<Value, DiskError> {
    let url = format!("http://{control}/{route}");
    let mut rb = client.post(&url).timeout(CONTROL_LIMIT);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    answer(&url, rb.send())
}

/// GETs `/stats` of a control API.
pub fn control_stats(client: &Client, control: &str) -> Result<Value, DiskError> {
    let url = format!("http://{control}/stats");
    answer(&url, client.get(&url).timeout(CONTROL_LIMIT).send())
}

fn answer(url: &str, r: reqwest::Result<reqwest::blocking::Response>) -> Result<Value, DiskError> {
    let resp = r.map_err(|source| DiskError::ControlUnreachable {
        url: url.to_owned(),
        source,
    })?;
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        Ok(v)
    } else {
        Err(DiskError::ControlRefused {
            url: url.to_owned(),
            status,
            answer: v,
        })
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
) -> Result<Value, DiskError> {
    // Every thread must be stopped before the cut: one still running would see the dead disk
    // and answer a client, which a real outage never lets it do.
    let mut frozen = Ok(());
    for g in groups {
        if let Err(source) = crate::procs::stop_group(*g, crate::procs::STOP_LIMIT) {
            frozen = Err(DiskError::NotFrozen { group: *g, source });
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
