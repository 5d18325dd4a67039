//! Secrets (the FPD key, the control token) taken from a file or the environment, so they need not sit
//! on the command line, where `ps` shows them to every user of the machine.
//!
//! **Invariant:** a secret comes from exactly one source; two sources at once are refused, naming both,
//! rather than one silently winning. A secret file must be non-empty and readable by its owner only.
//! **Boundary:** the value is kept in memory as given; `Debug` never prints it. Which flags and which
//! environment variables a tool reads, and what it calls the secret in messages, are the caller's
//! [`Sources`]; this module only applies the rules.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Largest secret file read; a secret is a line, so anything larger is the wrong file.
pub const SECRET_FILE_BYTES_MAX: u64 = 64 * 1024;

/// A secret value. `Debug` prints `Secret(..)`, so a logged config cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` equals the secret, in time that does not depend on where they first differ
    /// (only on the length), so a client cannot guess a token byte by byte from answer times.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let own = self.0.as_bytes();
        own.len() == candidate.len()
            && own
                .iter()
                .zip(candidate)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

/// Why a secret could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Two sources give the same secret.
    #[error("{first} and {second} both give the {what}; give it one way")]
    Twice {
        what: &'static str,
        first: &'static str,
        second: &'static str,
    },
    /// The file cannot be opened or read (or is not UTF-8).
    #[error("cannot read {flag} {}: {source}", path.display())]
    Unreadable {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file holds nothing but line ends.
    #[error("{flag} {} is empty", path.display())]
    EmptyFile { flag: &'static str, path: PathBuf },
    /// The file is larger than [`SECRET_FILE_BYTES_MAX`].
    #[error("{flag} {} is larger than {SECRET_FILE_BYTES_MAX} bytes; a secret is one line", path.display())]
    TooLarge { flag: &'static str, path: PathBuf },
    /// Other users can read the file, so the secret is not one.
    #[error("{flag} {} is readable by group or others (mode {mode:03o}); run chmod 600 on it", path.display())]
    Exposed {
        flag: &'static str,
        path: PathBuf,
        mode: u32,
    },
    /// The environment variable is set to nothing.
    #[error("{var} is set but empty")]
    EmptyEnv { var: &'static str },
    /// A control token that no client could send in an `Authorization` header.
    #[error("the control token from {from} must be printable ASCII without spaces")]
    BadToken { from: &'static str },
}

/// Where one secret may come from; at most one may be given.
#[derive(Debug)]
pub struct Sources<'a> {
    /// What the secret is, for messages ("FPD secret").
    pub what: &'static str,
    /// The value from the command line and its flag, when the tool still takes one there.
    pub argv: Option<(&'static str, &'a str)>,
    /// The file flag and the path it was given.
    pub file: (&'static str, Option<&'a Path>),
    /// The environment variable's name and value.
    pub env: (&'static str, Option<String>),
}

impl Sources<'_> {
    /// The secret from the one source given, `None` when none is.
    pub fn resolve(self) -> Result<Option<Secret>, SecretError> {
        let (file_flag, file) = self.file;
        let (var, env) = self.env;
        let given: Vec<&'static str> = [
            self.argv.map(|(flag, _)| flag),
            file.map(|_| file_flag),
            env.as_ref().map(|_| var),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let [first, second, ..] = given[..] {
            return Err(SecretError::Twice {
                what: self.what,
                first,
                second,
            });
        }
        if let Some((_, value)) = self.argv {
            return Ok(Some(Secret::new(value)));
        }
        if let Some(path) = file {
            return read_secret_file(file_flag, path).map(Some);
        }
        match env {
            Some(value) if value.is_empty() => Err(SecretError::EmptyEnv { var }),
            Some(value) => Ok(Some(Secret::new(value))),
            None => Ok(None),
        }
    }

    /// As [`Sources::resolve`], for a bearer token: also printable ASCII without spaces.
    pub fn resolve_token(self) -> Result<Option<Secret>, SecretError> {
        let from = match (self.file, self.argv) {
            ((flag, Some(_)), _) => flag,
            (_, Some((flag, _))) => flag,
            _ => self.env.0,
        };
        let token = self.resolve()?;
        if let Some(t) = &token
            && !t.expose().bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(SecretError::BadToken { from });
        }
        Ok(token)
    }
}

/// Reads a secret file: owner-only permissions, at most [`SECRET_FILE_BYTES_MAX`], trailing line ends
/// trimmed, not empty.
pub fn read_secret_file(flag: &'static str, path: &Path) -> Result<Secret, SecretError> {
    let unreadable = |source| SecretError::Unreadable {
        flag,
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // The mode of the file actually opened, not of whatever the path names a moment later.
    let meta = file.metadata().map_err(unreadable)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o044 != 0 {
        return Err(SecretError::Exposed {
            flag,
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = String::new();
    file.take(SECRET_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    if text.len() as u64 > SECRET_FILE_BYTES_MAX {
        return Err(SecretError::TooLarge {
            flag,
            path: path.to_owned(),
        });
    }
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(SecretError::EmptyFile {
            flag,
            path: path.to_owned(),
        });
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_secret_file_is_trimmed_and_must_be_private_and_non_empty() {
        let dir = tempfile::tempdir().unwrap();
        let good = file_with(dir.path(), "good", "s3cret\r\n\n", 0o600);
        assert_eq!(read_secret_file("--f", &good).unwrap().expose(), "s3cret");
        let inner_space = file_with(dir.path(), "space", " a b \n", 0o400);
        assert_eq!(
            read_secret_file("--f", &inner_space).unwrap().expose(),
            " a b "
        );
        let empty = file_with(dir.path(), "empty", "\n", 0o600);
        assert!(matches!(
            read_secret_file("--f", &empty),
            Err(SecretError::EmptyFile { .. })
        ));
        let open = file_with(dir.path(), "open", "s3cret", 0o644);
        let e = read_secret_file("--f", &open).unwrap_err();
        assert!(e.to_string().contains("mode 644"), "{e}");
        let missing = dir.path().join("missing");
        assert!(matches!(
            read_secret_file("--f", &missing),
            Err(SecretError::Unreadable { .. })
        ));
        let large = file_with(dir.path(), "large", &"x".repeat(70_000), 0o600);
        assert!(matches!(
            read_secret_file("--f", &large),
            Err(SecretError::TooLarge { .. })
        ));
    }

    #[test]
    fn two_sources_are_refused_naming_both() {
        let path = Path::new("/nonexistent");
        let e = Sources {
            what: "FPD secret",
            argv: Some(("--verify-fpd", "x")),
            file: ("--verify-fpd-file", Some(path)),
            env: ("OFD_MOCK_VERIFY_FPD", None),
        }
        .resolve()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--verify-fpd and --verify-fpd-file both give the FPD secret; give it one way"
        );
        let e = Sources {
            what: "control token",
            argv: None,
            file: ("--control-token-file", Some(path)),
            env: ("TOKEN", Some("t".into())),
        }
        .resolve()
        .unwrap_err();
        assert!(e.to_string().starts_with("--control-token-file and TOKEN"));
    }

    #[test]
    fn a_token_must_fit_in_a_header_and_matches_exactly() {
        let token = |v: &str| {
            Sources {
                what: "control token",
                argv: None,
                file: ("--control-token-file", None),
                env: ("TOKEN", Some(v.to_owned())),
            }
            .resolve_token()
        };
        assert!(matches!(token(""), Err(SecretError::EmptyEnv { .. })));
        assert!(matches!(token("a b"), Err(SecretError::BadToken { .. })));
        let t = token("abc").unwrap().unwrap();
        assert!(t.matches(b"abc"));
        assert!(!t.matches(b"abd") && !t.matches(b"ab") && !t.matches(b"abcd"));
        assert_eq!(format!("{t:?}"), "Secret(..)");
    }
}
