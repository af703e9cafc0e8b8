//! The drill report as one self-contained HTML page for people: the verdict, the timeline drawn
//! as inline SVG (one lane per actor, one mark per event, coloured by outcome, the details in
//! each mark's tooltip), then the timeline, findings and expectations as tables.
//!
//! Everything from a finding or a scenario is attacker-controlled text: it is escaped for HTML
//! text and attributes (control characters dropped), and the page allows no script at all
//! (`Content-Security-Policy: default-src 'none'`), so nothing in a finding can run or load.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::report::{span, Report, TimelineLine};
use super::run::START_MS;

/// Lanes of the SVG, top to bottom: who acted.
const LANES: [&str; 5] = [
    "attacker",
    "drill",
    "responder",
    "cordon",
    "fault injection",
];
const WIDTH: u64 = 960;
const LEFT: u64 = 130;
const LANE_H: u64 = 36;

/// Text for HTML text nodes and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut o = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn lane(l: &TimelineLine) -> usize {
    match l.line.actor.as_str() {
        "attacker" => 0,
        "drill" => 1,
        "cordon" | "timeout" => 3,
        "fault injection" => 4,
        _ => 2,
    }
}

/// Red for what failed or what the attacker got away with, green for what worked, grey else.
fn colour(l: &TimelineLine) -> &'static str {
    let o = l.line.outcome.as_str();
    match l.line.actor.as_str() {
        "attacker" if o.starts_with("ALLOWED") => "#d9480f",
        "attacker" => "#2b8a3e",
        "fault injection" => "#e67700",
        _ if o.starts_with("failed") || o.starts_with("refused") => "#c92a2a",
        _ if o.starts_with("succeeded") || o.starts_with("released") => "#2b8a3e",
        _ => "#495057",
    }
}

