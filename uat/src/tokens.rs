//! The API tokens the runner gives every adapter it starts: a `pos` and an `admin` token with
//! secrets drawn fresh for each scenario run, written to 0600 files in the scenario folder (never
//! on a command line), and the `Authorization` header each request to an adapter carries.
//!
//! Invariant: a secret appears only in the files under [`AUTH_DIR`] and in the `Authorization`
//! header of requests to an adapter's port; `Debug` never shows it, and no message the runner
//! writes contains it. [`crate::leaks`] proves the product kept it that way too.
//!
//! Boundary: the route-to-role table below mirrors the adapter's only as far as it matters to a
//! black box: a route not listed as a POS route gets the admin token, which may do everything, so
//! a route the adapter opens to `pos` later still works; a route the table calls POS but the
//! adapter reserves for admin answers 403, which a scenario sees.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The folder (inside the scenario folder) holding the token files; the leak scan skips it.
pub const AUTH_DIR: &str = "auth";
/// The environment variable that names the adapter's tokens file (not its secrets).
pub const TOKENS_FILE_ENV: &str = "ADAPTER_AUTH_TOKENS_FILE";
/// Token names: not secret, so logs and the journal may name them freely.
pub const POS_NAME: &str = "uat-pos";
pub const ADMIN_NAME: &str = "uat-admin";

/// Roles the runner holds a token for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Pos,
    Admin,
}

impl Role {
    /// Parses the `NAME` of `{{auth_header.NAME}}`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "pos" => Some(Role::Pos),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pos => "pos",
            Role::Admin => "admin",
        }
    }
}

/// Routes the adapter serves to the `pos` role (path patterns, `*` one segment); the rest get the
/// admin token: sync, DLQ retry, resolve, backup, `/metrics`.
const POS_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/kkt/receipt"),
    ("GET", "/v1/kkt/receipt/*"),
    ("GET", "/v1/kkt/buffer/status"),
    ("GET", "/v1/kkt/buffer/dlq"),
    ("POST", "/v1/kkt/shift/open"),
    ("POST", "/v1/kkt/shift/close"),
    ("GET", "/v1/kkt/status"),
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("POST", "/api/v2/requests"),
    ("GET", "/api/v2/requests/*"),
];

/// The role a request to an adapter is sent with.
pub fn role_for(method: &str, path: &str) -> Role {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let pos = POS_ROUTES.iter().any(|(m, pattern)| {
        let want: Vec<&str> = pattern.split('/').collect();
        m.eq_ignore_ascii_case(method)
            && want.len() == segs.len()
            && want.iter().zip(&segs).all(|(w, s)| *w == "*" || w == s)
    });
    if pos { Role::Pos } else { Role::Admin }
}

/// One scenario run's tokens, the adapter ports they are sent to, and what the runner noticed
/// in the answers it received.
pub struct Auth {
    pos_secret: String,
    admin_secret: String,
    dir: PathBuf,
    /// Port names adapters listen on: only requests to these carry a token.
    adapter_ports: BTreeSet<String>,
    /// Answers that contained a secret: where, never the secret.
    answer_leaks: Mutex<Vec<String>>,
    answers_scanned: Mutex<u64>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Auth({POS_NAME}:pos:***, {ADMIN_NAME}:admin:***, ports {:?})",
            self.adapter_ports
        )
    }
}

/// 160 random bits as 40 hex digits: no character that any log or JSON encoder escapes, so a
/// leak shows up byte for byte.
fn fresh_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `text` to a new file only its owner may read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

impl Auth {
    /// Draws fresh secrets and writes `auth/tokens` (the adapter's `NAME ROLE SECRET` lines) and
    /// `auth/pos.header`, `auth/admin.header` (an `Authorization` line for `curl -H @FILE`).
    pub fn create(scenario_dir: &Path, adapter_ports: BTreeSet<String>) -> Result<Auth, String> {
        let dir = scenario_dir.join(AUTH_DIR);
        let shown = dir.display().to_string();
        let err = |e: std::io::Error| format!("{shown}: {e}");
        // A folder reused from an earlier run of the same name gets fresh secrets too.
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(err)?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(err)?;
        let auth = Auth {
            pos_secret: fresh_secret(),
            admin_secret: fresh_secret(),
            dir,
            adapter_ports,
            answer_leaks: Mutex::new(Vec::new()),
            answers_scanned: Mutex::new(0),
        };
        let tokens = format!(
            "# written by uat for one scenario run\n{POS_NAME} pos {}\n{ADMIN_NAME} admin {}\n",
            auth.pos_secret, auth.admin_secret
        );
        write_private(&auth.tokens_file(), &tokens).map_err(err)?;
        for role in [Role::Pos, Role::Admin] {
            let line = format!("Authorization: Bearer {}\n", auth.secret(role));
            write_private(&auth.header_file(role), &line).map_err(err)?;
        }
        Ok(auth)
    }

