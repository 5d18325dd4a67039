//! The committed JSON Schema is current, and every scenario file in the workspace loads.

use crate::workspace;

#[test]
fn committed_schema_is_current() {
    let path = workspace().join("scenarios/schema.json");
    let want = uat::schema::schema_json();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "scenarios/schema.json is stale; regenerate it with `UPDATE_SCHEMA=1 cargo test -p uat --test it schema`"
    );
}

#[test]
fn every_scenario_file_loads() {
    let scenarios = uat::dispatch::load_all(&[workspace().join("scenarios")])
        .expect("every scenario file is valid");
    assert!(
        scenarios
            .iter()
            .any(|s| s.file.scenario.tags.iter().any(|t| t == "ci"))
    );
}

#[test]
fn readme_example_is_a_valid_scenario() {
    let readme = std::fs::read_to_string(workspace().join("uat/README.md")).unwrap();
    let start = readme.find("```toml\n").expect("a toml example") + "```toml\n".len();
    let len = readme[start..].find("```").unwrap();
    let example = readme[start..start + len].to_owned();
    let sc =
        uat::load_str(std::path::Path::new("README.md"), example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sc.file.step.len(), 9);
    assert_eq!(
        sc.bins.iter().map(String::as_str).collect::<Vec<_>>(),
        ["adapter", "ofd-mock"]
    );
    // Every other complete example (the random kill snippet is a fragment) loads too.
    let mut rest = &readme[start + len..];
    let mut loaded = 0;
    while let Some(at) = rest.find("```toml\n") {
        let body = &rest[at + "```toml\n".len()..];
        let end = body.find("```").unwrap();
        if body.starts_with("[scenario]") {
            uat::load_str(std::path::Path::new("README.md"), body[..end].to_owned())
                .unwrap_or_else(|e| panic!("{e}"));
            loaded += 1;
        }
        rest = &body[end..];
    }
    assert_eq!(loaded, 1, "the chaos example");
    // The power-loss snippets are fragments; each must at least parse as TOML.
    assert!(readme.contains("### Power loss"));
}
