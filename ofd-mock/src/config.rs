//! Command line and the plain configuration the library runs with.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use tool_http::{Secret, SecretError, Sources};

/// Environment variable that may hold the `--verify-fpd` secret instead of the command line.
pub const ENV_VERIFY_FPD: &str = "OFD_MOCK_VERIFY_FPD";
/// Environment variable that may hold the control token instead of `--control-token-file`.
pub const ENV_CONTROL_TOKEN: &str = "OFD_MOCK_CONTROL_TOKEN";

/// Everything [`crate::serve`] needs; tests build it with [`Config::default`] and ports 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// OFD protocol listener.
    pub listen: SocketAddr,
    /// HTTP control plane listener.
    pub control: SocketAddr,
    /// SQLite file for the records; memory when absent.
    pub db: Option<PathBuf>,
    /// Secret of the emulator's FPD; when set, documents whose FPD does not match are rejected with code 14.
    pub verify_fpd: Option<Secret>,
    /// Bearer token every control request must carry; without one, the control plane binds loopback only.
    pub control_token: Option<Secret>,
    /// A control client must send its whole request head within this time (also the idle keep-alive timeout).
    pub header_read_timeout_ms: u64,
    /// INN the acknowledgements carry in tag 1017.
    pub ofd_inn: String,
    /// Largest message accepted, header included.
    pub frame_len_max: usize,
    /// How long a connection may take to deliver its message.
    pub read_timeout_ms: u64,
    /// How long writing the answer may take.
    pub write_timeout_ms: u64,
    /// Connections handled at once; more are closed at accept and counted as `over_capacity`.
    pub connections_max: usize,
    /// How long `blackhole` holds a connection before closing it.
    pub blackhole_hold_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7777)),
            control: SocketAddr::from(([127, 0, 0, 1], 9000)),
            db: None,
            verify_fpd: None,
            control_token: None,
            header_read_timeout_ms: 10_000,
            ofd_inn: DEFAULT_OFD_INN.to_owned(),
            frame_len_max: 65_536,
            read_timeout_ms: 10_000,
            write_timeout_ms: 10_000,
            connections_max: 256,
            blackhole_hold_ms: 300_000,
        }
    }
}

/// The INN in acknowledgements unless `--ofd-inn` says otherwise (a syntactically valid 10-digit INN).
pub const DEFAULT_OFD_INN: &str = "7704358518";

/// Command line of the `ofd-mock` binary.
#[derive(Debug, Parser)]
#[command(
    name = "ofd-mock",
    version,
    about = "Programmable mock OFD (FN-to-OFD exchange over TCP) with an HTTP control plane",
    after_help = "Environment: OFD_MOCK_VERIFY_FPD holds the FPD secret, OFD_MOCK_CONTROL_TOKEN the control token \
                  (each instead of its flag). A secret comes from one place only; two are refused (exit 2)."
)]
pub struct Cli {
    /// Address of the OFD protocol listener.
    #[arg(long, default_value = "127.0.0.1:7777", env = "OFD_MOCK_LISTEN")]
    pub listen: SocketAddr,
    /// Address of the HTTP control plane. Without a control token it must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:9000", env = "OFD_MOCK_CONTROL")]
    pub control: SocketAddr,
    /// Keep records in this SQLite file, so they survive restarts.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Recompute the emulator's HMAC FPD with this secret and reject forged documents (code 14).
    /// Visible in `ps`: prefer --verify-fpd-file or OFD_MOCK_VERIFY_FPD.
    #[arg(long, value_name = "SECRET")]
    pub verify_fpd: Option<String>,
    /// Read the --verify-fpd secret from this file (mode 600, trailing newline trimmed).
    #[arg(long, value_name = "PATH")]
    pub verify_fpd_file: Option<PathBuf>,
    /// Read a control token from this file (mode 600, trailing newline trimmed), or set
    /// OFD_MOCK_CONTROL_TOKEN. Then every control request needs `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "PATH")]
    pub control_token_file: Option<PathBuf>,
    /// A control client must send its whole request head within this time, milliseconds; an idle
    /// keep-alive connection is closed after the same time.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub header_read_timeout_ms: u64,
    /// OFD INN sent in tag 1017 of every acknowledgement.
    #[arg(long, default_value = DEFAULT_OFD_INN, value_parser = parse_inn)]
    pub ofd_inn: String,
    /// Largest accepted message in bytes, header included.
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(64..=16_777_216))]
    pub frame_len_max: u32,
    /// Read timeout per connection, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub read_timeout_ms: u64,
    /// Write timeout per connection, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub write_timeout_ms: u64,
    /// Most connections handled at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub connections_max: u32,
    /// How long blackhole mode holds a connection, milliseconds.
    #[arg(long, default_value_t = 300_000)]
    pub blackhole_hold_ms: u64,
}

