//! The JSON Schema of scenario files, generated from the serde types (committed as `scenarios/schema.json`).

use crate::model::ScenarioFile;

/// The schema as pretty JSON text with a trailing newline.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(ScenarioFile);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
