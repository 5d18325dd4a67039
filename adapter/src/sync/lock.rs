//! The sync lock: only one relay pass per FN at a time, across tasks and processes. Each FN has
//! its own lock, named by its number ([`lease_name`]), so two replicas never relay one FN at once
//! whatever they call its register, and relay different FNs in parallel.
//!
//! Two backends. The default is a lease row in the journal itself (`journal.lease_*`), whose
//! fencing token the journal checks inside the same transaction that records an acknowledgement.
//! With `--lock redis://...` the lock is a Redis key (`SET key value NX PX ttl`), renewed while
//! working and released with a compare-and-delete script; its value carries a fencing token from
//! `INCR`, and [`SyncLock::check_fence`] compares it before an acknowledgement is journaled.
//!
//! **Boundary:** a Redis fence check and the journal commit that follows are two steps; a holder
//! that stalls longer than the remaining TTL between them could still journal once. The worker
//! renews when a third of the TTL has passed, so the window needs a stall of minutes.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::time::{Instant, timeout};

use crate::journal::{Journal, JournalError, Lease};

/// The stem of every FN's lease name in the journal (and of its Redis key).
pub const LOCK_NAME: &str = "ofd_sync";

/// The lease name of the relay of FN `fn_number`: `ofd_sync:fn:<FN>`. (Adapters before several
/// registers took one `ofd_sync` for the whole journal; replicas sharing a journal run one version.)
pub fn lease_name(fn_number: &str) -> String {
    format!("{LOCK_NAME}:fn:{fn_number}")
}

/// Bound on every Redis round trip.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Compare-and-delete: releases the key only if it still holds our value.
const RELEASE_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Compare-and-extend: renews the key only if it still holds our value.
const RENEW_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

/// Failures of the lock backend itself (not "someone else holds it", which is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The journal failed.
    #[error("sync lease: {0}")]
    Journal(#[from] JournalError),
    /// Redis failed or timed out.
    #[error("redis lock: {0}")]
    Redis(String),
}

fn redis_err(e: redis::RedisError) -> LockError {
    LockError::Redis(e.to_string())
}

/// A held lock. For the SQLite backend it carries the journal lease that fences writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Fencing token: strictly increases with every acquisition.
    pub token: i64,
    /// The lease name (SQLite) or key (Redis) of the FN this lock is held for.
    name: String,
    lease: Option<Lease>,
    value: String,
    renewed_at: Instant,
}

impl Held {
    /// The journal lease to pass to fenced journal writes (`None` with Redis).
    pub fn journal_lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }
}

enum Backend {
    Sqlite(Journal),
    Redis {
        client: redis::Client,
        conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    },
}

/// The sync lock of one adapter process.
pub struct SyncLock {
    backend: Backend,
    /// What an FN's lease name is prefixed with: nothing in the journal, the key prefix in Redis.
    prefix: String,
    owner: String,
    ttl: Duration,
}

impl std::fmt::Debug for SyncLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Redis { .. } => "redis",
        };
        f.debug_struct("SyncLock")
            .field("kind", &kind)
            .field("owner", &self.owner)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A process-unique owner id: this boot, the pid and its start time, plus a random suffix, so two
/// tasks or a restarted process with a recycled pid never pass for each other, and a later process on
/// the same machine can tell that the holder is dead (see [`holder_is_dead`]).
pub fn owner_id() -> String {
    let pid = std::process::id();
    format!(
        "{}/{pid}/{}/{:016x}",
        boot_id().unwrap_or_default(),
        start_time(pid).unwrap_or_default(),
        rand::random::<u64>()
    )
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The start time of a process in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it follow its closing parenthesis.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19).map(str::to_owned)
}