/// An INN is 10 (organisation) or 12 (person) digits; anything else could not be encoded in tag 1017.
fn parse_inn(s: &str) -> Result<String, String> {
    if (s.len() == 10 || s.len() == 12) && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_owned())
    } else {
        Err("an INN is 10 or 12 digits".to_owned())
    }
}

impl Config {
    /// The configuration from the command line, with the secrets read from their file or from the
    /// environment (`env` looks a variable up; tests pass their own).
    pub fn resolve(cli: Cli, env: impl Fn(&str) -> Option<String>) -> Result<Config, SecretError> {
        let verify_fpd = Sources {
            what: "FPD secret",
            argv: cli.verify_fpd.as_deref().map(|v| ("--verify-fpd", v)),
            file: ("--verify-fpd-file", cli.verify_fpd_file.as_deref()),
            env: (ENV_VERIFY_FPD, env(ENV_VERIFY_FPD)),
        }
        .resolve()?;
        let control_token = Sources {
            what: "control token",
            argv: None,
            file: ("--control-token-file", cli.control_token_file.as_deref()),
            env: (ENV_CONTROL_TOKEN, env(ENV_CONTROL_TOKEN)),
        }
        .resolve_token()?;
        Ok(Config {
            listen: cli.listen,
            control: cli.control,
            db: cli.db,
            verify_fpd,
            control_token,
            header_read_timeout_ms: cli.header_read_timeout_ms,
            ofd_inn: cli.ofd_inn,
            frame_len_max: cli.frame_len_max as usize,
            read_timeout_ms: cli.read_timeout_ms,
            write_timeout_ms: cli.write_timeout_ms,
            connections_max: cli.connections_max as usize,
            blackhole_hold_ms: cli.blackhole_hold_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ports() {
        let cli = Cli::try_parse_from(["ofd-mock"]).unwrap();
        assert_eq!(Config::resolve(cli, |_| None).unwrap(), Config::default());
        let cli = Cli::try_parse_from(["ofd-mock", "--listen", "127.0.0.1:0", "--db", "x.sqlite"])
            .unwrap();
        assert_eq!(cli.listen.port(), 0);
        assert!(Cli::try_parse_from(["ofd-mock", "--frame-len-max", "1"]).is_err());
        assert!(Cli::try_parse_from(["ofd-mock", "--bogus"]).is_err());
        assert!(Cli::try_parse_from(["ofd-mock", "--ofd-inn", "12345"]).is_err());
        assert!(Cli::try_parse_from(["ofd-mock", "--ofd-inn", "123456789012"]).is_ok());
        assert!(Cli::try_parse_from(["ofd-mock", "--header-read-timeout-ms", "0"]).is_err());
    }

    fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<Config, SecretError> {
        let cli = Cli::try_parse_from(std::iter::once("ofd-mock").chain(args.iter().copied()))
            .expect("arguments parse");
        Config::resolve(cli, |k| {
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn secrets_come_from_argv_a_file_or_the_environment_but_one_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let file = file.to_str().unwrap();
        let fpd = |c: Config| c.verify_fpd.map(|s| s.expose().to_owned());
        assert_eq!(
            fpd(resolve(&["--verify-fpd", "argv"], &[]).unwrap()).as_deref(),
            Some("argv")
        );
        assert_eq!(
            fpd(resolve(&["--verify-fpd-file", file], &[]).unwrap()).as_deref(),
            Some("from-file")
        );
        assert_eq!(
            fpd(resolve(&[], &[(ENV_VERIFY_FPD, "env")]).unwrap()).as_deref(),
            Some("env")
        );
        let e = resolve(&["--verify-fpd-file", file], &[(ENV_VERIFY_FPD, "env")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("--verify-fpd-file and OFD_MOCK_VERIFY_FPD"),
            "{e}"
        );
        let e = resolve(&["--verify-fpd", "x", "--verify-fpd-file", file], &[]).unwrap_err();
        assert!(
            e.to_string().contains("--verify-fpd and --verify-fpd-file"),
            "{e}"
        );

        let token = |c: Config| c.control_token.map(|s| s.expose().to_owned());
        assert_eq!(
            token(resolve(&["--control-token-file", file], &[]).unwrap()).as_deref(),
            Some("from-file")
        );
        assert_eq!(
            token(resolve(&[], &[(ENV_CONTROL_TOKEN, "tok")]).unwrap()).as_deref(),
            Some("tok")
        );
        assert!(resolve(&["--control-token-file", file], &[(ENV_CONTROL_TOKEN, "t")]).is_err());
        // The token has no command-line flag of its own.
        assert!(Cli::try_parse_from(["ofd-mock", "--control-token", "t"]).is_err());
    }
}
