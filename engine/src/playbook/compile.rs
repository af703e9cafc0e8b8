//! One playbook file: parse, check, compile. Collects every error it can, each with file, line
//! and field, rather than stopping at the first.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::bounds;
use super::locate::{locate, parse_path};
use super::raw::{RawInput, RawMode, RawOnError, RawPlaybook, RawStep};
use super::{Input, LoadError, Mode, OnError, ParamTemplate, Playbook, Step};
use crate::actions::{self, Action};
use crate::pattern;
use crate::script::{Sandbox, ScriptError};

/// Parameters every action takes: they choose the target account and region.
const TARGET_PARAMS: [&str; 2] = ["account", "region"];

pub(super) struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    sandbox: &'a Sandbox,
    errors: Vec<LoadError>,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        let line = locate(self.text, &parse_path(&field));
        self.errors.push(LoadError {
            file: self.file.to_string(),
            line,
            field,
            message: message.into(),
        });
    }

    /// A script error's line inside the playbook: the field's line plus the line within the
    /// script (block scalars start on the next line).
    fn script_err(&mut self, field: &str, e: &ScriptError) {
        self.err(field, format!("Rhai: {e}"));
    }

    fn script(&mut self, field: &str, src: &str) -> Option<crate::script::Script> {
        match self.sandbox.compile(src) {
            Ok(s) => Some(s),
            Err(e) => {
                self.script_err(field, &e);
                None
            }
        }
    }

    fn template(
        &mut self,
        field: &str,
        value: &Value,
        earlier: &[String],
        refs: &mut Vec<(String, String)>,
    ) -> ParamTemplate {
        match value {
            Value::String(s) if s.contains("${") => match self.sandbox.compile_template(s) {
                Ok(t) => {
                    refs.extend(t.step_refs().into_iter().map(|r| (field.to_string(), r)));
                    let _ = earlier;
                    ParamTemplate::Text(t)
                }
                Err(e) => {
                    self.script_err(field, &e);
                    ParamTemplate::Const(Value::Null)
                }
            },
            Value::Array(items) if contains_template(value) => ParamTemplate::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.template(&format!("{field}[{i}]"), v, earlier, refs))
                    .collect(),
            ),
            Value::Object(map) if contains_template(value) => ParamTemplate::Map(
                map.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            self.template(&format!("{field}.{k}"), v, earlier, refs),
                        )
                    })
                    .collect(),
            ),
            other => ParamTemplate::Const(other.clone()),
        }
    }
}

fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("${"),
        Value::Array(a) => a.iter().any(contains_template),
        Value::Object(m) => m.values().any(contains_template),
        _ => false,
    }
}

/// Compiles one playbook from its text. `file` is used in error messages. A leading UTF-8
/// byte-order mark is dropped, as YAML allows one at the start of a stream.
pub fn compile(file: &str, text: &str, sandbox: &Sandbox) -> Result<Playbook, Vec<LoadError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let raw: RawPlaybook = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => return Err(vec![yaml_error(file, text, &e)]),
    };
    let mut cx = Ctx {
        file,
        text,
        sandbox,
        errors: Vec::new(),
    };
    let playbook = build(&mut cx, raw, text);
    if cx.errors.is_empty() {
        Ok(playbook)
    } else {
        Err(cx.errors)
    }
}

/// serde_yaml knows the line; its message names the field path (`steps[0]: unknown field ...`).
fn yaml_error(file: &str, text: &str, e: &serde_yaml::Error) -> LoadError {
    let msg = e.to_string();
    let (field, message) = match msg.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (path.to_string(), rest.to_string()),
        _ => (String::new(), msg.clone()),
    };
    let line = e
        .location()
        .map(|l| l.line())
        .or_else(|| locate(text, &parse_path(&field)));
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    LoadError {
        file: file.to_string(),
        line,
        field: if field.is_empty() {
            "(document)".into()
        } else {
            field
        },
        message,
    }
}

fn build(cx: &mut Ctx<'_>, raw: RawPlaybook, text: &str) -> Playbook {
    let mode = match raw.mode {
        RawMode::Auto => Mode::Auto,
        RawMode::Approval => Mode::Approval,
        RawMode::Manual => Mode::Manual,
    };
    if !valid_id(&raw.id) {
        cx.err(
            "id",
            format!(
                "{:?} is not a playbook id: use 1-64 of a-z, 0-9 and '-'",
                raw.id
            ),
        );
    }
    let (mut pattern_json, mut pattern, mut when) = (None, None, None);
    match raw.trigger {
        Some(t) => {
            if let Some(p) = t.pattern {
                match pattern::compile(&p) {
                    Ok(c) => pattern = Some(c),
                    Err(e) => cx.err(
                        format!("trigger.match.{}", e.path)
                            .trim_end_matches('.')
                            .to_string(),
                        e.message.clone(),
                    ),
                }
                pattern_json = Some(p);
            } else if mode != Mode::Manual {
                cx.err(
                    "trigger.match",
                    "an auto or approval playbook needs an EventBridge event pattern",
                );
            }
            if let Some(src) = t.when {
                when = cx.script("trigger.when", &src);
            }
        }
        None if mode != Mode::Manual => cx.err(
            "trigger",
            "an auto or approval playbook needs a trigger with `match`",
        ),
        None => {}
    }
    let dedup = raw
        .dedup
        .and_then(|d| match cx.sandbox.compile_template(&d) {
            Ok(t) => Some(t),
            Err(e) => {
                cx.script_err("dedup", &e);
                None
            }
        });
    if raw.steps.is_empty() {
        cx.err("steps", "a playbook needs at least one step");
    }
    let steps = steps(cx, mode, raw.steps);
    let inputs = inputs(cx, mode, raw.inputs);
    Playbook {
        id: raw.id,
        title: raw.title,
        description: raw.description,
        version: raw.version.into_string(),
        mode,
        pattern_json,
        pattern,
        when,
        dedup,
        vars: Value::Object(raw.vars.into_iter().collect()),
        steps,
        inputs,
        file: cx.file.to_string(),
        source: text.to_string(),
    }
}

