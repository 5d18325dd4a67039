//! The shipped example configuration (`deploy/adapter.example.toml`) against the adapter's own
//! configuration loader, so it cannot go stale: every key it sets must be accepted, every key the
//! adapter accepts must be documented in it, and an unedited copy must refuse to start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use adapter::config::{Cli, Config, LogFormat, Role, read_file};
use clap::CommandFactory;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/adapter.example.toml")
}

/// Loads `text` as a file through the same code as `--config`, then resolves it with no flag and no
/// environment variable, so the test sees the file alone.
fn resolve(text: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("adapter.toml");
    std::fs::write(&path, text).expect("write");
    let settings = read_file(&path).map_err(|e| e.to_string())?;
    Config::from_settings(settings).map_err(|e| e.to_string())
}

#[test]
fn the_example_configuration_documents_every_key_parses_and_refuses_its_placeholders() {
    let text = std::fs::read_to_string(example_path()).expect("deploy/adapter.example.toml");

    // Every setting of `adapter --help` appears, set or commented out, as `key =`.
    let mentions = |key: &str| {
        text.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
    };
    let missing: Vec<String> = Cli::command()
        .get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .filter(|id| !["config", "help", "version"].contains(&id.as_str()) && !mentions(id))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/adapter.example.toml does not document {missing:?}"
    );
    assert!(text.contains("[[auth.token]]"));

    // As shipped it parses (no unknown key) but refuses to start: first the placeholder secrets,
    // then the placeholder OFD address.
    read_file(&example_path()).expect("the example parses");
    let err = resolve(&text).unwrap_err();
    assert!(err.starts_with("setting `auth.token`"), "{err}");
    let mut n = 0;
    let with_secrets: String = text
        .lines()
        .map(|l| {
            if l.starts_with("secret = \"REPLACE ME") {
                n += 1;
                format!("secret = \"example-test-secret-{n}-0123456789\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_eq!(n, 2, "both placeholder secrets replaced");
    let err = resolve(&with_secrets).unwrap_err();
    assert!(err.starts_with("setting `ofd_addr`"), "{err}");

    let c = resolve(&with_secrets.replace("REPLACE-WITH-THE-OFD-HOST-AND-PORT", "ofd.test:7777"))
        .expect("the example with its placeholders filled resolves");
    assert_eq!(c.db, Path::new("/var/lib/fiscal-adapter/buffer.db"));
    assert!(c.listen.ip().is_loopback());
    assert!(!c.unsafe_synchronous_normal);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.shutdown_deadline, Duration::from_secs(10));
    assert_eq!(c.backlog_age_alarm, Duration::from_secs(3 * 24 * 3600));
    let tokens: Vec<_> = c
        .auth_tokens
        .iter()
        .map(|t| (t.name.as_str(), t.role))
        .collect();
    assert_eq!(tokens, [("till-1", Role::Pos), ("support", Role::Admin)]);
}
