//! Log output on stderr: `text` for people or `json` for collectors, colour only on a terminal.
//!
//! Boundary: the adapter writes no log file of its own. Whoever starts it (systemd, a shell, the
//! scenario runner) owns the file its stderr goes to, so there is nothing to reopen on SIGHUP.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` filters as usual; without it, `info` and above.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes written into a file or a journal make every line harder to read and search.
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        // Flattened, so a collector reads `$.method` rather than `$.fields.method`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::{Cli, Config, FileSettings, LogFormat};

    fn format_of(args: &[&str]) -> LogFormat {
        let cli = Cli::try_parse_from(std::iter::once("adapter").chain(args.iter().copied()))
            .expect("arguments parse");
        Config::resolve(cli).expect("valid").log_format
    }

    #[test]
    fn the_format_comes_from_the_flag_or_the_file_and_is_text_by_default() {
        assert_eq!(format_of(&[]), LogFormat::Text);
        assert_eq!(format_of(&["--log-format", "json"]), LogFormat::Json);
        let file: FileSettings = toml::from_str("log_format = \"json\"").expect("toml");
        assert_eq!(file.log_format, Some(LogFormat::Json));
        assert!(toml::from_str::<FileSettings>("log_format = \"xml\"").is_err());
        assert!(Cli::try_parse_from(["adapter", "--log-format", "xml"]).is_err());
    }
}
