//! Fixtures for the tools' integration tests, which start each tool's own binary: a secret file with a
//! given mode, a set of good and bad secret files named in arguments by placeholders, and a bounded
//! wait for a child to exit.
//!
//! **Boundary:** std only, nothing here starts a tool; each tool's tests keep their own spawn and
//! their own expectations.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Writes `text` to `dir/name` with permission bits `mode` and returns the path.
pub fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// The text of the secret files [`with_secret_files`] writes; a test checks that it never reaches a log.
pub const SECRET_TEXT: &str = "s3cret";

/// Writes a set of secret files into `dir` and returns `args` with their placeholders replaced by
/// their paths: `{secret}` (a good file, mode 600), `{empty}` (only a line end), `{open}` (readable by
/// group and others, mode 644) and `{dir}` (the directory itself, for a missing file).
pub fn with_secret_files(dir: &Path, args: &[&str]) -> Vec<String> {
    let text = format!("{SECRET_TEXT}\n");
    let paths = [
        ("{secret}", secret_file(dir, "secret", &text, 0o600)),
        ("{empty}", secret_file(dir, "empty", "\n", 0o600)),
        ("{open}", secret_file(dir, "open", &text, 0o644)),
        ("{dir}", dir.to_path_buf()),
    ];
    fill_paths(args, &paths)
}

/// `args` with every `{key}` of `paths` replaced by its path.
fn fill_paths(args: &[&str], paths: &[(&str, PathBuf)]) -> Vec<String> {
    args.iter()
        .map(|a| {
            paths.iter().fold((*a).to_owned(), |a, (key, path)| {
                a.replace(key, path.to_str().expect("utf-8 path"))
            })
        })
        .collect()
}

/// Waits (at most `wait_max`) for the child to exit on its own and returns its exit code; kills it and
/// panics when it does not exit in time or was killed by a signal.
pub fn exit_code(mut child: Child, wait_max: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().expect("an exit code");
        }
        if start.elapsed() > wait_max {
            let _ = child.kill();
            panic!("child {} still running after {wait_max:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_a_child_exit_code_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = secret_file(dir.path(), "s", "x\n", 0o600);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let filled = fill_paths(&["--f", "{s}/x", "{d}"], &[("{s}", file.clone())]);
        assert_eq!(filled[1], format!("{}/x", file.display()));
        assert_eq!(filled[2], "{d}");
        let filled = with_secret_files(dir.path(), &["{secret}", "{open}", "{dir}/missing"]);
        assert_eq!(std::fs::read_to_string(&filled[0]).unwrap(), "s3cret\n");
        let mode = std::fs::metadata(&filled[1]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(filled[2], format!("{}/missing", dir.path().display()));
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 2"])
            .spawn()
            .unwrap();
        assert_eq!(exit_code(child, Duration::from_secs(5)), 2);
    }
}
