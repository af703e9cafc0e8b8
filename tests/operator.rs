//! End-to-end: what the operator sees and where cordon acts, through the real binary. A closed
//! stdout, endless input, finding text holding control characters, the demo finding on AWS,
//! what `resume` reports, and journals sharing a folder (shared/cases rows 3, 4, 8, 10, 15, 17).

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{fixture_json, Cordon};
use serde_json::{json, Value};

const DEMO_EVENT: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";
const DEMO_INSTANCE: &str = "i-0961e0b3af8b3ec39";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd` with stdout a pipe whose reading end is already closed: every write to stdout
/// fails with EPIPE, as `cordon ... | head -1` does once `head` has its line.
fn with_closed_stdout(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    child.wait_with_output().unwrap()
}

/// Row 3: every command whose reader goes away exits quietly with 0, never a panic.
#[test]
fn every_command_exits_quietly_when_its_reader_closes() {
    let c = Cordon::new();
    let event = c.event("event.json", &fixture_json(DEMO_EVENT));
    c.ok(&["run", "--cloud", "sim"], 0);
    let id = c.run_of("isolate-ec2-instance")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let commands: &[&[&str]] = &[
        &["runs", "list"],
        &["runs", "list", "--json"],
        &["runs", "show", &id],
        &["runs", "show", &id, "--json"],
        &["explain", "--event", &event],
        &["explain", "--event", &event, "--json"],
        &["run", "--dry-run"],
        &[
            "run",
            "--cloud",
            "sim",
            "--event",
            &event,
            "--playbook",
            "isolate-ec2-instance",
        ],
        &["actions"],
        &["validate"],
        &["policy"],
        &["resume"],
        &["release", &id],
    ];
    for args in commands {
        let out = with_closed_stdout(c.command(args));
        assert_eq!(
            out.status.code(),
            Some(0),
            "cordon {args:?} with a closed stdout: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "cordon {args:?} says nothing");
    }
    // The release above did happen: only its report was lost.
    assert_eq!(c.run_of("isolate-ec2-instance")["state"], "released");
}

/// Row 4: reading an event stops at the size limit, from a file and from stdin. The process
/// runs under a 1 GiB address-space limit, so reading to the end would fail, not pass.
#[test]
fn endless_event_input_stops_at_the_size_limit() {
    let c = Cordon::new();
    let bin = env!("CARGO_BIN_EXE_cordon");
    let limited = |event: &str| {
        let mut cmd = Command::new("sh");
        cmd.current_dir(c.path())
            .args([
                "-c",
                "ulimit -v 1048576 && exec \"$0\" explain --event \"$1\"",
            ])
            .args([bin, event]);
        cmd
    };
    let started = Instant::now();
    let out = limited("/dev/zero").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "error: event /dev/zero is larger than 8388608 bytes; an EventBridge event is at most 256 KiB\n"
    );
    assert!(started.elapsed() < Duration::from_secs(20));

    let mut child = limited("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let block = vec![b' '; 1 << 16];
        // Ends when cordon stops reading and closes its end.
        while stdin.write_all(&block).is_ok() {}
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error: event stdin is larger than 8388608 bytes"),
        "{}",
        text(&out.stderr)
    );
}

/// Row 8 (CLI part): `run --cloud aws` with no `--event` refuses at once, with one line, and
/// writes nothing; no AWS credentials are anywhere in the environment.
#[test]
fn the_demo_finding_never_acts_on_aws() {
    let c = Cordon::new();
    let mut cmd = c.command(&["run", "--cloud", "aws"]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", c.path())
        .env("AWS_CONFIG_FILE", c.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            c.path().join("no-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let started = Instant::now();
    let out = cmd.output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: the built-in demo finding is for --cloud sim only; to act on AWS, give the finding: --event FILE (or - for stdin)\n"
    );
    assert!(!c.path().join(".cordon").exists(), "nothing was written");
}

/// Row 10: finding fields holding newlines, escape sequences, C1 controls and bidi overrides
/// are escaped in every human output and in text logs; JSON keeps the exact value; logs are
/// not coloured when stderr is not a terminal.
#[test]
fn finding_text_never_forges_lines_or_drives_the_terminal() {
    let c = Cordon::new();
    let forged = "2026-01-01T00:00:00.000Z  INFO cordon: all clear";
    let id = format!("evil\n{forged}\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m\r\u{202e}");
    let mut event = fixture_json(DEMO_EVENT);
    event["detail"]["id"] = json!(id);
    event["detail"]["title"] = json!(format!("title\u{1b}[31m\n{forged}"));
    let file = c.event("evil.json", &event);
    let clean = |what: &str, out: &[u8]| {
        let s = text(out);
        for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\r', '\u{202e}'] {
            assert!(!s.contains(bad), "{what}: raw {bad:?} in:\n{s}");
        }
        assert!(
            !s.lines().any(|l| l.starts_with(forged)),
            "{what}: a forged line in:\n{s}"
        );
        s
    };
    let explained = c.run(&["explain", "--event", &file]);
    let shown = clean("explain", &explained.stdout);
    assert!(
        shown.contains(r"evil\n2026-01-01T00:00:00.000Z  INFO cordon: all clear\u{1b}[2J"),
        "{shown}"
    );
    let ran = c.run(&["-vv", "run", "--cloud", "sim", "--event", &file]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    clean("run", &ran.stdout);
    let logs = clean("run logs", &ran.stderr);
    assert!(logs.contains(r"finding=evil\n2026"), "{logs}");
    clean("runs list", &c.run(&["runs", "list"]).stdout);
    let runs = c.json(&["runs", "list"], 0);
    assert_eq!(runs[0]["finding"], json!(id), "JSON keeps the exact value");
    let run_id = runs[0]["id"].as_str().unwrap().to_string();
    let show = c.run(&["-v", "runs", "show", &run_id]);
    clean("runs show", &show.stdout);
    clean("runs show logs", &show.stderr);
    let released = c.run(&["-vv", "release", &run_id]);
    clean("release", &released.stdout);
    clean("release logs", &released.stderr);
}

/// Row 15: `resume` after an approval timed out says which run and step, the default it
/// applied, and the state now; with nothing to do, it says so.
#[test]
fn resume_says_what_an_approval_timeout_did() {
    let c = Cordon::new();
    let pb = c.playbook_dir("t", "id: timed\ntitle: t\nversion: 1\nmode: approval\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: ask\n    action: approval\n    with: {timeout: 1s, default: deny}\n  - id: tell\n    action: notify.chat\n    with: {text: go}\n");
    c.ok(&["--playbooks", &pb, "run", "--cloud", "sim"], 0);
    let id = c.run_of("timed")["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1300));
    let out = c.run(&["--playbooks", &pb, "resume"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "a denied run exits 3: {stdout}");
    assert!(
        stdout.starts_with(&format!(
            "run {id} (timed) for finding 3aaf83ddd9c31405246fa1c62e3e034d: approval step ask timed out; its default (deny) was applied; run is denied\n"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("  ask ") && stdout.contains("denied"),
        "{stdout}"
    );
    let again = c.ok(&["--playbooks", &pb, "resume"], 0);
    assert_eq!(
        again,
        "nothing to resume: no unfinished run, and no approval past its timeout\n"
    );
}

fn instance_event(finding: &str, instance: &str) -> Value {
    let mut e = fixture_json(DEMO_EVENT);
    e["detail"]["id"] = json!(finding);
    e["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(instance);
    e
}

fn instances(c: &Cordon, journal: &str) -> Vec<String> {
    let w = common::world_at(&c.path().join(journal).join("sim-world.json"));
    let mut ids: Vec<String> = w["accounts"]["352283894008"]["regions"]["us-east-1"]["instances"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    ids.sort();
    ids
}

/// Row 17: two journals in one folder, running at once on `--cloud sim`, each keep their own
/// simulated world and cloud marker; a third journal there is accepted.
#[test]
fn journals_sharing_a_folder_each_own_their_world() {
    let c = Cordon::new();
    let a = c.event(
        "a.json",
        &instance_event("finding-a", "i-0aaaaaaaaaaaaaaaa"),
    );
    let b = c.event(
        "b.json",
        &instance_event("finding-b", "i-0bbbbbbbbbbbbbbbb"),
    );
    let spawn = |journal: &str, event: &str| {
        let mut cmd = c.command(&[
            "--journal",
            journal,
            "run",
            "--cloud",
            "sim",
            "--event",
            event,
        ]);
        // Slow simulated calls, so that the two runs overlap.
        cmd.env("CORDON_SIM_DELAY_MS", "30")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (one, two) = (spawn("state/j1", &a), spawn("state/j2", &b));
    for child in [one, two] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    assert_eq!(instances(&c, "state/j1"), ["i-0aaaaaaaaaaaaaaaa"]);
    assert_eq!(instances(&c, "state/j2"), ["i-0bbbbbbbbbbbbbbbb"]);
    for j in ["state/j1", "state/j2"] {
        assert_eq!(
            std::fs::read_to_string(c.path().join(j).join("cloud")).unwrap(),
            "sim"
        );
    }
    assert!(!c.path().join("state/cloud").exists());
    assert!(!c.path().join("state/sim-world.json").exists());
    c.ok(
        &[
            "--journal",
            "state/j3",
            "run",
            "--cloud",
            "sim",
            "--event",
            &a,
        ],
        0,
    );
    // Each journal releases in its own world.
    let runs = c.json(&["--journal", "state/j2", "runs", "list"], 0);
    let id = runs[0]["id"].as_str().unwrap();
    c.ok(&["--journal", "state/j2", "release", id], 0);
    assert_eq!(
        c.json(&["--journal", "state/j1", "runs", "list"], 0)[0]["state"],
        "succeeded"
    );
}

/// Row 17, existing users: a journal made before each journal owned its world (marker and
/// world in the parent folder, `.cordon/cloud` and `.cordon/sim-world.json`) takes them over,
/// so its runs can still be released.
#[test]
fn a_journal_from_before_takes_over_its_world() {
    let c = Cordon::new();
    c.ok(&["run", "--cloud", "sim"], 0);
    let id = c.run_of("isolate-ec2-instance")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (dir, base) = (c.path().join(".cordon/journal"), c.path().join(".cordon"));
    for name in ["cloud", "sim-world.json"] {
        std::fs::rename(dir.join(name), base.join(name)).unwrap();
    }
    c.ok(&["release", &id], 0);
    assert_eq!(c.run_of("isolate-ec2-instance")["state"], "released");
    assert!(!base.join("cloud").exists() && !base.join("sim-world.json").exists());
    let w = c.world();
    let groups = &w["accounts"]["352283894008"]["regions"]["us-east-1"]["instances"][DEMO_INSTANCE]
        ["interfaces"];
    let groups: Vec<&Value> = groups.as_object().unwrap().values().collect();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].as_array().unwrap().len(),
        1,
        "one group again: {w}"
    );
}
