//! Tidy checks over the whole workspace, in the spirit of rust-analyzer's `tidy.rs`: the dependency rules
//! (`*-api`/`*-proto` crates are leaves, no program depends on another, `uat` links none of the programs)
//! read from `cargo metadata`, and source conventions read from the files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Leaf libraries a `*-api` or `*-proto` crate may depend on (normal dependencies only).
const LEAF_ALLOWED: &[&str] = &[
    "serde",
    "serde_json",
    "rust_decimal",
    "thiserror",
    "encoding_rs",
    "crc",
    "hex",
    "hmac",
    "sha2",
    // Schema derives for the OpenAPI document (`docs/openapi.json`); no runtime, no IO.
    "utoipa",
];

/// Packages that ship a program. None may depend on another in `[dependencies]`.
const PROGRAMS: &[&str] = &[
    "adapter",
    "ofd-mock",
    "kkt-emulator",
    "uat",
    "ci",
    "powercut-fs",
];

/// What the black-box runner must never link, in any dependency kind.
const UAT_FORBIDDEN: &[&str] = &[
    "adapter",
    "ofd-mock",
    "kkt-emulator",
    "adapter-api",
    "powercut-fs",
];

struct Package {
    name: String,
    manifest: PathBuf,
    /// (dependency name, kind) where kind is "normal", "dev" or "build".
    deps: Vec<(String, String)>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn packages() -> Vec<Package> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    meta["packages"]
        .as_array()
        .expect("packages array")
        .iter()
        .map(|p| Package {
            name: p["name"].as_str().unwrap().to_owned(),
            manifest: PathBuf::from(p["manifest_path"].as_str().unwrap()),
            deps: p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                    (d["name"].as_str().unwrap().to_owned(), kind)
                })
                .collect(),
        })
        .collect()
}

#[test]
fn all_programs_and_leaf_crates_are_members() {
    let names: BTreeSet<String> = packages().into_iter().map(|p| p.name).collect();
    for expected in PROGRAMS
        .iter()
        .chain(&["adapter-api", "kkt-proto", "ofd-proto"])
    {
        assert!(
            names.contains(*expected),
            "workspace member {expected} is missing: {names:?}"
        );
    }
}