/// `inputs:`: manual playbooks only, each name a plain identifier.
fn inputs(cx: &mut Ctx<'_>, mode: Mode, raw: BTreeMap<String, RawInput>) -> Vec<Input> {
    if !raw.is_empty() && mode != Mode::Manual {
        cx.err(
            "inputs",
            "only manual playbooks take inputs (a finding starts the others)",
        );
    }
    raw.into_iter()
        .filter_map(|(name, r)| {
            if !super::inputs::valid_name(&name) {
                cx.err(
                    format!("inputs.{name}"),
                    format!("{name:?} is not an input name: use a-z, 0-9 and '_', starting with a letter"),
                );
                return None;
            }
            Some(Input {
                name,
                kind: r.kind,
                description: r.description,
            })
        })
        .collect()
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn steps(cx: &mut Ctx<'_>, mode: Mode, raw: Vec<RawStep>) -> Vec<Step> {
    let mut seen: Vec<String> = Vec::new();
    let all_ids: HashSet<String> = raw.iter().map(|s| s.id.clone()).collect();
    let mut waits = false;
    let mut out = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let at = format!("steps[{i}]");
        if !valid_id(&s.id) {
            cx.err(
                format!("{at}.id"),
                format!(
                    "{:?} is not a step id: use 1-64 of a-z, 0-9, '-' and '_'",
                    s.id
                ),
            );
        }
        if seen.contains(&s.id) {
            cx.err(
                format!("{at}.id"),
                format!("step id {:?} is used twice", s.id),
            );
        }
        let Some(action) = actions::find(&s.action) else {
            cx.err(
                format!("{at}.action"),
                format!(
                    "unknown action {:?}; known: {}",
                    s.action,
                    actions::ids().join(", ")
                ),
            );
            seen.push(s.id);
            continue;
        };
        check_params(cx, &at, action, &s.with);
        let mut refs = Vec::new();
        let with: Vec<(String, ParamTemplate)> = s
            .with
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    cx.template(&format!("{at}.with.{k}"), v, &seen, &mut refs),
                )
            })
            .collect();
        let when = s
            .when
            .as_deref()
            .and_then(|w| cx.script(&format!("{at}.when"), w));
        if let Some(w) = &when {
            refs.extend(w.step_refs().into_iter().map(|r| (format!("{at}.when"), r)));
        }
        for (field, r) in refs {
            if !seen.contains(&r) {
                let why = if all_ids.contains(&r) {
                    "runs later, so its output does not exist yet"
                } else {
                    "is not a step of this playbook"
                };
                cx.err(field, format!("refers to step {r:?}, which {why}"));
            }
        }
        let approve = s.approve || action.meta().id == actions::APPROVAL;
        waits |= approve;
        if s.approve && mode == Mode::Auto {
            cx.err(
                format!("{at}.approve"),
                "mode auto never waits for a human; use `mode: approval`",
            );
        }
        if action.meta().id == actions::APPROVAL {
            bounds::approval(cx, &at, &s.with);
        }
        let timeout = bounds::step_timeout(cx, &at, s.timeout.as_deref());
        let retry = bounds::retry(cx, &at, s.retry);
        let on_error = match s.on_error {
            Some(RawOnError::Continue) => OnError::Continue,
            _ => OnError::Fail,
        };
        seen.push(s.id.clone());
        out.push(Step {
            id: s.id,
            action,
            with,
            when,
            approve,
            timeout,
            retry,
            on_error,
        });
    }
    if mode == Mode::Approval && !waits {
        cx.err(
            "mode",
            "mode approval needs a step with `approve: true` or an `approval` step",
        );
    }
    out
}

fn check_params(
    cx: &mut Ctx<'_>,
    at: &str,
    action: &dyn Action,
    with: &serde_json::Map<String, Value>,
) {
    let meta = action.meta();
    for p in meta.params.iter().filter(|p| p.required) {
        if !with.contains_key(p.name) {
            cx.err(
                format!("{at}.with"),
                format!(
                    "action {} needs parameter `{}` ({})",
                    meta.id, p.name, p.description
                ),
            );
        }
    }
    for k in with.keys() {
        if !TARGET_PARAMS.contains(&k.as_str()) && !meta.params.iter().any(|p| p.name == k) {
            let accepted: Vec<&str> = meta
                .params
                .iter()
                .map(|p| p.name)
                .chain(TARGET_PARAMS)
                .collect();
            cx.err(
                format!("{at}.with.{k}"),
                format!(
                    "action {} has no parameter `{k}`; accepted: {}",
                    meta.id,
                    accepted.join(", ")
                ),
            );
        }
    }
}
