//! Command line and the plain configuration the library runs with.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

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
    pub verify_fpd: Option<String>,
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
    about = "Programmable mock OFD (FN-to-OFD exchange over TCP) with an HTTP control plane"
)]
pub struct Cli {
    /// Address of the OFD protocol listener.
    #[arg(long, default_value = "127.0.0.1:7777", env = "OFD_MOCK_LISTEN")]
    pub listen: SocketAddr,
    /// Address of the HTTP control plane.
    #[arg(long, default_value = "127.0.0.1:9000", env = "OFD_MOCK_CONTROL")]
    pub control: SocketAddr,
    /// Keep records in this SQLite file, so they survive restarts.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Recompute the emulator's HMAC FPD with this secret and reject forged documents (code 14).
    #[arg(long, value_name = "SECRET")]
    pub verify_fpd: Option<String>,
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

impl From<Cli> for Config {
    fn from(c: Cli) -> Self {
        Config {
            listen: c.listen,
            control: c.control,
            db: c.db,
            verify_fpd: c.verify_fpd,
            ofd_inn: c.ofd_inn,
            frame_len_max: c.frame_len_max as usize,
            read_timeout_ms: c.read_timeout_ms,
            write_timeout_ms: c.write_timeout_ms,
            connections_max: c.connections_max as usize,
            blackhole_hold_ms: c.blackhole_hold_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ports() {
        let cli = Cli::try_parse_from(["ofd-mock"]).unwrap();
        assert_eq!(Config::from(cli), Config::default());
        let cli = Cli::try_parse_from(["ofd-mock", "--listen", "127.0.0.1:0", "--db", "x.sqlite"])
            .unwrap();
        assert_eq!(cli.listen.port(), 0);
        assert!(Cli::try_parse_from(["ofd-mock", "--frame-len-max", "1"]).is_err());
        assert!(Cli::try_parse_from(["ofd-mock", "--bogus"]).is_err());
        assert!(Cli::try_parse_from(["ofd-mock", "--ofd-inn", "12345"]).is_err());
        assert!(Cli::try_parse_from(["ofd-mock", "--ofd-inn", "123456789012"]).is_ok());
    }
}