/// The timeline as an SVG: time runs left to right from T+0 to the last event.
pub fn svg(r: &Report) -> String {
    let end = r
        .timeline
        .iter()
        .map(|l| l.line.at_ms.saturating_sub(START_MS))
        .max()
        .unwrap_or(0)
        .max(1000);
    let height = LANE_H * LANES.len() as u64 + 40;
    let x = |ms: u64| LEFT + (ms.saturating_sub(START_MS)) * (WIDTH - LEFT - 20) / end;
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"drill timeline\">\n<rect width=\"100%\" height=\"100%\" fill=\"#f8f9fa\"/>\n"
    );
    for (i, name) in LANES.iter().enumerate() {
        let y = 20 + LANE_H * i as u64 + LANE_H / 2;
        let _ = writeln!(
            o,
            "<text x=\"8\" y=\"{}\" font-family=\"sans-serif\" font-size=\"13\" fill=\"#212529\">{name}</text><line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ced4da\"/>",
            y + 4,
            WIDTH - 10
        );
    }
    for k in 0..=4u64 {
        let ms = end * k / 4;
        let xx = LEFT + ms * (WIDTH - LEFT - 20) / end;
        let anchor = if k == 4 { "end" } else { "middle" };
        let _ = writeln!(
            o,
            "<text x=\"{xx}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"11\" fill=\"#495057\" text-anchor=\"{anchor}\">T+{}</text>",
            height - 6,
            span(ms)
        );
    }
    for l in &r.timeline {
        let y = 20 + LANE_H * lane(l) as u64 + LANE_H / 2;
        let tip = format!(
            "{} {} {} {} {} {}: {}",
            l.at,
            l.line.event,
            l.line.playbook,
            l.line.step,
            l.line.account,
            l.line.resource,
            l.line.outcome
        );
        let _ = writeln!(
            o,
            "<circle cx=\"{}\" cy=\"{y}\" r=\"7\" fill=\"{}\" stroke=\"#212529\" stroke-width=\"1\"><title>{}</title></circle>",
            x(l.line.at_ms),
            colour(l),
            esc(&tip)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// A table; each row's cells are escaped as they are written (rows are borrowed, not copied:
/// a drill of 10,000 findings has some 90,000 timeline rows).
fn table<'r, R>(o: &mut String, head: &[&str], rows: impl Iterator<Item = R>)
where
    R: IntoIterator<Item = Cow<'r, str>>,
{
    o.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(o, "<th>{h}</th>");
    }
    o.push_str("</tr></thead><tbody>\n");
    for row in rows {
        o.push_str("<tr>");
        for cell in row {
            o.push_str("<td>");
            o.push_str(&esc(&cell));
            o.push_str("</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n");
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#212529;background:#fff}\
table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}\
td,th{border:1px solid #dee2e6;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#e9ecef}.pass{color:#237032}.fail{color:#c92a2a}\
.banner{background:#fff4e6;border:2px solid #d9480f;padding:8px;font-weight:bold}";

impl Report {
    /// One self-contained HTML page (no script, no external resource).
    pub fn html(&self) -> String {
        let mut o = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
        let _ = writeln!(
            o,
            "<title>Drill: {}</title><style>{STYLE}</style></head><body>",
            esc(&self.scenario)
        );
        let _ = writeln!(o, "<h1>Drill: {}</h1>", esc(&self.scenario));
        let met = self.expectations.iter().filter(|e| e.met).count();
        let (class, verdict) = if self.passed {
            ("pass", "PASSED")
        } else {
            ("fail", "FAILED")
        };
        let _ = writeln!(
            o,
            "<p class=\"{class}\"><strong>{verdict}</strong>: {met} of {} expectations met. Scenario <code>{}</code>, seed {}, {} mutating cloud calls.</p>",
            self.expectations.len(),
            esc(&self.file),
            self.seed,
            self.cloud_calls
        );
        let incomplete: Vec<_> = self
            .findings
            .iter()
            .filter(|f| !f.containment.starts_with("contained") && f.containment != "no run")
            .collect();
        if !incomplete.is_empty() {
            let _ = writeln!(
                o,
                "<p class=\"banner\">Containment NOT COMPLETE for {} finding(s): {}</p>",
                incomplete.len(),
                esc(&incomplete
                    .iter()
                    .map(|f| f.containment.as_str())
                    .collect::<Vec<_>>()
                    .join(" | "))
            );
        }
        o.push_str("<h2>Timeline</h2>\n");
        o.push_str(&svg(self));
        self.tables(&mut o);
        o.push_str("</body></html>\n");
        o
    }

    fn tables(&self, o: &mut String) {
        fn b(s: &str) -> Cow<'_, str> {
            Cow::Borrowed(s)
        }
        let rows = self.timeline.iter().map(|t| {
            let l = &t.line;
            [
                b(&t.at),
                b(&l.event),
                b(&l.playbook),
                b(&l.step),
                b(&l.account),
                b(&l.resource),
                b(&l.outcome),
                b(&l.actor),
            ]
        });
        let head = [
            "time", "event", "playbook", "step", "account", "resource", "outcome", "actor",
        ];
        table(o, &head, rows);
        o.push_str("<h2>Findings</h2>\n");
        let rows = self.findings.iter().map(|f| {
            [
                b(&f.finding),
                b(&f.kind),
                b(&f.account),
                b(&f.injected),
                b(f.time_to_first_action.as_deref().unwrap_or("none")),
                b(f.time_to_containment.as_deref().unwrap_or("not contained")),
                b(&f.containment),
                Cow::Owned(f.runs.join(", ")),
            ]
        });
        let head = [
            "finding",
            "type",
            "account",
            "injected",
            "first action",
            "containment (MTTC)",
            "containment state",
            "runs",
        ];
        table(o, &head, rows);
        o.push_str("<h2>Expectations</h2>\n");
        let rows = self.expectations.iter().map(|e| {
            let met = if e.met { "met" } else { "MISSED" };
            [b(met), b(&e.expectation), b(&e.at), b(&e.evidence)]
        });
        table(o, &["", "expectation", "checked", "evidence"], rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_text_cannot_become_markup() {
        let e = esc("<script>alert(1)</script>\"' onload=x &\u{1b}[31m");
        assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''));
        assert!(!e.contains('\u{1b}'));
        assert!(e.starts_with("&lt;script&gt;"), "{e}");
    }
}
