//! Configuration: every setting comes from a flag, an `ADAPTER_*` environment variable or the TOML
//! file given with `--config`, in that order of precedence, over the seed's defaults.
//!
//! Invalid configuration is a [`ConfigError`] that names the setting; `main` turns it into exit code 2.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

mod registers;
mod tokens;

pub use registers::{KKT_ID_CHARS_MAX, KktSetting, KktSpec};
pub use tokens::{AuthToken, Role};

/// Command line and environment. Every field is optional so that the file and the defaults can
/// fill what is not given here.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "adapter",
    version,
    about = "Offline-first fiscal adapter between a POS and a Shtrih-M KKT"
)]
pub struct Cli {
    /// TOML file with any of the settings below (snake_case keys).
    #[arg(long, env = "ADAPTER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: FileSettings,
}

/// The settings as they may appear in the TOML file, on the command line or in the environment.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// POS API listen address [default: 127.0.0.1:8000].
    #[arg(long, env = "ADAPTER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Journal database file [default: ./data/buffer.db].
    #[arg(long, env = "ADAPTER_DB")]
    pub db: Option<PathBuf>,
    /// A register `ID=PORT[,baud=N][,password=N][,auto_open_shift=BOOL]`; repeat the flag for
    /// several registers behind one adapter, or separate them with `;` in the variable. In the file:
    /// `[[kkt]]` tables with `id`, `port`, `baud`, `password`, `auto_open_shift`.
    #[arg(long = "kkt", env = "ADAPTER_KKT", value_delimiter = ';')]
    #[serde(default)]
    pub kkt: Option<Vec<KktSetting>>,
    /// Serial port of the one KKT, the shorthand for `--kkt default=PORT` [default: ./kkt.tty, the
    /// emulator's default link].
    #[arg(long, env = "ADAPTER_KKT_PORT")]
    pub kkt_port: Option<PathBuf>,
    /// Serial line speed of every register that sets none [default: 115200].
    #[arg(long, env = "ADAPTER_KKT_BAUD")]
    pub kkt_baud: Option<u32>,
    /// Operator password used for KKT commands [default: 30, the system administrator].
    #[arg(long, env = "ADAPTER_KKT_PASSWORD")]
    pub kkt_password: Option<u32>,
    /// Open the shift automatically on the first sale when it is closed [default: true].
    #[arg(long, env = "ADAPTER_AUTO_OPEN_SHIFT")]
    pub auto_open_shift: Option<bool>,
    /// Undelivered documents the buffer holds before refusing new sales [default: 10000].
    #[arg(long, env = "ADAPTER_CAPACITY")]
    pub capacity: Option<u64>,
    /// SQLite `wal_autocheckpoint` in pages [default: 100].
    #[arg(long, env = "ADAPTER_WAL_AUTOCHECKPOINT")]
    pub wal_autocheckpoint: Option<u32>,
    /// UNSAFE: run the journal with `synchronous=NORMAL`, which loses acknowledged sales on a power
    /// cut. Exists only as the negative control of the power-loss tests [default: false].
    #[arg(long, env = "ADAPTER_UNSAFE_SYNCHRONOUS_NORMAL")]
    pub unsafe_synchronous_normal: Option<bool>,
    /// OFD address [default: 127.0.0.1:7777].
    #[arg(long, env = "ADAPTER_OFD_ADDR")]
    pub ofd_addr: Option<String>,
    /// Background sync interval in milliseconds [default: 10000].
    #[arg(long, env = "ADAPTER_SYNC_INTERVAL_MS")]
    pub sync_interval_ms: Option<u64>,
    /// Documents per sync pass [default: 100].
    #[arg(long, env = "ADAPTER_BATCH_SIZE_MAX")]
    pub batch_size_max: Option<u32>,
    /// First backoff after a transport failure, in ms [default: 1000].
    #[arg(long, env = "ADAPTER_BACKOFF_INITIAL_MS")]
    pub backoff_initial_ms: Option<u64>,
    /// Backoff cap, in ms [default: 60000].
    #[arg(long, env = "ADAPTER_BACKOFF_MAX_MS")]
    pub backoff_max_ms: Option<u64>,
    /// Consecutive failures of one document while the OFD is reachable before an error line says
    /// so; delivery never gives up on a document for transient failures [default: 20].
    #[arg(long, env = "ADAPTER_RETRY_MAX")]
    pub retry_max: Option<u32>,
    /// Consecutive failures that open the circuit breaker [default: 5].
    #[arg(long, env = "ADAPTER_BREAKER_FAILURES")]
    pub breaker_failures: Option<u32>,
    /// How long the breaker stays open before probing, in ms [default: 60000].
    #[arg(long, env = "ADAPTER_BREAKER_OPEN_MS")]
    pub breaker_open_ms: Option<u64>,
    /// Successful probes that close a half-open breaker [default: 2].
    #[arg(long, env = "ADAPTER_BREAKER_PROBES")]
    pub breaker_probes: Option<u32>,
    /// OFD connect timeout, in ms [default: 3000].
    #[arg(long, env = "ADAPTER_OFD_CONNECT_TIMEOUT_MS")]
    pub ofd_connect_timeout_ms: Option<u64>,
    /// OFD write and read timeout, in ms [default: 10000].
    #[arg(long, env = "ADAPTER_OFD_IO_TIMEOUT_MS")]
    pub ofd_io_timeout_ms: Option<u64>,
    /// Probe the OFD with a bare connect when nothing is waiting, so health shows an outage
    /// before the first sale [default: true].
    #[arg(long, env = "ADAPTER_PROBE_WHEN_IDLE")]
    pub probe_when_idle: Option<bool>,
    /// Sync lock: `sqlite` (a lease row in the journal) or `redis://HOST:PORT` [default: sqlite].
    #[arg(long, env = "ADAPTER_LOCK")]
    pub lock: Option<String>,
    /// Sync lease time to live, in ms [default: 300000].
    #[arg(long, env = "ADAPTER_LOCK_TTL_MS")]
    pub lock_ttl_ms: Option<u64>,
    /// How often the background task retries an unfinished reconciliation, in ms; a stuck receipt
    /// is retried at most every 5 s [default: 500].
    #[arg(long, env = "ADAPTER_RECONCILE_RETRY_MS")]
    pub reconcile_retry_ms: Option<u64>,
    /// A receipt unresolved this long (ms) is reported stuck: health degraded, an error logged
    /// [default: 60000].
    #[arg(long, env = "ADAPTER_RECONCILE_STUCK_AFTER_MS")]
    pub reconcile_stuck_after_ms: Option<u64>,
    /// A receipt that has been through this many reconciliation attempts is reported stuck
    /// [default: 100].
    #[arg(long, env = "ADAPTER_RECONCILE_STUCK_ATTEMPTS")]
    pub reconcile_stuck_attempts: Option<u32>,
    /// Age of the oldest fiscal document not yet delivered to the OFD, in ms, past which health
    /// turns `degraded` (the FN blocks sales 30 days after its oldest unacknowledged document)
    /// [default: 259200000, 3 days].
    #[arg(long, env = "ADAPTER_BACKLOG_AGE_ALARM_MS")]
    pub backlog_age_alarm_ms: Option<u64>,
    /// Synced receipts older than this many days are purged, in bounded batches, hourly; 0 keeps
    /// them for ever [default: 30].
    #[arg(long, env = "ADAPTER_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// Directory for `POST /v1/admin/backup` copies (a new file per backup, named by the adapter);
    /// without it the endpoint answers 409 [default: none].
    #[arg(long, env = "ADAPTER_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Log lines as `text` or `json` (one object per line), on stderr [default: text].
    #[arg(long, env = "ADAPTER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// After SIGTERM, how long open requests may take to finish before the adapter exits anyway,
    /// in ms [default: 10000].
    #[arg(long, env = "ADAPTER_SHUTDOWN_DEADLINE_MS")]
    pub shutdown_deadline_ms: Option<u64>,
    /// A client must send a whole request head within this time, and an idle keep-alive
    /// connection is closed after it, in ms [default: 10000].
    #[arg(long, env = "ADAPTER_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// A request body must arrive in full within this time after its head, or the answer is 408
    /// `request_timeout` and nothing is done, in ms [default: 10000].
    #[arg(long, env = "ADAPTER_BODY_READ_TIMEOUT_MS")]
    pub body_read_timeout_ms: Option<u64>,
    /// Open client connections. At the bound a new connection closes the oldest one that has no
    /// request in progress (a slow or idle client); when every one has, the new one gets 503
    /// `overloaded` with `Retry-After`. Keep it well below the open-file limit [default: 512].
    #[arg(long, env = "ADAPTER_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,
    /// Requests served at the same time; one more gets 503 `overloaded` with `Retry-After`
    /// [default: 64].
    #[arg(long, env = "ADAPTER_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<u32>,
    /// Requests per second each token may make (bursts up to the same number); one more gets
    /// 429 `rate_limited` with `Retry-After`; 0 = no limit [default: 0].
    #[arg(long, env = "ADAPTER_TOKEN_RATE_LIMIT")]
    pub token_rate_limit: Option<u32>,
    /// An API token `NAME:ROLE:SECRET` (role `pos` or `admin`); repeat the flag, or separate
    /// several with commas in the variable. Clients send `Authorization: Bearer SECRET`.
    #[arg(
        long = "auth-token",
        env = "ADAPTER_AUTH_TOKENS",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub auth_token: Option<Vec<String>>,
    /// A file of API tokens, one `NAME ROLE SECRET` a line (`#` comment lines and blank lines
    /// allowed). Tokens from every source are combined; a name or secret given twice is an error.
    #[arg(long, env = "ADAPTER_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<PathBuf>,
    /// `[[auth.token]]` tables (`name`, `role`, `secret`); only in the TOML file.
    #[arg(skip)]
    pub auth: Option<tokens::AuthSection>,
    /// A web origin (`http://host:port`) whose browser requests are served; a request with any
    /// other `Origin` header is refused. Repeat the flag, or separate several with commas in the
    /// variable [default: none, every browser request is refused].
    #[arg(
        long = "allowed-origin",
        env = "ADAPTER_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub allowed_origin: Option<Vec<String>>,
}

