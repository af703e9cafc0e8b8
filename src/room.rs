//! The room of `cordon drill --interactive`: the facilitator types the room's decisions at a
//! terminal. Everything shown comes from findings (attacker-controlled) and goes through
//! [`crate::out`], which escapes control characters.

use std::io;

use cordon_simulator::drill::report::at;
use cordon_simulator::drill::room::{ApprovalAsk, FindingAsk, Room, Verdict};
use serde_json::Value;

use crate::out::{self, outln};
use crate::render::param;

/// A [`Room`] on this process's terminal: questions on stdout, answers from stdin, one line each.
pub struct Terminal {
    input: io::Stdin,
}

impl Terminal {
    /// The room at this terminal.
    pub fn new() -> Terminal {
        Terminal { input: io::stdin() }
    }

    /// One line typed, trimmed; `None` at end of input or when the terminal went away.
    fn answer(&mut self, question: &str) -> Option<String> {
        out::prompt(question).ok()?;
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim().to_string()),
        }
    }

    /// Asks until the answer is yes or no.
    fn yes_no(&mut self, question: &str) -> Option<bool> {
        loop {
            match self.answer(question)?.to_ascii_lowercase().as_str() {
                "y" | "yes" => return Some(true),
                "n" | "no" => return Some(false),
                _ => self.say("answer y or n"),
            }
        }
    }

    /// Asks the decision, then who made it: default `room` for a finding; a person's name for
    /// an approval (approvals are counted per person: an anonymous one would pass the
    /// two-person rule).
    fn verdict(&mut self, question: &str, named: bool) -> Option<Verdict> {
        let go = self.yes_no(question)?;
        loop {
            let by = self.answer(if named {
                "Who decides? (a name) "
            } else {
                "Who decides? [room] "
            })?;
            match (by.is_empty(), named) {
                (false, _) => return Some(Verdict { go, by }),
                (true, false) => {
                    return Some(Verdict {
                        go,
                        by: "room".into(),
                    })
                }
                (true, true) => self.say("a name is required: approvals are counted per person"),
            }
        }
    }

    fn say(&mut self, text: &str) {
        let _ = outln!("{text}");
    }
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal::new()
    }
}

impl Room for Terminal {
    fn finding(&mut self, ask: &FindingAsk<'_>) -> Option<Verdict> {
        let f = ask.finding;
        self.say("");
        self.say(&format!("== {}: a finding arrives ==", ask.at));
        self.say(&format!(
            "{} (severity {}) in account {}, {}",
            f.kind, f.severity, f.account, f.region
        ));
        for r in &f.resources {
            self.say(&format!("  resource: {} ({})", r.id, r.kind));
        }
        self.say("cordon is about to start:");
        for p in ask.proposed {
            let mode = serde_json::to_value(p.plan.mode).unwrap_or(Value::Null);
            self.say(&format!(
                "  {} ({}), because {}",
                p.plan.playbook,
                mode.as_str().unwrap_or("?"),
                p.why
            ));
            for (n, s) in p.plan.steps.iter().enumerate() {
                let approval = if s.approve {
                    " [waits for approval]"
                } else {
                    ""
                };
                let when = s
                    .when
                    .as_deref()
                    .map(|w| format!(" when {w}"))
                    .unwrap_or_default();
                self.say(&format!(
                    "    {}. {} {}{approval}{when}",
                    n + 1,
                    s.id,
                    s.action
                ));
                for (k, v) in s.params.as_object().into_iter().flatten() {
                    self.say(&format!("         {k}: {}", param(v)));
                }
            }
        }
        self.verdict("Let cordon act? [y/n] ", false)
    }

    fn approval(&mut self, ask: &ApprovalAsk<'_>) -> Option<Verdict> {
        let (run, step) = (ask.run, ask.step);
        self.say("");
        self.say(&format!("== {}: approval needed ==", ask.at));
        self.say(&format!(
            "run {} of {} in account {} waits at step {} ({})",
            run.id, run.playbook, run.account, step.id, step.action
        ));
        for (k, v) in step.params.iter().flat_map(|p| p.as_object()).flatten() {
            self.say(&format!("  {k}: {}", param(v)));
        }
        let so_far: Vec<&str> = step.approvals.iter().map(|d| d.by.as_str()).collect();
        self.say(&format!(
            "  approvals: {} of {}{}",
            so_far.len(),
            step.approvals_needed(),
            if so_far.is_empty() {
                String::new()
            } else {
                format!(" ({})", so_far.join(", "))
            }
        ));
        if let Some(d) = step.deadline_ms {
            self.say(&format!(
                "  deadline: {} (then the step's default applies)",
                at(d)
            ));
        }
        self.verdict("Approve? [y/n] ", true)
    }

    fn tell(&mut self, text: &str) {
        self.say(text);
    }
}