/// True when `owner` was issued on this machine in this boot and its process no longer runs (or its
/// pid now belongs to another process). A SIGKILLed adapter then does not block the next one for a
/// whole lease TTL. Holders on other machines (shared storage) are never judged: they expire.
pub fn holder_is_dead(owner: &str) -> bool {
    let mut parts = owner.split('/');
    let (Some(boot), Some(pid), Some(started)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    match boot_id() {
        Some(ours) if !ours.is_empty() && ours == boot => {
            start_time(pid).as_deref() != Some(started)
        }
        _ => false,
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

impl SyncLock {
    /// The embedded default: a lease row in the journal.
    pub fn sqlite(journal: Journal, owner: String, ttl: Duration) -> SyncLock {
        SyncLock {
            backend: Backend::Sqlite(journal),
            prefix: String::new(),
            owner,
            ttl,
        }
    }

    /// A Redis lock at `url` (`redis://HOST:PORT`); an FN's key is `prefix` followed by its lease
    /// name (`adapter:ofd_sync:fn:<FN>` with prefix `adapter:`). Connects lazily.
    pub fn redis(
        url: &str,
        prefix: &str,
        owner: String,
        ttl: Duration,
    ) -> Result<SyncLock, LockError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        Ok(SyncLock {
            backend: Backend::Redis {
                client,
                conn: tokio::sync::Mutex::new(None),
            },
            prefix: prefix.to_string(),
            owner,
            ttl,
        })
    }

    /// The owner id this lock acquires under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The lease time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The lease name or Redis key of FN `fn_number`'s lock.
    pub fn name_for(&self, fn_number: &str) -> String {
        format!("{}{}", self.prefix, lease_name(fn_number))
    }

    /// Takes the lock of FN `fn_number`; `Ok(None)` while someone else holds it.
    pub async fn acquire(&self, fn_number: &str) -> Result<Option<Held>, LockError> {
        let name = self.name_for(fn_number);
        match &self.backend {
            Backend::Sqlite(journal) => {
                let mut lease = journal
                    .lease_acquire(&name, &self.owner, ttl_ms(self.ttl))
                    .await?;
                if lease.is_none()
                    && let Some(holder) = journal.lease(&name).await?
                    && holder.owner != self.owner
                    && holder_is_dead(&holder.owner)
                {
                    tracing::warn!(dead_owner = %holder.owner, "taking over the sync lease of a process that is gone");
                    lease = journal
                        .lease_take_over(&name, &holder.owner, &self.owner, ttl_ms(self.ttl))
                        .await?;
                }
                Ok(lease.map(|lease| Held {
                    token: lease.token,
                    name,
                    value: format!("{}:{}", self.owner, lease.token),
                    lease: Some(lease),
                    renewed_at: Instant::now(),
                }))
            }
            Backend::Redis { .. } => {
                let token: i64 = self
                    .redis_query(redis::cmd("INCR").arg(format!("{name}:fence")))
                    .await?;
                let value = format!("{}:{}", self.owner, token);
                let mut set = redis::cmd("SET");
                set.arg(&name)
                    .arg(&value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms(self.ttl));
                let ok: Option<String> = self.redis_query(&set).await?;
                Ok(ok.map(|_| Held {
                    token,
                    name,
                    lease: None,
                    value,
                    renewed_at: Instant::now(),
                }))
            }
        }
    }

    /// Renews the lock if a third of its TTL has passed since the last renewal. `Ok(false)`
    /// once it was lost: the holder must stop working at once.
    pub async fn renew_if_due(&self, held: &mut Held) -> Result<bool, LockError> {
        if held.renewed_at.elapsed() < self.ttl / 3 {
            return Ok(true);
        }
        self.renew(held).await
    }

    /// Renews the lock now; `Ok(false)` once it was lost.
    pub async fn renew(&self, held: &mut Held) -> Result<bool, LockError> {
        let kept = match &self.backend {
            Backend::Sqlite(journal) => {
                let Some(lease) = held.lease.as_ref() else {
                    return Ok(false);
                };
                match journal.lease_renew(lease, ttl_ms(self.ttl)).await? {
                    Some(renewed) => {
                        held.lease = Some(renewed);
                        true
                    }
                    None => false,
                }
            }
            Backend::Redis { .. } => {
                let mut eval = redis::cmd("EVAL");
                eval.arg(RENEW_SCRIPT)
                    .arg(1)
                    .arg(&held.name)
                    .arg(&held.value)
                    .arg(ttl_ms(self.ttl));
                let n: i64 = self.redis_query(&eval).await?;
                n == 1
            }
        };
        if kept {
            held.renewed_at = Instant::now();
        }
        Ok(kept)
    }

    /// True if `held` is still the current holder: checked before journaling an
    /// acknowledgement. (The SQLite backend checks again inside the journal transaction.)
    pub async fn check_fence(&self, held: &Held) -> Result<bool, LockError> {
        match &self.backend {
            Backend::Sqlite(journal) => {
                let current = journal.lease(&held.name).await?;
                Ok(match (current, held.lease.as_ref()) {
                    (Some(c), Some(h)) => c.owner == h.owner && c.token == h.token,
                    _ => false,
                })
            }
            Backend::Redis { .. } => {
                let value: Option<String> =
                    self.redis_query(redis::cmd("GET").arg(&held.name)).await?;
                Ok(value.as_deref() == Some(held.value.as_str()))
            }
        }
    }

    /// Gives the lock up; `Ok(false)` if it was no longer ours.
    pub async fn release(&self, held: Held) -> Result<bool, LockError> {
        match &self.backend {
            Backend::Sqlite(journal) => match held.lease.as_ref() {
                Some(lease) => Ok(journal.lease_release(lease).await?),
                None => Ok(false),
            },
            Backend::Redis { .. } => {
                let mut eval = redis::cmd("EVAL");
                eval.arg(RELEASE_SCRIPT)
                    .arg(1)
                    .arg(&held.name)
                    .arg(&held.value);
                let n: i64 = self.redis_query(&eval).await?;
                Ok(n == 1)
            }
        }
    }

    /// Runs one Redis command on the shared connection, reconnecting once if it broke.
    async fn redis_query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, LockError> {
        let Backend::Redis { client, conn } = &self.backend else {
            return Err(LockError::Redis("not a redis lock".into()));
        };
        let mut slot = conn.lock().await;
        let mut c = match slot.take() {
            Some(c) => c,
            None => timeout(REDIS_TIMEOUT, client.get_multiplexed_async_connection())
                .await
                .map_err(|_| LockError::Redis("connect timed out".into()))?
                .map_err(redis_err)?,
        };
        let result = timeout(REDIS_TIMEOUT, cmd.query_async::<T>(&mut c))
            .await
            .map_err(|_| LockError::Redis("command timed out".into()))?;
        match result {
            Ok(v) => {
                *slot = Some(c);
                Ok(v)
            }
            // The connection is dropped on error, so the next call reconnects.
            Err(e) => Err(redis_err(e)),
        }
    }
}

#[cfg(test)]
mod owner_tests {
    use super::*;

    #[test]
    fn a_live_holder_is_never_judged_dead() {
        assert!(!holder_is_dead(&owner_id()));
    }

    #[test]
    fn a_finished_process_on_this_boot_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let started = start_time(pid);
        child.wait().unwrap();
        let owner = format!(
            "{}/{pid}/{}/0",
            boot_id().unwrap(),
            started.unwrap_or_else(|| "1".into())
        );
        assert!(holder_is_dead(&owner), "{owner}");
    }

    #[test]
    fn holders_from_another_boot_or_unknown_shapes_are_left_to_expire() {
        assert!(!holder_is_dead(&format!(
            "another-boot/{}/1/0",
            std::process::id()
        )));
        assert!(!holder_is_dead("pid123-abc"));
        assert!(!holder_is_dead(""));
    }
}