/// The effective configuration, every value resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: PathBuf,
    /// The registers, in the order configured; never empty.
    pub kkts: Vec<KktSpec>,
    pub capacity: u64,
    pub wal_autocheckpoint: u32,
    pub unsafe_synchronous_normal: bool,
    pub ofd_addr: String,
    pub sync_interval: Duration,
    pub batch_size_max: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub retry_max: u32,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    pub breaker_probes: u32,
    pub ofd_connect_timeout: Duration,
    pub ofd_io_timeout: Duration,
    pub probe_when_idle: bool,
    pub lock: LockKind,
    pub reconcile_retry: Duration,
    pub reconcile_stuck_after: Duration,
    pub reconcile_stuck_attempts: u32,
    pub backlog_age_alarm: Duration,
    pub backup_dir: Option<PathBuf>,
    /// Age past which synced receipts are purged; zero = never.
    pub retention: Duration,
    pub log_format: LogFormat,
    pub shutdown_deadline: Duration,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: u32,
    pub max_concurrent_requests: u32,
    /// Requests per second per token; `None` = no limit.
    pub token_rate_limit: Option<u32>,
    pub auth_tokens: Vec<AuthToken>,
    /// Origins whose browser requests are served, lower case, without a trailing slash.
    pub allowed_origins: Vec<String>,
    pub lock_ttl: Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

