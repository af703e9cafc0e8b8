//! `/cordon` (`POST /v1/chat/slack/commands`, form-encoded as Slack sends slash commands):
//! `run PLAYBOOK NAME=VALUE ...`, `list`, `status RUN`, `approve RUN [STEP]`,
//! `deny RUN [STEP]`, `release RUN`, `help`.
//!
//! Slack wants an answer within 3 s: decisions are recorded (durably) before the answer, and
//! the run goes on afterwards, its outcome posted to the channel; a release answers at once
//! and posts its outcome when done.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use cordon_engine::dispatch::DispatchError;
use cordon_engine::run::{Run, RunState, StepState};
use cordon_engine::runner::RunnerError;
use serde::Deserialize;

use super::{ephemeral, in_channel, Identity, Role, Slack};

/// The most runs `list` shows.
const LIST_MAX: usize = 20;

const HELP: &str = "*cordon* commands:\n\
• `/cordon run PLAYBOOK NAME=VALUE ...`: start a manual playbook with its inputs\n\
• `/cordon list`: the latest runs\n\
• `/cordon status RUN`: a run and its steps\n\
• `/cordon approve RUN [STEP]` / `/cordon deny RUN [STEP]`: decide a step waiting for approval\n\
• `/cordon release RUN`: undo a run's containment\n\
• `/cordon help`: this";

/// The fields of a slash command cordon reads (Slack sends more).
#[derive(Debug, Deserialize)]
struct Command {
    team_id: String,
    user_id: String,
    #[serde(default)]
    text: String,
}

/// `POST /v1/chat/slack/commands`.
pub async fn receive(State(s): State<Arc<Slack>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = s.refuse(&headers, &body) {
        return refused;
    }
    let cmd: Command = match serde_urlencoded::from_bytes(&body) {
        Ok(c) => c,
        Err(e) => {
            return ephemeral(&format!(
                "cordon could not read this command: {}",
                s.data(&e.to_string())
            ))
        }
    };
    let Some(who) = Identity::of(s.realm, &cmd.team_id, &cmd.user_id) else {
        return ephemeral("cordon could not read who is asking (team_id, user_id)");
    };
    execute(&s, &who, &cmd.text).await
}

/// Runs the command `text` for `who` (authenticated) and answers it.
pub(super) async fn execute(s: &Arc<Slack>, who: &Identity, text: &str) -> Response {
    let words: Vec<&str> = text.split_whitespace().collect();
    let role = match words.first().copied() {
        None | Some("help") => return ephemeral(HELP),
        Some("approve" | "deny") => Role::Approve,
        Some("run") => Role::Run,
        Some("release") => Role::Release,
        Some("list" | "status") => Role::Read,
        Some(other) => return ephemeral(&format!("Unknown command `{}`.\n{HELP}", s.data(other))),
    };
    if !s.may(who, role) {
        tracing::warn!(who = %who.by(), command = words[0], "Chat: refused, not in the access config");
        return ephemeral(&Slack::refusal(who, role));
    }
    match (words[0], &words[1..]) {
        ("list", []) => list(s).await,
        ("status", [run]) => status(s, run).await,
        ("approve", [run, step @ ..]) if step.len() <= 1 => {
            answer(decide(s, who, run, step.first().copied(), true).await)
        }
        ("deny", [run, step @ ..]) if step.len() <= 1 => {
            answer(decide(s, who, run, step.first().copied(), false).await)
        }
        ("release", [run]) => release(s, who, run).await,
        ("run", [playbook, args @ ..]) => super::manual::run(s, who, playbook, args).await,
        _ => ephemeral(&format!("Usage:\n{HELP}")),
    }
}

fn answer(result: Result<String, String>) -> Response {
    match result {
        Ok(text) => in_channel(&text),
        Err(text) => ephemeral(&text),
    }
}

async fn list(s: &Slack) -> Response {
    let journal = s.server.dispatcher.runner().journal();
    let ids = match journal.ids().await {
        Ok(ids) => ids,
        Err(e) => return ephemeral(&format!("journal: {}", s.data(&e.to_string()))),
    };
    let mut lines = Vec::new();
    for id in ids.iter().rev().take(LIST_MAX) {
        if let Ok(Some(r)) = journal.get(id).await {
            lines.push(format!(
                "• `{}` {} *{}* account {}",
                s.data(&r.id),
                s.data(&r.playbook),
                r.state.as_str(),
                s.data(&r.account)
            ));
        }
    }
    if lines.is_empty() {
        return ephemeral("No runs.");
    }
    ephemeral(&format!(
        "Latest runs (newest first):\n{}",
        lines.join("\n")
    ))
}