#[test]
fn leaf_crates_depend_only_on_small_leaf_libraries() {
    let mut violations = Vec::new();
    for p in packages() {
        if !(p.name.ends_with("-api") || p.name.ends_with("-proto")) {
            continue;
        }
        for (dep, kind) in &p.deps {
            if kind == "normal" && !LEAF_ALLOWED.contains(&dep.as_str()) {
                violations.push(format!("{} depends on {dep}", p.name));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "leaf crates must stay leaves (allowed: {LEAF_ALLOWED:?}):\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_program_depends_on_another_program() {
    let mut violations = Vec::new();
    for p in packages() {
        for (dep, kind) in &p.deps {
            if kind == "normal" && PROGRAMS.contains(&dep.as_str()) {
                violations.push(format!("{} depends on {dep} in [dependencies]", p.name));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn uat_drives_binaries_and_never_links_them() {
    let uat = packages()
        .into_iter()
        .find(|p| p.name == "uat")
        .expect("uat package");
    let linked: Vec<_> = uat
        .deps
        .iter()
        .filter(|(d, _)| UAT_FORBIDDEN.contains(&d.as_str()))
        .collect();
    assert!(
        linked.is_empty(),
        "uat links {linked:?}; it must treat them as black boxes"
    );
}

/// The names in the root manifest's `[workspace.dependencies]` table.
fn workspace_dependency_table() -> Vec<String> {
    let text = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let mut in_table = false;
    let mut names = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[workspace.dependencies]";
        } else if in_table
            && let Some((name, _)) = line.split_once('=')
            && !line.starts_with('#')
        {
            names.push(name.trim().to_owned());
        }
    }
    names
}

#[test]
fn every_workspace_dependency_is_used_by_a_member() {
    let used: BTreeSet<String> = packages()
        .into_iter()
        .flat_map(|p| p.deps.into_iter().map(|(d, _)| d))
        .collect();
    let table = workspace_dependency_table();
    assert!(
        table.iter().any(|d| d == "serde"),
        "the table parse found no serde in [workspace.dependencies]: {table:?}"
    );
    let unused: Vec<&String> = table.iter().filter(|d| !used.contains(*d)).collect();
    assert!(
        unused.is_empty(),
        "[workspace.dependencies] lists crates no member uses; remove them: {unused:?}"
    );
}

#[test]
fn every_member_inherits_workspace_lints() {
    let mut missing = Vec::new();
    for p in packages() {
        let text = std::fs::read_to_string(&p.manifest).unwrap();
        let normalized: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !normalized.contains("[lints] workspace = true") {
            missing.push(p.manifest.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "add `[lints] workspace = true` to: {missing:?}"
    );
}

/// Every tracked Rust source below the workspace root, skipping build output.
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&workspace_root(), &mut out);
    out.sort();
    out
}

#[test]
fn every_rust_file_starts_with_a_module_doc_line() {
    let files = rust_files();
    assert!(files.len() > 10, "the walk found too few files: {files:?}");
    let offenders: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| {
            f.strip_prefix(workspace_root())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "these files must start with a `//!` line saying what they are for: {offenders:?}"
    );
}

#[test]
fn only_the_http_layer_touches_the_api_types() {
    let src = workspace_root().join("adapter/src");
    let mut offenders = Vec::new();
    for f in rust_files().into_iter().filter(|f| f.starts_with(&src)) {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let in_http = rel.starts_with("http/") || rel == "http.rs";
        let text = std::fs::read_to_string(&f).unwrap();
        if !in_http && text.contains("adapter_api") {
            offenders.push(format!("{rel}: uses adapter_api outside adapter/src/http"));
        }
        let config = rel == "config.rs" || rel.starts_with("config/");
        let serde_derive = text.lines().any(|l| {
            l.trim_start().starts_with("#[derive(")
                && (l.contains("Serialize") || l.contains("Deserialize"))
        });
        if !in_http && !config && serde_derive {
            offenders.push(format!("{rel}: serde derive on an inner type"));
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

/// Two-file import circles still to cut, as (package, module, module); a circle cut here must leave
/// this list too, so it only shrinks.
const KNOWN_CIRCLES: &[(&str, &str, &str)] = &[
    // Validation encodes the receipt's commands once; the service split of issue #17 cuts it.
    ("adapter", "kkt::commands", "sale"),
];

/// The module path of a source file below `src` (`kkt/commands.rs` -> `kkt::commands`, `lib.rs` -> ``).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The paths a file names after `crate::` and `super::` (resolved to absolute module paths), outside
/// comments and its inline `tests` module. A brace group contributes each of its items' paths.
fn referenced_paths(text: &str, module: &str, is_mod_file: bool) -> Vec<Vec<String>> {
    let code: String = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let parent: Vec<String> = {
        let mut p: Vec<String> = module
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        // `super` of `a/b.rs` and of `a/b/mod.rs` (both module a::b) is `a`.
        let _ = is_mod_file;
        p.pop();
        p
    };
    let ident = |s: &str| -> (String, usize) {
        let n = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        (s[..n].to_owned(), n)
    };
    let mut out = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut path = base.clone();
            let mut s = rest;
            loop {
                if let Some(group) = s.strip_prefix('{') {
                    // Each top-level item of the group, by its leading segments.
                    let end = group.find('}').unwrap_or(group.len());
                    for item in group[..end].split(',') {
                        let mut p = path.clone();
                        for seg in item.trim().split("::") {
                            let (id, n) = ident(seg);
                            if id.is_empty() || n != seg.len() {
                                if !id.is_empty() {
                                    p.push(id);
                                }
                                break;
                            }
                            p.push(id);
                        }
                        out.push(p);
                    }
                    break;
                }
                let (id, n) = ident(s);
                if id.is_empty() {
                    break;
                }
                path.push(id);
                s = &s[n..];
                match s.strip_prefix("::") {
                    Some(next) => s = next,
                    None => break,
                }
            }
            if !path.is_empty() {
                out.push(path);
            }
        }
    }
    out
}

/// Which module files of each package name which other module files (`crate::`/`super::` paths).
type ModuleDeps = std::collections::BTreeMap<String, BTreeSet<String>>;

fn module_deps() -> Vec<(String, ModuleDeps, usize)> {
    let mut out = Vec::new();
    for p in packages() {
        let src = p.manifest.parent().unwrap().join("src");
        let files: Vec<PathBuf> = rust_files()
            .into_iter()
            .filter(|f| f.starts_with(&src))
            .collect();
        let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
        let mut deps = ModuleDeps::default();
        for f in &files {
            let module = module_of(&src, f);
            let is_mod_file = f.file_name().is_some_and(|n| n == "mod.rs");
            let text = std::fs::read_to_string(f).unwrap();
            for path in referenced_paths(&text, &module, is_mod_file) {
                // The longest prefix of the path that is a module file.
                let target = (1..=path.len())
                    .rev()
                    .map(|k| path[..k].join("::"))
                    .find(|m| modules.contains(m));
                if let Some(t) = target
                    && t != module
                {
                    deps.entry(module.clone()).or_default().insert(t);
                }
            }
        }
        out.push((p.name.clone(), deps, modules.len()));
    }
    out
}

#[test]
fn no_two_modules_import_each_other() {
    let mut circles = BTreeSet::new();
    let mut modules_seen = 0;
    for (package, deps, modules) in module_deps() {
        modules_seen += modules;
        for (a, targets) in &deps {
            for b in targets {
                let nested = b.starts_with(&format!("{a}::")) || a.starts_with(&format!("{b}::"));
                if a < b && !nested && deps.get(b).is_some_and(|t| t.contains(a)) {
                    circles.insert((package.clone(), a.clone(), b.clone()));
                }
            }
        }
    }
    assert!(
        modules_seen > 50,
        "the walk found only {modules_seen} modules"
    );
    let known: BTreeSet<(String, String, String)> = KNOWN_CIRCLES
        .iter()
        .map(|(p, a, b)| ((*p).to_owned(), (*a).to_owned(), (*b).to_owned()))
        .collect();
    let new: Vec<_> = circles.difference(&known).collect();
    let cut: Vec<_> = known.difference(&circles).collect();
    assert!(
        new.is_empty(),
        "these modules import each other (package, a, b); give the shared part one home: {new:?}"
    );
    assert!(
        cut.is_empty(),
        "these circles are gone; remove them from KNOWN_CIRCLES: {cut:?}"
    );
}

/// The adapter's layers, as (module, module it must never name): the fiscal-document model and the
/// KKT driver know nothing of storage or the service, the journal nothing of devices or the edge.
const FORBIDDEN_REACHES: &[(&str, &str)] = &[
    ("fiscal", "journal"),
    ("fiscal", "kkt"),
    ("fiscal", "service"),
    ("fiscal", "sync"),
    ("fiscal", "http"),
    ("kkt", "journal"),
    ("kkt", "service"),
    ("kkt", "sync"),
    ("kkt", "http"),
    ("journal", "kkt"),
    ("journal", "service"),
    ("journal", "sync"),
    ("journal", "http"),
    ("service", "http"),
    ("sync", "http"),
    ("http", "kkt"),
    ("http", "journal"),
];

#[test]
fn adapter_layers_point_one_way() {
    let (_, deps, _) = module_deps()
        .into_iter()
        .find(|(name, _, _)| name == "adapter")
        .expect("the adapter package");
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let mut found = BTreeSet::new();
    for (from, targets) in &deps {
        for to in targets {
            if FORBIDDEN_REACHES.contains(&(top(from).as_str(), top(to).as_str())) {
                found.insert((from.clone(), to.clone()));
            }
        }
    }
    // The rule sees real edges: the driver's reads build fiscal documents.
    assert!(
        deps.get("kkt::ops").is_some_and(|t| t.contains("fiscal")),
        "the walk no longer sees kkt::ops -> fiscal"
    );
    assert!(
        found.is_empty(),
        "these modules reach across a layer (module, target); go through the service: {found:?}"
    );
}

/// Names of seeded generators other than the workspace's one (rand_chacha's `ChaCha8Rng`): rand's
/// standard and small generators, whose streams rand does not promise to keep across versions, and
/// hand-written SplitMix types. Spelled in halves so that this file does not name them itself.
const OTHER_GENERATORS: &[&str] = &[concat!("Std", "Rng"), concat!("Small", "Rng")];
const SPLITMIX: &str = concat!("Split", "Mix");
/// SplitMix's increment (the 64-bit golden ratio), lower case without separators: the mark of a
/// hand-written generator whatever it is called.
const SPLITMIX_INCREMENT: &str = concat!("9e3779b9", "7f4a7c15");

/// Every line of `text` that names another seeded generator, defines a SplitMix type or carries
/// SplitMix's increment, as `line N: text`.
fn other_generators(text: &str) -> Vec<String> {
    let defines_splitmix = |line: &str| {
        ["struct ", "enum ", "type ", "trait "]
            .iter()
            .any(|kw| line.contains(&format!("{kw}{SPLITMIX}")))
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            OTHER_GENERATORS.iter().any(|name| line.contains(name))
                || defines_splitmix(line)
                || line
                    .replace('_', "")
                    .to_ascii_lowercase()
                    .contains(SPLITMIX_INCREMENT)
        })
        .map(|(n, line)| format!("line {}: {}", n + 1, line.trim()))
        .collect()
}

#[test]
fn the_generator_rule_catches_each_kind_of_violation() {
    let bad = [
        format!("let rng = {}::seed_from_u64(7);", OTHER_GENERATORS[0]),
        format!("    noise: rand::rngs::{},", OTHER_GENERATORS[1]),
        format!("pub(crate) struct {SPLITMIX}64(u64);"),
        format!("z = z.wrapping_add(0x{}_{});", "9E37_79B9", "7F4A_7C15"),
    ];
    for line in &bad {
        let text = format!("//! A module.\n\nfn f() {{}}\n{line}\n");
        assert_eq!(
            other_generators(&text),
            vec![format!("line 4: {}", line.trim())],
            "{line}"
        );
    }
    let good = "use rand_chacha::ChaCha8Rng;\nlet rng = ChaCha8Rng::seed_from_u64(7);\n";
    assert!(other_generators(good).is_empty());
}

#[test]
fn one_seeded_generator() {
    let files = rust_files();
    assert!(files.len() > 10, "the walk found too few files: {files:?}");
    let mut naming_chacha = 0;
    let mut offenders = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        naming_chacha += usize::from(text.contains("ChaCha8Rng"));
        let rel = f
            .strip_prefix(workspace_root())
            .unwrap()
            .display()
            .to_string();
        offenders.extend(
            other_generators(&text)
                .into_iter()
                .map(|l| format!("{rel}: {l}")),
        );
    }
    // The walk reaches the crates that draw seeded numbers (ofd-mock, powercut-fs, uat, the
    // emulator, the adapter's backoff).
    assert!(
        naming_chacha >= 5,
        "only {naming_chacha} files name ChaCha8Rng: the walk misses the seeded code"
    );
    assert!(
        offenders.is_empty(),
        "a seeded stream must come from rand_chacha::ChaCha8Rng, whose stream is portable and \
         stable, so a seed replays the same run after an upgrade:\n{}",
        offenders.join("\n")
    );
}