    /// The tokens file every adapter reads (through [`TOKENS_FILE_ENV`]).
    pub fn tokens_file(&self) -> PathBuf {
        self.dir.join("tokens")
    }

    /// The file holding the `Authorization` header line of `role`, for `{{auth_header.ROLE}}`.
    pub fn header_file(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.header", role.as_str()))
    }

    fn secret(&self, role: Role) -> &str {
        match role {
            Role::Pos => &self.pos_secret,
            Role::Admin => &self.admin_secret,
        }
    }

    /// Every secret with the name of its token, for the leak scan.
    pub fn secrets(&self) -> [(&'static str, &str); 2] {
        [
            (POS_NAME, &self.pos_secret),
            (ADMIN_NAME, &self.admin_secret),
        ]
    }

    /// The `Authorization` value for a request to port `port_name`, or None when no adapter
    /// listens there.
    pub fn bearer(&self, port_name: &str, method: &str, path: &str) -> Option<String> {
        self.adapter_ports
            .contains(port_name)
            .then(|| format!("Bearer {}", self.secret(role_for(method, path))))
    }

    /// Looks for a secret in an answer (its headers and body) as it arrives; `what` says which
    /// request it answered.
    pub fn scan_answer(&self, what: &str, headers: &reqwest::header::HeaderMap, body: &[u8]) {
        *self
            .answers_scanned
            .lock()
            .unwrap_or_else(|p| p.into_inner()) += 1;
        let mut found = Vec::new();
        for (name, secret) in self.secrets() {
            if crate::leaks::find(body, secret.as_bytes()).is_some() {
                found.push(format!(
                    "the body of the answer to {what} contains the secret of `{name}`"
                ));
            }
            for (h, v) in headers {
                if crate::leaks::find(v.as_bytes(), secret.as_bytes()).is_some() {
                    found.push(format!(
                        "header `{h}` of the answer to {what} contains the secret of `{name}`"
                    ));
                }
            }
        }
        if !found.is_empty() {
            self.answer_leaks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(found);
        }
    }

    /// The answers scanned so far and the leaks found in them.
    pub fn answer_findings(&self) -> (u64, Vec<String>) {
        let n = *self
            .answers_scanned
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let leaks = self
            .answer_leaks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (n, leaks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn pos_routes_get_the_pos_token_and_everything_else_admin() {
        assert_eq!(role_for("POST", "/v1/kkt/receipt"), Role::Pos);
        assert_eq!(role_for("GET", "/v1/kkt/receipt/r-1"), Role::Pos);
        assert_eq!(role_for("GET", "/v1/kkt/buffer/status?x=1"), Role::Pos);
        assert_eq!(
            role_for("POST", "/v1/kkt/buffer/sync?force=true"),
            Role::Admin
        );
        assert_eq!(role_for("POST", "/v1/kkt/buffer/dlq/retry"), Role::Admin);
        assert_eq!(role_for("POST", "/v1/kkt/receipt/r-1/resolve"), Role::Admin);
        assert_eq!(role_for("GET", "/metrics"), Role::Admin);
        assert_eq!(role_for("POST", "/v1/admin/backup"), Role::Admin);
    }

    #[test]
    fn secrets_are_fresh_private_and_never_in_debug_text() {
        let tmp = tempfile::tempdir().unwrap();
        let ports = BTreeSet::from(["adapter".to_owned()]);
        let a = Auth::create(tmp.path(), ports).unwrap();
        let tmp2 = tempfile::tempdir().unwrap();
        let c = Auth::create(tmp2.path(), BTreeSet::new()).unwrap();
        assert_ne!(a.pos_secret, c.pos_secret);
        assert_ne!(a.pos_secret, a.admin_secret);
        let mode = std::fs::metadata(a.tokens_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(a.tokens_file()).unwrap();
        assert!(text.contains(&format!("{POS_NAME} pos {}", a.pos_secret)));
        let debug = format!("{a:?}");
        assert!(!debug.contains(&a.pos_secret) && !debug.contains(&a.admin_secret));
        assert_eq!(
            a.bearer("adapter", "GET", "/metrics"),
            Some(format!("Bearer {}", a.admin_secret))
        );
        assert_eq!(a.bearer("ofd", "GET", "/metrics"), None);
    }
}