async fn status(s: &Slack, id: &str) -> Response {
    let run = match s.server.dispatcher.runner().journal().get(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return ephemeral(&format!("No run `{}`.", s.data(id))),
        Err(e) => return ephemeral(&format!("journal: {}", s.data(&e.to_string()))),
    };
    let steps: Vec<String> = run
        .steps
        .iter()
        .map(|st| {
            let by = st
                .decision
                .as_ref()
                .map(|d| {
                    format!(
                        " ({} by {})",
                        if d.approved { "approved" } else { "denied" },
                        s.data(&d.by)
                    )
                })
                .unwrap_or_default();
            format!(
                "• `{}` {} *{}*{by}",
                s.data(&st.id),
                s.data(&st.action),
                st.state.as_str()
            )
        })
        .collect();
    ephemeral(&format!(
        "Run `{}`: {} *{}*, account {}\n{}",
        s.data(&run.id),
        s.data(&run.playbook),
        run.state.as_str(),
        s.data(&run.account),
        steps.join("\n")
    ))
}

/// Records a decision; `Ok` is the message for the channel, `Err` the one for the asker. A
/// repeated request (a retry, a second click) finds the step decided and says by whom.
pub(super) async fn decide(
    s: &Arc<Slack>,
    who: &Identity,
    id: &str,
    step: Option<&str>,
    approve: bool,
) -> Result<String, String> {
    let run = load(s, id).await?;
    let step = match step {
        Some(st) => st.to_string(),
        None => waiting_step(s, &run)?,
    };
    let by = who.by();
    match s.server.dispatcher.decide(id, &step, approve, &by).await {
        Ok(state) => {
            tracing::info!(run_id = %id, step, approve, by, "Decision recorded from chat");
            // A partial approval changes no run state, so the dispatcher reports nothing: the
            // run's message must show it now.
            s.refresh(id).await;
            let word = if approve { "approved" } else { "denied" };
            let next = match state {
                RunState::Running => "; the run goes on".to_string(),
                // A step that needs more than one person: say how far it got.
                RunState::WaitingApproval if approve => s
                    .server
                    .dispatcher
                    .runner()
                    .load(id)
                    .await
                    .ok()
                    .and_then(|r| {
                        r.step(&step)
                            .map(|st| (st.approvals.len(), st.approvals_needed()))
                    })
                    .map(|(have, need)| {
                        format!("; {have} of {need} approvals, waiting for another approver")
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            Ok(format!(
                "Step `{}` of run `{}` {word} by {} ({}){next}.",
                s.data(&step),
                s.data(id),
                who.mention(),
                who.key()
            ))
        }
        Err(DispatchError::Runner(RunnerError::State(why))) => {
            let run = load(s, id).await?;
            match run.step(&step).and_then(|st| st.decision.as_ref()) {
                Some(d) => Err(format!(
                    "Step `{}` of run `{}` was already {} by {}; nothing changed.",
                    s.data(&step),
                    s.data(id),
                    if d.approved { "approved" } else { "denied" },
                    s.data(&d.by)
                )),
                None => Err(format!("Not decided: {}", s.data(&why))),
            }
        }
        Err(e) => Err(format!("Not decided: {}", s.data(&e.to_string()))),
    }
}

async fn release(s: &Arc<Slack>, who: &Identity, id: &str) -> Response {
    match start_release(s, who, id).await {
        Ok(()) => in_channel(&format!(
            "Releasing run `{}` for {}; the outcome follows here.",
            s.data(id),
            who.mention()
        )),
        Err(text) => ephemeral(&text),
    }
}

/// Starts releasing run `id` for `who` (a releaser) in a task that posts the outcome to the
/// channel; `Err` is the reason it cannot start, for the asker.
pub(super) async fn start_release(s: &Arc<Slack>, who: &Identity, id: &str) -> Result<(), String> {
    let run = load(s, id).await?;
    if !run.state.is_releasable() {
        return Err(format!(
            "Run `{}` is {}: nothing to release now.",
            s.data(id),
            run.state.as_str()
        ));
    }
    let (me, id, by, mention) = (s.clone(), run.id, who.by(), who.mention());
    tokio::spawn(async move {
        let text = match me.server.dispatcher.release(&id, &by).await {
            Ok(state) => {
                tracing::info!(run_id = %id, by, state = state.as_str(), "Release from Slack");
                format!(
                    "Run `{}` released by {mention}: now *{}*.",
                    me.data(&id),
                    state.as_str()
                )
            }
            Err(e) => format!(
                "Release of run `{}` by {mention} failed: {}",
                me.data(&id),
                me.data(&e.to_string())
            ),
        };
        me.say(&text).await;
    });
    Ok(())
}

async fn load(s: &Slack, id: &str) -> Result<Run, String> {
    match s.server.dispatcher.runner().journal().get(id).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(format!("No run `{}`.", s.data(id))),
        Err(e) => Err(format!("journal: {}", s.data(&e.to_string()))),
    }
}

fn waiting_step(s: &Slack, run: &Run) -> Result<String, String> {
    run.steps
        .iter()
        .find(|st| st.state == StepState::WaitingApproval)
        .map(|st| st.id.clone())
        .ok_or_else(|| {
            format!(
                "Run `{}` is {}: no step waits for a decision.",
                s.data(&run.id),
                run.state.as_str()
            )
        })
}