/// Which sync lock guards the OFD relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockKind {
    Sqlite,
    Redis(String),
}

/// A setting that cannot be used, named as the user wrote it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("tokens file {path}:{line}: {message}")]
    TokensFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("setting `{setting}`: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

impl FileSettings {
    /// Fills every field not set in `self` from `lower`; tokens from both are combined.
    fn or(mut self, mut lower: FileSettings) -> FileSettings {
        let auth_token = match (self.auth_token.take(), lower.auth_token.take()) {
            (Some(mut mine), Some(theirs)) => {
                mine.extend(theirs);
                Some(mine)
            }
            (mine, theirs) => mine.or(theirs),
        };
        // The register list is one setting: a higher source that names registers (either way)
        // replaces the lower one's, so a file's `kkt_port` never clashes with a flag's `--kkt`.
        let (kkt, kkt_port) = match (self.kkt.take(), self.kkt_port.take()) {
            (None, None) => (lower.kkt.take(), lower.kkt_port.take()),
            mine => mine,
        };
        macro_rules! pick {
            ($($f:ident),*) => { FileSettings { $($f: self.$f.or(lower.$f)),* } };
        }
        let merged = pick!(
            listen,
            db,
            kkt,
            kkt_port,
            kkt_baud,
            kkt_password,
            auto_open_shift,
            capacity,
            wal_autocheckpoint,
            unsafe_synchronous_normal,
            ofd_addr,
            sync_interval_ms,
            batch_size_max,
            backoff_initial_ms,
            backoff_max_ms,
            retry_max,
            breaker_failures,
            breaker_open_ms,
            breaker_probes,
            ofd_connect_timeout_ms,
            ofd_io_timeout_ms,
            probe_when_idle,
            lock,
            lock_ttl_ms,
            reconcile_retry_ms,
            reconcile_stuck_after_ms,
            reconcile_stuck_attempts,
            backlog_age_alarm_ms,
            backup_dir,
            retention_days,
            log_format,
            shutdown_deadline_ms,
            header_read_timeout_ms,
            body_read_timeout_ms,
            max_connections,
            max_concurrent_requests,
            token_rate_limit,
            auth_token,
            auth_tokens_file,
            auth,
            allowed_origin
        );
        FileSettings {
            auth_token,
            kkt,
            kkt_port,
            ..merged
        }
    }
}

/// Reads a TOML settings file.
pub fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

impl Config {
    /// Resolves the command line (already merged with the environment by clap), the optional file
    /// and the defaults into a validated configuration.
    pub fn resolve(cli: Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        Config::from_settings(cli.settings.or(file))
    }

    /// Applies the defaults and validates.
    pub fn from_settings(mut s: FileSettings) -> Result<Config, ConfigError> {
        let auth_tokens = tokens::collect(
            s.auth_token.take().unwrap_or_default(),
            s.auth.take().unwrap_or_default().token,
            s.auth_tokens_file.as_deref(),
        )?;
        let allowed_origins = tokens::origins(s.allowed_origin.take().unwrap_or_default())?;
        let ms = Duration::from_millis;
        let positive = |setting: &'static str, v: u64| {
            if v == 0 {
                Err(invalid(setting, "must be greater than zero"))
            } else {
                Ok(v)
            }
        };
        let lock = match s.lock.as_deref().unwrap_or("sqlite") {
            "sqlite" => LockKind::Sqlite,
            url if url.starts_with("redis://") && url.len() > "redis://".len() => {
                LockKind::Redis(url.to_owned())
            }
            other => {
                return Err(invalid(
                    "lock",
                    format!("`{other}` is neither `sqlite` nor `redis://HOST:PORT`"),
                ));
            }
        };
        // Durations in ms and counts must be positive; each names its setting when it is not.
        let duration_ms = |setting: &'static str, v: Option<u64>, default: u64| {
            positive(setting, v.unwrap_or(default)).map(ms)
        };
        let count = |setting: &'static str, v: Option<u32>, default: u32| {
            positive(setting, u64::from(v.unwrap_or(default))).map(|v| v as u32)
        };
        let config = Config {
            listen: s
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000))),
            db: s.db.unwrap_or_else(|| PathBuf::from("./data/buffer.db")),
            kkts: registers::resolve(registers::RegisterSettings {
                kkt: s.kkt.take(),
                kkt_port: s.kkt_port.take(),
                kkt_baud: s.kkt_baud,
                kkt_password: s.kkt_password,
                auto_open_shift: s.auto_open_shift,
            })?,
            capacity: positive("capacity", s.capacity.unwrap_or(10_000))?,
            wal_autocheckpoint: s.wal_autocheckpoint.unwrap_or(100),
            unsafe_synchronous_normal: s.unsafe_synchronous_normal.unwrap_or(false),
            ofd_addr: s.ofd_addr.unwrap_or_else(|| "127.0.0.1:7777".to_owned()),
            sync_interval: duration_ms("sync_interval_ms", s.sync_interval_ms, 10_000)?,
            batch_size_max: count("batch_size_max", s.batch_size_max, 100)?,
            backoff_initial: duration_ms("backoff_initial_ms", s.backoff_initial_ms, 1_000)?,
            backoff_max: duration_ms("backoff_max_ms", s.backoff_max_ms, 60_000)?,
            retry_max: count("retry_max", s.retry_max, 20)?,
            breaker_failures: count("breaker_failures", s.breaker_failures, 5)?,
            breaker_open: duration_ms("breaker_open_ms", s.breaker_open_ms, 60_000)?,
            breaker_probes: count("breaker_probes", s.breaker_probes, 2)?,
            ofd_connect_timeout: duration_ms(
                "ofd_connect_timeout_ms",
                s.ofd_connect_timeout_ms,
                3_000,
            )?,
            ofd_io_timeout: duration_ms("ofd_io_timeout_ms", s.ofd_io_timeout_ms, 10_000)?,
            probe_when_idle: s.probe_when_idle.unwrap_or(true),
            lock,
            lock_ttl: duration_ms("lock_ttl_ms", s.lock_ttl_ms, 300_000)?,
            reconcile_retry: duration_ms("reconcile_retry_ms", s.reconcile_retry_ms, 500)?,
            reconcile_stuck_after: duration_ms(
                "reconcile_stuck_after_ms",
                s.reconcile_stuck_after_ms,
                60_000,
            )?,
            reconcile_stuck_attempts: count(
                "reconcile_stuck_attempts",
                s.reconcile_stuck_attempts,
                100,
            )?,
            backlog_age_alarm: duration_ms(
                "backlog_age_alarm_ms",
                s.backlog_age_alarm_ms,
                3 * 24 * 3_600_000,
            )?,
            backup_dir: s.backup_dir,
            retention: Duration::from_secs(u64::from(s.retention_days.unwrap_or(30)) * 86_400),
            log_format: s.log_format.unwrap_or_default(),
            shutdown_deadline: duration_ms("shutdown_deadline_ms", s.shutdown_deadline_ms, 10_000)?,
            header_read_timeout: duration_ms(
                "header_read_timeout_ms",
                s.header_read_timeout_ms,
                10_000,
            )?,
            body_read_timeout: duration_ms("body_read_timeout_ms", s.body_read_timeout_ms, 10_000)?,
            max_connections: count("max_connections", s.max_connections, 512)?,
            max_concurrent_requests: count(
                "max_concurrent_requests",
                s.max_concurrent_requests,
                64,
            )?,
            token_rate_limit: s.token_rate_limit.filter(|r| *r > 0),
            auth_tokens,
            allowed_origins,
        };
        if config.backoff_max < config.backoff_initial {
            return Err(invalid(
                "backoff_max_ms",
                "must not be below backoff_initial_ms",
            ));
        }
        // Without tokens anyone who reaches the port could sell and close the shift; only this
        // machine may be that open.
        if config.auth_tokens.is_empty() && !config.listen.ip().is_loopback() {
            return Err(invalid(
                "listen",
                format!(
                    "{} is not a loopback address and no API token is configured; \
                     give --auth-token, --auth-tokens-file or [[auth.token]], or listen on 127.0.0.1",
                    config.listen
                ),
            ));
        }
        if config.ofd_addr.parse::<SocketAddr>().is_err() && !config.ofd_addr.contains(':') {
            return Err(invalid(
                "ofd_addr",
                format!("`{}` is not HOST:PORT", config.ofd_addr),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(std::iter::once("adapter").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::resolve(cli).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_seeds() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(c.db, PathBuf::from("./data/buffer.db"));
        assert_eq!(
            (
                c.capacity,
                c.wal_autocheckpoint,
                c.batch_size_max,
                c.retry_max
            ),
            (10_000, 100, 100, 20)
        );
        assert_eq!(
            (c.sync_interval, c.backoff_initial, c.backoff_max),
            (
                Duration::from_secs(10),
                Duration::from_secs(1),
                Duration::from_secs(60)
            )
        );
        assert_eq!(
            (c.breaker_failures, c.breaker_open, c.breaker_probes),
            (5, Duration::from_secs(60), 2)
        );
        assert_eq!(c.lock, LockKind::Sqlite);
        assert!(!c.unsafe_synchronous_normal);
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("adapter.toml");
        std::fs::write(&file, "capacity = 50\nsync_interval_ms = 200\n").unwrap();
        let c = parse(&["--config", file.to_str().unwrap(), "--capacity", "7"]).unwrap();
        assert_eq!(c.capacity, 7);
        assert_eq!(c.sync_interval, Duration::from_millis(200));
    }

    #[test]
    fn tokens_from_flags_and_the_file_are_combined() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("adapter.toml");
        std::fs::write(
            &file,
            "auth_token = [\"a:pos:aaaa-secret-0123456789\"]\n\
             [[auth.token]]\nname = \"b\"\nrole = \"admin\"\nsecret = \"bbbb-secret-0123456789\"\n",
        )
        .unwrap();
        let c = parse(&[
            "--config",
            file.to_str().unwrap(),
            "--auth-token",
            "c:pos:cccc-secret-0123456789",
            "--listen",
            "0.0.0.0:8000",
        ])
        .unwrap();
        let names: Vec<_> = c
            .auth_tokens
            .iter()
            .map(|t| (t.name.as_str(), t.role))
            .collect();
        assert_eq!(
            names,
            [("c", Role::Pos), ("a", Role::Pos), ("b", Role::Admin)]
        );
        assert!(
            !format!("{c:?}").contains("-secret-"),
            "Debug hides secrets"
        );
        std::fs::write(&file, "[[auth.token]]\nname = \"b\"\nrole = \"admin\"\n").unwrap();
        let err = parse(&["--config", file.to_str().unwrap()]).unwrap_err();
        assert!(err.contains("missing field `secret`"), "{err}");
    }

    #[test]
    fn without_tokens_only_loopback_is_served() {
        let err = parse(&["--listen", "0.0.0.0:8000"]).unwrap_err();
        assert!(
            err.starts_with("setting `listen`: 0.0.0.0:8000 is not a loopback"),
            "{err}"
        );
        assert!(parse(&["--listen", "[::1]:8000"]).is_ok());
    }

    #[test]
    fn invalid_settings_are_named() {
        assert_eq!(
            parse(&["--capacity", "0"]).unwrap_err(),
            "setting `capacity`: must be greater than zero"
        );
        assert!(
            parse(&["--lock", "etcd://x"])
                .unwrap_err()
                .starts_with("setting `lock`")
        );
        assert!(
            parse(&["--backoff-initial-ms", "5000", "--backoff-max-ms", "10"])
                .unwrap_err()
                .starts_with("setting `backoff_max_ms`")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "capasity = 5\n").unwrap();
        let err = parse(&["--config", file.to_str().unwrap()]).unwrap_err();
        assert!(err.contains("unknown field `capasity`"), "{err}");
    }
}
