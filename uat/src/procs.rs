//! Process control: each process in its own process group, logs to files, signals to the whole group,
//! and a final sweep that kills every group ever started and proves, by PID, that none is left.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A process ready to be spawned: everything already templated.
#[derive(Debug, Clone)]
pub struct Spec {
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

/// Why starting, signalling, reaping or cleaning up a process failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("process `{name}` is already running (pid {pid})")]
    AlreadyRunning { name: String, pid: u32 },
    #[error("process `{0}` is not running")]
    NotRunning(String),
    /// A log file that could not be opened.
    #[error("{}: {source}", .path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start `{name}` ({command}): {source}")]
    Spawn {
        name: String,
        command: String,
        source: std::io::Error,
    },
    /// Asking the kernel whether a child has exited failed.
    #[error(transparent)]
    Wait(std::io::Error),
    #[error("signal {signal} to group {group} of `{name}`: {source}")]
    Signal {
        signal: Signal,
        group: Pid,
        name: String,
        source: nix::errno::Errno,
    },
    #[error("SIGSTOP to group {group} of `{name}`: {source}")]
    Pause {
        group: Pid,
        name: String,
        source: StopGroupError,
    },
    #[error("`{0}` survived SIGKILL for 10s")]
    SurvivedKill(String),
    #[error("processes left behind after SIGKILL: pids {0:?}")]
    LeftBehind(Vec<i32>),
    #[error("cannot run `{command}`: {source}")]
    ExecSpawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` still running after {secs}s; killed")]
    ExecTimeout { command: String, secs: u64 },
}

/// Why [`stop_group`] could not stop a process group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StopGroupError {
    #[error(transparent)]
    Signal(nix::errno::Errno),
    #[error("{} of {total} threads still not stopped after {limit:?} (tids {running:?})", .running.len())]
    NotStopped {
        running: Vec<i32>,
        total: usize,
        limit: Duration,
    },
}

/// Every process the runner started for one scenario.
#[derive(Debug)]
pub struct Procs {
    dir: PathBuf,
    running: BTreeMap<String, Child>,
    /// Process group ids of every start, including processes that have since exited.
    groups: Vec<i32>,
}

/// Log file paths of a process: stdout, stderr.
pub fn log_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.stdout.log")),
        dir.join(format!("{name}.stderr.log")),
    )
}

fn open_log(path: &Path) -> Result<File, ProcError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| ProcError::Log {
            path: path.to_owned(),
            source,
        })
}

impl Procs {
    pub fn new(dir: &Path) -> Procs {
        Procs {
            dir: dir.to_owned(),
            running: BTreeMap::new(),
            groups: Vec::new(),
        }
    }

    /// PIDs (= process group ids) of every start so far.
    pub fn started_groups(&self) -> &[i32] {
        &self.groups
    }

    /// The PID of a running process.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.running.get(name).map(Child::id)
    }

    /// Spawns `name` in a new process group with stdout/stderr appended to its log files.
    pub fn start(&mut self, name: &str, spec: &Spec) -> Result<u32, ProcError> {
        if let Some(child) = self.running.get_mut(name)
            && child.try_wait().map_err(ProcError::Wait)?.is_none()
        {
            return Err(ProcError::AlreadyRunning {
                name: name.to_owned(),
                pid: child.id(),
            });
        }
        let (out_path, err_path) = log_paths(&self.dir, name);
        let mut out = open_log(&out_path)?;
        let err = open_log(&err_path)?;
        // A marker separates restarts in the log; a failed write only loses the marker.
        let _ = writeln!(
            out,
            "--- uat: start {name}: {} {}",
            spec.command,
            spec.args.join(" ")
        );
        let child = Command::new(&spec.command)
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| ProcError::Spawn {
                name: name.to_owned(),
                command: spec.command.clone(),
                source,
            })?;
        let pid = child.id();
        self.groups.push(pid as i32);
        register(pid as i32);
        self.running.insert(name.to_owned(), child);
        Ok(pid)
    }

    /// Has the process exited? Returns its status if so (and forgets it).
    pub fn exited(&mut self, name: &str) -> Option<ExitStatus> {
        let child = self.running.get_mut(name)?;
        match child.try_wait() {
            Ok(Some(st)) => {
                self.running.remove(name);
                Some(st)
            }
            _ => None,
        }
    }

    fn group_of(&self, name: &str) -> Result<Pid, ProcError> {
        self.running
            .get(name)
            .map(|c| Pid::from_raw(c.id() as i32))
            .ok_or_else(|| ProcError::NotRunning(name.to_owned()))
    }

    /// Sends `sig` to the process group of `name`.
    pub fn signal(&mut self, name: &str, sig: Signal) -> Result<(), ProcError> {
        let pg = self.group_of(name)?;
        killpg(pg, sig).map_err(|source| ProcError::Signal {
            signal: sig,
            group: pg,
            name: name.to_owned(),
            source,
        })
    }

    /// SIGSTOP to the group of `name`, answering once every thread of it is stopped
    /// ([`stop_group`]).
    pub fn pause(&mut self, name: &str) -> Result<String, ProcError> {
        let pg = self.group_of(name)?;
        stop_group(pg.as_raw(), STOP_LIMIT).map_err(|source| ProcError::Pause {
            group: pg,
            name: name.to_owned(),
            source,
        })
    }

    /// Waits up to `limit` for `name` to exit; returns its status.
    pub fn wait(&mut self, name: &str, limit: Duration) -> Result<Option<ExitStatus>, ProcError> {
        let Some(child) = self.running.get_mut(name) else {
            return Ok(None);
        };
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = child.try_wait().map_err(ProcError::Wait)? {
                self.running.remove(name);
                return Ok(Some(st));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL to the group and reap the leader.
    pub fn kill(&mut self, name: &str) -> Result<ExitStatus, ProcError> {
        self.signal(name, Signal::SIGKILL)?;
        self.wait(name, Duration::from_secs(10))?
            .ok_or_else(|| ProcError::SurvivedKill(name.to_owned()))
    }

    /// SIGTERM (and SIGCONT, so a paused process can act on it), then SIGKILL after `grace`.
    /// Returns the exit status and whether SIGKILL was needed.
    pub fn stop(&mut self, name: &str, grace: Duration) -> Result<(ExitStatus, bool), ProcError> {
        self.signal(name, Signal::SIGTERM)?;
        let _ = self.signal(name, Signal::SIGCONT);
        if let Some(st) = self.wait(name, grace)? {
            return Ok((st, false));
        }
        Ok((self.kill(name)?, true))
    }

    /// Kills every process group ever started, reaps, and verifies by PID that no member is left.
    pub fn cleanup(&mut self) -> Result<(), ProcError> {
        for &g in &self.groups {
            // ESRCH (group already gone) is the normal case.
            let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
        }
        let names: Vec<String> = self.running.keys().cloned().collect();
        for n in names {
            let _ = self.wait(&n, Duration::from_secs(5));
        }
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let left: Vec<i32> = self.groups.iter().flat_map(|g| group_members(*g)).collect();
            if left.is_empty() {
                unregister(&self.groups);
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(ProcError::LeftBehind(left));
            }
            for &g in &self.groups {
                let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Procs {
    /// A panic or early return must not leave processes behind either.
    fn drop(&mut self) {
        for &g in &self.groups {
            let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
        }
        for c in self.running.values_mut() {
            let _ = c.wait();
        }
        unregister(&self.groups);
    }
}

/// Live (non-zombie) processes whose process group is `pgid`, read from /proc.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| matches!(proc_stat(*pid), Some((state, pg)) if pg == pgid && state != 'Z' && state != 'X'))
        .collect()
}

/// (state, process group) of a PID, or None when it is gone.
pub fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; the fields after the last ')' do not.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let _ppid = f.next()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Is `pid` alive (present and not a zombie)?
pub fn alive(pid: i32) -> bool {
    matches!(proc_stat(pid), Some((s, _)) if s != 'Z' && s != 'X')
}

impl Procs {
    /// Runs a one-shot command (an `exec` step) in its own group, with its output appended to
    /// `exec.stdout.log`/`exec.stderr.log`, and kills the group when `limit` passes.
    pub fn run_once(&mut self, spec: &Spec, limit: Duration) -> Result<ExitStatus, ProcError> {
        let (out_path, err_path) = log_paths(&self.dir, "exec");
        let mut out = open_log(&out_path)?;
        let err = open_log(&err_path)?;
        let _ = writeln!(
            out,
            "--- uat: exec {} {}",
            spec.command,
            spec.args.join(" ")
        );
        let mut child = Command::new(&spec.command)
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| ProcError::ExecSpawn {
                command: spec.command.clone(),
                source,
            })?;
        let pg = child.id() as i32;
        self.groups.push(pg);
        register(pg);
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = child.try_wait().map_err(ProcError::Wait)? {
                return Ok(st);
            }
            if Instant::now() >= end {
                let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
                let _ = child.wait();
                return Err(ProcError::ExecTimeout {
                    command: spec.command.clone(),
                    secs: limit.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Process groups alive right now, across all scenarios of this run, for the interrupt handler.
static LIVE_GROUPS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

fn live_groups() -> std::sync::MutexGuard<'static, Vec<i32>> {
    LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

fn register(pg: i32) {
    live_groups().push(pg);
}

fn unregister(groups: &[i32]) {
    live_groups().retain(|g| !groups.contains(g));
}

/// `powercut-fs` servers alive right now: on an interrupt they get SIGTERM (a clean unmount),
/// never SIGKILL, which would leave a dead mount behind.
static LIVE_DISKS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

fn live_disks() -> std::sync::MutexGuard<'static, Vec<i32>> {
    LIVE_DISKS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records a `powercut-fs` server for the interrupt handler.
pub fn register_disk(pid: i32) {
    live_disks().push(pid);
}

/// Forgets a `powercut-fs` server that has exited.
pub fn unregister_disk(pid: i32) {
    live_disks().retain(|p| *p != pid);
}

/// SIGTERM to every live `powercut-fs` server, then up to 5 s for them to unmount and exit.
fn stop_disks() {
    let disks = live_disks().clone();
    for p in &disks {
        let _ = nix::sys::signal::kill(Pid::from_raw(*p), Signal::SIGTERM);
    }
    let end = Instant::now() + Duration::from_secs(5);
    while disks.iter().any(|p| alive(*p)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What to do on an interrupt after the processes are gone and before the runner exits: write
/// the reports of what finished.
pub type InterruptHook = Box<dyn Fn() + Send + Sync>;

static INTERRUPT_HOOK: std::sync::Mutex<Option<InterruptHook>> = std::sync::Mutex::new(None);

/// Sets the hook [`install_interrupt_handler`] runs before it exits (replacing any earlier one).
pub fn on_interrupt(hook: InterruptHook) {
    *INTERRUPT_HOOK.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
}

/// On Ctrl-C or SIGTERM, kills every process group still alive, runs the hook of
/// [`on_interrupt`] and exits with `exit_code`. Our children live in their own groups, so the
/// terminal's SIGINT never reaches them: without this, an interrupted run would leave them running.
pub fn install_interrupt_handler(exit_code: i32) {
    let spawned = std::thread::Builder::new()
        .name("uat-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let which = rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return None;
                };
                tokio::select! {
                    _ = int.recv() => Some("SIGINT"),
                    _ = term.recv() => Some("SIGTERM"),
                }
            });
            let Some(which) = which else { return };
            let groups = live_groups().clone();
            for g in &groups {
                let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
            }
            stop_disks();
            eprintln!(
                "uat: {which}: killed {} process groups; run incomplete",
                groups.len()
            );
            if let Some(hook) = INTERRUPT_HOOK
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            {
                hook();
            }
            std::process::exit(exit_code);
        });
    if let Err(e) = spawned {
        eprintln!("uat: cannot watch for Ctrl-C: {e}");
    }
}

/// A channel that receives the name of the first SIGINT, SIGTERM or SIGHUP, for `uat up`.
/// Returns once the handlers are installed, so a signal sent after that is never lost.
pub fn signal_channel() -> Result<std::sync::mpsc::Receiver<&'static str>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("uat-up-signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    let _ = ready_tx.send(Err("cannot install signal handlers".into()));
                    return;
                };
                let _ = ready_tx.send(Ok(()));
                let which = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                    _ = hup.recv() => "SIGHUP",
                };
                let _ = tx.send(which);
            });
        })
        .map_err(|e| format!("cannot watch for signals: {e}"))?;
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(r) => r.map(|()| rx),
        Err(_) => Err("the signal watcher did not start".into()),
    }
}

/// How long the threads of a group may take to stop after SIGSTOP: a thread inside a system call
/// stops when the call returns (a FUSE request, for one, waits for its server's answer).
pub const STOP_LIMIT: Duration = Duration::from_secs(5);

/// SIGSTOP to process group `pg`, then waits until every thread of every process in it is stopped.
///
/// `kill(2)` only queues a stop: one thread takes it when next scheduled and only then stops the
/// others, so on a loaded machine the rest of the process runs on for milliseconds. Whatever must
/// happen to a frozen process (a power cut of its disk) waits here until nothing of it can run.
/// Returns a note for the history: the number of threads stopped.
pub fn stop_group(pg: i32, limit: Duration) -> Result<String, StopGroupError> {
    match killpg(Pid::from_raw(pg), Signal::SIGSTOP) {
        Ok(()) => {}
        // Nothing of the group is left to run.
        Err(nix::errno::Errno::ESRCH) => return Ok("the group has no process left".into()),
        Err(e) => return Err(StopGroupError::Signal(e)),
    }
    let end = Instant::now() + limit;
    loop {
        let (stopped, running) = group_threads(pg);
        if running.is_empty() {
            return Ok(format!("{stopped} threads stopped"));
        }
        if Instant::now() >= end {
            return Err(StopGroupError::NotStopped {
                total: stopped + running.len(),
                running,
                limit,
            });
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The threads of the processes in group `pg`: how many are stopped (or gone), and the ids of
/// those that can still run.
fn group_threads(pg: i32) -> (usize, Vec<i32>) {
    let mut stopped = 0;
    let mut running = Vec::new();
    for pid in numeric_entries("/proc") {
        let in_group = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_field(&s, 5))
            .is_some_and(|g| g == pg.to_string());
        if !in_group {
            continue;
        }
        for tid in numeric_entries(&format!("/proc/{pid}/task")) {
            // A thread that exited meanwhile has no stat: it cannot run either.
            let state = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
                .ok()
                .and_then(|s| stat_field(&s, 3));
            match state.as_deref() {
                None | Some("T" | "t" | "Z" | "X") => stopped += 1,
                Some(_) => running.push(tid),
            }
        }
    }
    (stopped, running)
}

/// The entries of `dir` named by a number (the processes in `/proc`, the threads in
/// `/proc/PID/task`); none when `dir` cannot be read (a process that exited meanwhile).
fn numeric_entries(dir: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Field `n` (1-based, as in proc(5)) of a `/proc/.../stat` line; the command name in field 2 may
/// hold spaces and parentheses, so fields 3 on are counted after its last `)`.
fn stat_field(stat: &str, n: usize) -> Option<String> {
    let (head, rest) = stat.rsplit_once(')')?;
    match n {
        1 => head.split_whitespace().next().map(str::to_owned),
        2 => head.split_once('(').map(|(_, c)| c.to_owned()),
        _ => rest.split_whitespace().nth(n - 3).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (a) b (c)) S 1 4240 4240 0";
        assert_eq!(stat_field(stat, 1).as_deref(), Some("4242"));
        assert_eq!(stat_field(stat, 2).as_deref(), Some("a) b (c)"));
        assert_eq!(stat_field(stat, 3).as_deref(), Some("S"));
        assert_eq!(stat_field(stat, 5).as_deref(), Some("4240"));
    }

    #[test]
    fn numeric_entries_are_the_processes_and_threads() {
        let pid = std::process::id() as i32;
        assert!(numeric_entries("/proc").contains(&pid));
        // `self` and the other named entries are skipped.
        assert!(numeric_entries("/proc").iter().all(|p| *p > 0));
        assert!(numeric_entries(&format!("/proc/{pid}/task")).contains(&pid));
        assert!(numeric_entries("/proc/0/no-such-dir").is_empty());
    }

    #[test]
    fn stop_group_answers_only_when_every_busy_thread_is_stopped() {
        // The interpreter itself, not a `python3` launcher script (pyenv's shim is one): a launcher's
        // helper processes would share the group and be counted until it execs the interpreter.
        let resolved = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs");
        let python = String::from_utf8_lossy(&resolved.stdout).trim().to_owned();
        assert!(!python.is_empty(), "python3 names its interpreter");
        // Five threads spinning in user space: the ones kill(2) does not pick keep running until
        // the picked one starts the group stop.
        let child = Command::new(&python)
            .args([
                "-c",
                "import threading\nfor _ in range(4): threading.Thread(target=lambda: [0 for _ in iter(int, 1)]).start()\n[0 for _ in iter(int, 1)]",
            ])
            .process_group(0)
            .spawn()
            .expect("python3 starts");
        let pg = child.id() as i32;
        // The spinning group is killed however the test ends, a failed assertion included.
        struct KillGroup(i32, std::process::Child);
        impl Drop for KillGroup {
            fn drop(&mut self) {
                let _ = killpg(Pid::from_raw(self.0), Signal::SIGKILL);
                let _ = self.1.wait();
            }
        }
        let group = KillGroup(pg, child);
        // Wait until the threads exist, so the stop has several to catch.
        let end = Instant::now() + Duration::from_secs(10);
        while group_threads(pg).1.len() < 5 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(group_threads(pg).1.len(), 5, "python3 runs 5 threads");
        let note = stop_group(pg, STOP_LIMIT);
        let (stopped, running) = group_threads(pg);
        drop(group);
        assert_eq!(note.as_deref(), Ok("5 threads stopped"));
        assert_eq!((stopped, running), (5, Vec::new()));
    }
}
