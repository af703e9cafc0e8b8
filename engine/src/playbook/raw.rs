//! What a playbook author writes, exactly: serde structs that refuse unknown fields.
//! Nothing here is used by the runner; `compile` turns it into [`super::Playbook`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A playbook file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlaybook {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub version: VersionText,
    #[serde(default)]
    pub trigger: Option<RawTrigger>,
    pub mode: RawMode,
    #[serde(default)]
    pub dedup: Option<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// Typed inputs (manual playbooks).
    #[serde(default)]
    pub inputs: BTreeMap<String, RawInput>,
    pub steps: Vec<RawStep>,
}

/// One of `inputs:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInput {
    #[serde(rename = "type")]
    pub kind: super::inputs::InputType,
    #[serde(default)]
    pub description: String,
}

/// `version: 3` and `version: "1.2"` are both fine.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum VersionText {
    Number(serde_json::Number),
    Text(String),
}

impl VersionText {
    pub fn into_string(self) -> String {
        match self {
            VersionText::Number(n) => n.to_string(),
            VersionText::Text(s) => s,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrigger {
    /// An EventBridge event pattern.
    #[serde(rename = "match", default)]
    pub pattern: Option<Value>,
    /// A Rhai boolean script over `event` and `finding`.
    #[serde(default)]
    pub when: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawMode {
    Auto,
    Approval,
    Manual,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub id: String,
    pub action: String,
    #[serde(default, rename = "with")]
    pub with: serde_json::Map<String, Value>,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub approve: bool,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry: Option<RawRetry>,
    #[serde(default)]
    pub on_error: Option<RawOnError>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    pub attempts: u32,
    #[serde(default)]
    pub backoff: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawOnError {
    Fail,
    Continue,
}
