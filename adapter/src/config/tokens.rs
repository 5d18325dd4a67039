//! API tokens and allowed web origins: parsing every source (`--auth-token`, `ADAPTER_AUTH_TOKENS`,
//! `[[auth.token]]` tables, `--auth-tokens-file`) into one validated list.
//!
//! Invariant: no error message and no `Debug` text contains a secret; they name the token instead.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, invalid};

/// Shortest secret accepted: long enough that guessing over the network is hopeless.
const SECRET_CHARS_MIN: usize = 16;
/// A tokens file is a short list; a bound keeps a wrong path (a log, a disk image) from being read
/// whole.
const TOKENS_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// What a token may do: `pos` sells, reads and handles shifts; `admin` also runs operator actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Pos,
    Admin,
}

impl Role {
    fn parse(text: &str) -> Result<Role, String> {
        match text {
            "pos" => Ok(Role::Pos),
            "admin" => Ok(Role::Admin),
            other => Err(format!("role `{other}` is neither `pos` nor `admin`")),
        }
    }

    /// Whether a token of this role may use a route that needs `needed`: admin may do all pos may.
    pub fn may(self, needed: Role) -> bool {
        self == Role::Admin || needed == Role::Pos
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pos => "pos",
            Role::Admin => "admin",
        }
    }
}

/// One configured API token. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken {
    pub name: String,
    pub role: Role,
    pub secret: String,
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthToken({}:{:?}:***)", self.name, self.role)
    }
}

impl AuthToken {
    /// Parses `NAME:ROLE:SECRET`; the secret may itself contain colons.
    pub fn parse(text: &str) -> Result<AuthToken, ConfigError> {
        let mut parts = text.trim().splitn(3, ':');
        let (Some(name), Some(role), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("auth_token", "expected NAME:ROLE:SECRET"));
        };
        AuthToken::new(name, role, secret).map_err(|m| invalid("auth_token", m))
    }

    /// Validates the three parts, whatever source they came from.
    fn new(name: &str, role: &str, secret: &str) -> Result<AuthToken, String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(
                "the name must be non-empty ASCII letters, digits, `-`, `_` or `.`".to_owned(),
            );
        }
        let role = Role::parse(role)?;
        if secret.len() < SECRET_CHARS_MIN || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "the secret of `{name}` must be at least {SECRET_CHARS_MIN} visible ASCII characters"
            ));
        }
        Ok(AuthToken {
            name: name.to_owned(),
            role,
            secret: secret.to_owned(),
        })
    }
}

/// The `[auth]` section of the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    #[serde(default)]
    pub token: Vec<TokenTable>,
}

/// One `[[auth.token]]` table. `Debug` never shows the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenTable {
    pub name: String,
    pub role: String,
    pub secret: String,
}

impl std::fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenTable({}:{}:***)", self.name, self.role)
    }
}

/// Every token from every source, validated; a name or a secret given twice is an error, since
/// either would make the requester recorded in the journal ambiguous.
pub fn collect(
    flags: Vec<String>,
    tables: Vec<TokenTable>,
    file: Option<&Path>,
) -> Result<Vec<AuthToken>, ConfigError> {
    let mut tokens = flags
        .iter()
        .map(|t| AuthToken::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    for t in &tables {
        tokens.push(
            AuthToken::new(&t.name, &t.role, &t.secret).map_err(|m| invalid("auth.token", m))?,
        );
    }
    if let Some(path) = file {
        tokens.extend(read_tokens_file(path)?);
    }
    for (i, a) in tokens.iter().enumerate() {
        for b in &tokens[..i] {
            if a.name == b.name {
                return Err(invalid(
                    "auth_token",
                    format!("the name `{}` is given to two tokens", a.name),
                ));
            }
            if a.secret == b.secret {
                return Err(invalid(
                    "auth_token",
                    format!("tokens `{}` and `{}` have the same secret", b.name, a.name),
                ));
            }
        }
    }
    Ok(tokens)
}

/// Reads `NAME ROLE SECRET` lines; `#` starts a comment line, blank lines are skipped. A bad line is
/// named by `file:line`.
fn read_tokens_file(path: &Path) -> Result<Vec<AuthToken>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > TOKENS_FILE_BYTES_MAX {
        return Err(invalid(
            "auth_tokens_file",
            format!(
                "{} is {size} bytes; a tokens file has at most {TOKENS_FILE_BYTES_MAX}",
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let line_error = |line: usize, message: String| ConfigError::TokensFile {
        path: PathBuf::from(path),
        line,
        message,
    };
    let mut tokens = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, role, secret] = words[..] else {
            return Err(line_error(
                index + 1,
                format!("expected NAME ROLE SECRET, found {} words", words.len()),
            ));
        };
        tokens.push(AuthToken::new(name, role, secret).map_err(|m| line_error(index + 1, m))?);
    }
    Ok(tokens)
}

/// Validates `--allowed-origin` values: `scheme://host[:port]` as a browser sends it in `Origin`,
/// stored in lower case without a trailing slash.
pub fn origins(values: Vec<String>) -> Result<Vec<String>, ConfigError> {
    values
        .into_iter()
        .map(|v| {
            let origin = v.trim().trim_end_matches('/').to_ascii_lowercase();
            let host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            match host {
                Some(h) if !h.is_empty() && !h.contains('/') && h.is_ascii() => Ok(origin),
                _ => Err(invalid(
                    "allowed_origin",
                    format!("`{v}` is not an origin like http://host:port"),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_tokens_file_skips_comments_and_blank_lines() {
        let (_dir, path) = file_with(
            "# tills\n\ntill1 pos pos-secret-0123456789\n  ops admin admin-secret-0123456789  \n",
        );
        let tokens = collect(Vec::new(), Vec::new(), Some(&path)).unwrap();
        let names: Vec<_> = tokens.iter().map(|t| (t.name.as_str(), t.role)).collect();
        assert_eq!(names, [("till1", Role::Pos), ("ops", Role::Admin)]);
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line_without_its_secret() {
        let (_dir, path) =
            file_with("# x\ntill1 pos pos-secret-0123456789\nops root root-secret-0123456789\n");
        let err = collect(Vec::new(), Vec::new(), Some(&path))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "tokens file {}:3: role `root` is neither `pos` nor `admin`",
                path.display()
            )
        );
        let (_dir, path) = file_with("ops admin short\n");
        let err = collect(Vec::new(), Vec::new(), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(err.contains(":1: the secret of `ops`"), "{err}");
        assert!(!err.contains("short"), "{err}");
    }

    #[test]
    fn duplicate_names_and_secrets_across_sources_are_refused() {
        let flag = vec!["a:pos:same-secret-0123456789".to_owned()];
        let table = |name: &str, secret: &str| TokenTable {
            name: name.to_owned(),
            role: "admin".to_owned(),
            secret: secret.to_owned(),
        };
        let err = collect(
            flag.clone(),
            vec![table("b", "same-secret-0123456789")],
            None,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "setting `auth_token`: tokens `a` and `b` have the same secret"
        );
        let err = collect(flag, vec![table("a", "other-secret-0123456789")], None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "setting `auth_token`: the name `a` is given to two tokens"
        );
    }

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(
            origins(vec!["HTTP://Till.local:8080/".to_owned()]).unwrap(),
            ["http://till.local:8080"]
        );
        assert!(origins(vec!["till.local".to_owned()]).is_err());
        assert!(origins(vec!["http://till.local/app".to_owned()]).is_err());
    }
}
