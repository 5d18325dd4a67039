//! Bad scenario files produce exact file:line:column errors (snapshot tested).

use std::path::Path;

/// Loads `text` as `bad.toml` and returns the error text (or "loaded" if it loaded).
fn check(text: &str) -> String {
    match uat::load_str(Path::new("bad.toml"), text.to_owned()) {
        Ok(_) => "loaded".to_owned(),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = "[scenario]\nname = \"bad\"\n\n[process.web]\ncommand = \"python3\"\nargs = [\"{{port.web}}\"]\n\n";

const CASES: &[(&str, &str)] = &[
    (
        "unknown key in a step",
        "[[step]]\nhttp = \"GET web /\"\nexpect.status = 200\nexpect.stauts = 200\n",
    ),
    ("unknown step kind", "[[step]]\nlaunch = \"web\"\n"),
    (
        "name then unknown kind",
        "[[step]]\nname = \"x\"\nlaunch = \"web\"\n",
    ),
    ("bad type", "[[step]]\nkill = \"web\"\nsignal = 9\n"),
    (
        "unknown signal",
        "[[step]]\nkill = \"web\"\nsignal = \"TERMINATE\"\n",
    ),
    ("bad duration", "[[step]]\nsleep = \"5 seconds\"\n"),
    (
        "missing wait timeout",
        "[[step]]\nwait_until = \"GET web /\"\nexpect.status = 200\n",
    ),
    (
        "unknown key in a nested step",
        "[[step]]\nrepeat = 2\n[[step.steps]]\nstart = \"web\"\nwait = true\n",
    ),
    ("unknown top-level table", "[[steps]]\nstart = \"web\"\n"),
    ("unknown check kind", "[[check]]\nexactly_twice = \"x\"\n"),
    (
        "unknown process",
        "[[step]]\nstart = \"web\"\n\n[[step]]\nstop = \"db\"\n",
    ),
    (
        "unknown template",
        "[[step]]\nhttp = \"GET web /{{recipt_id}}\"\n",
    ),
    ("bad request line", "[[step]]\nhttp = \"FETCH web /\"\n"),
    (
        "bad JSONPath",
        "[[step]]\nhttp = \"GET web /\"\ncapture.id = \"$..[\"\n",
    ),
    (
        "matcher with a bad key type",
        "[[step]]\nhttp = \"GET web /\"\nexpect.json = { \"$.n\" = { gte = \"zero\" } }\n",
    ),
    (
        "exactly_once without appends",
        "[[check]]\nexactly_once = \"receipts\"\nobserve = \"GET web /docs\"\nids = \"$[*].id\"\n",
    ),
    (
        "random kill as the last step",
        "[[step]]\nkill = \"web\"\nat = \"random\"\n",
    ),
    (
        "random kill before a step without a time limit",
        "[[step]]\nkill = \"web\"\nat = \"random\"\n\n[[step]]\nstart = \"web\"\n",
    ),
    (
        "unknown kill moment",
        "[[step]]\nkill = \"web\"\nat = \"later\"\n",
    ),
    (
        "within without at",
        "[[step]]\nkill = \"web\"\nwithin = \"1s\"\n",
    ),
    (
        "unknown key in chaos",
        "[chaos]\nduration = \"1s\"\ninterval = { min = \"1ms\", max = \"2ms\" }\nrate = 5\n",
    ),
    (
        "unknown key in a chaos action step",
        "[chaos]\nduration = \"1s\"\ninterval = { min = \"1ms\", max = \"2ms\" }\nliveness = { wait_until = \"GET web /\", timeout = \"1s\", expect.status = 200 }\n[[chaos.action]]\nname = \"k\"\nsteps = [{ kill = \"web\", signl = \"TERM\" }]\n",
    ),
    (
        "chaos rules",
        "[chaos]\nduration = \"0s\"\ninterval = { min = \"0ms\", max = \"2ms\" }\nliveness = { wait_until = \"GET web /\", timeout = \"1s\", expect.rows = [[0]] }\n[[chaos.action]]\nname = \"k\"\nweight = 0\nsteps = [{ kill = \"db\" }]\n[chaos.load]\nsteps = [{ start = \"web\" }]\n",
    ),
    (
        "power steps need a power-cut data directory",
        "[[step]]\npower_cut = \"web\"\n\n[[step]]\nfs_fail = \"web\"\nop = \"write\"\nerrno = \"EIO\"\ncount = 1\n",
    ),
    (
        "power-loss step rules",
        "[process.app]\ncommand = \"x\"\nargs = [\"{{data.app}}\", \"{{data.web}}\", \"{{data.nobody}}\"]\ndata_dir = { powercut = true }\n\n[[step]]\npower_cut = \"app\"\nmode = \"torn_write\"\n\n[[step]]\npower_cut = \"app\"\nfraction = 0.5\n\n[[step]]\nfs_fail = \"app\"\nop = \"fsync\"\nerrno = \"ENOSPC\"\ncount = 1\nprobability = 0.5\n\n[[step]]\ncrash_at_fsync = \"app\"\nn = 2\nsteps = [{ heal = \"app\" }]\n\n[[step]]\npower_cut = \"app\"\nat = \"random\"\n",
    ),
    (
        "unknown key in data_dir",
        "[process.app]\ncommand = \"x\"\ndata_dir = { powercut = true, size = 1 }\n",
    ),
    (
        "unknown key in a metric step",
        "[[step]]\nmetric = \"x_total\"\nport = \"web\"\nge = 1\n",
    ),
    (
        "metric step rules",
        "[[step]]\nmetric = \"2x\"\ngt = \"many\"\ninterval = \"1s\"\n\n[[step]]\nmetric = \"x\"\nport = \"nobody\"\nlt = \"{{never_saved}}\"\n",
    ),
    (
        "metric bound of a wrong type",
        "[[step]]\nmetric = \"x\"\nport = \"web\"\neq = true\n",
    ),
    (
        "adapter rules",
        "[process.adapter]\ncommand = \"{{bin.adapter}}\"\nargs = [\"--db\", \"a.db\", \"{{auth_header.root}}\"]\nenv = { ADAPTER_AUTH_TOKENS_FILE = \"t\" }\n",
    ),
    (
        "power_loss needs ids for http and a list",
        "[[check]]\npower_loss = \"sales\"\nobserve = \"GET web /items\"\nfiscal_ids = \"$.x\"\n",
    ),
];

#[test]
fn bad_files_name_file_line_and_column() {
    let mut out = String::new();
    for (title, body) in CASES {
        let err = check(&format!("{HEAD}{body}"));
        assert_ne!(err, "loaded", "{title} must not load");
        out.push_str(&format!("## {title}\n{err}\n\n"));
    }
    insta::assert_snapshot!("bad_files", out);
}

#[test]
fn a_good_file_loads() {
    let text = format!("{HEAD}[[step]]\nname = \"go\"\nstart = \"web\"\n");
    assert_eq!(check(&text), "loaded");
}
