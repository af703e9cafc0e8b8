//! `cordon drill --interactive` through a pseudo-terminal, as a facilitator would use it: the
//! drill stops at each injected finding and each waiting approval, shows the plan, takes the
//! room's answers, and the report names who decided what.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `cordon ARGS` with a pseudo-terminal as stdin, stdout and stderr, and what it printed so far.
struct Session {
    child: Child,
    master: File,
    seen: Arc<Mutex<String>>,
    /// How much of `seen` the last `expect` consumed.
    read: usize,
}

impl Session {
    fn start(args: &[&str], dir: &Path) -> Session {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("a UTF-8 pty path"))
            .expect("open the pty's terminal side");
        let child = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("cordon starts");
        let master = File::from(master);
        let seen = Arc::new(Mutex::new(String::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child closed the terminal: the end.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).replace('\r', "");
                sink.lock().unwrap().push_str(&text);
            }
        });
        Session {
            child,
            master,
            seen,
            read: 0,
        }
    }

    /// Waits until `text` appears after what the last call consumed; returns what came before it.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let seen = self.seen.lock().unwrap();
                if let Some(at) = seen[self.read..].find(text) {
                    let before = seen[self.read..self.read + at].to_string();
                    self.read += at + text.len();
                    return before;
                }
                assert!(
                    Instant::now() < deadline,
                    "no {text:?} in:\n{}",
                    &seen[self.read..]
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answer(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\n").unwrap();
    }

    /// The exit code, and everything printed.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        // The reader thread sees the terminal close shortly after.
        std::thread::sleep(Duration::from_millis(200));
        let seen = self.seen.lock().unwrap().clone();
        (status.code(), seen)
    }
}

/// A copy of the shipped fence-member-account drill whose expectations hold when the room
/// approves at once: it names the repository's playbooks and fixture by absolute path.
fn fence_scenario(dir: &Path) -> PathBuf {
    let shipped =
        std::fs::read_to_string(root().join("playbooks/drills/fence-member-account.yaml"))
            .unwrap()
            .replace(
                "../../tests/fixtures",
                &root().join("tests/fixtures").display().to_string(),
            )
            .replace(
                "  - by: 5m\n    run: {playbook: quarantine-account, state: waiting_approval}\n",
                "",
            );
    assert!(!shipped.contains("waiting_approval"));
    let path = dir.join("fence.yaml");
    std::fs::write(
        &path,
        format!(
            "playbooks: {}\n{shipped}",
            root().join("playbooks").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_room_starts_the_run_and_two_people_decide_its_approval() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = fence_scenario(dir.path());
    let mut s = Session::start(
        &["drill", scenario.to_str().unwrap(), "--interactive"],
        dir.path(),
    );
    // The injected finding: what cordon is about to do, and why.
    s.expect("== T+0s: a finding arrives ==");
    let plan = s.expect("Let cordon act? [y/n] ");
    assert!(
        plan.contains("UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"),
        "{plan}"
    );
    assert!(plan.contains("in account 352283894008"), "{plan}");
    assert!(
        plan.contains("quarantine-account (manual), because bob starts it by hand"),
        "{plan}"
    );
    assert!(plan.contains("1. confirm approval"), "{plan}");
    assert!(plan.contains("attach_deny_scp"), "{plan}");
    s.answer("maybe");
    s.expect("answer y or n");
    s.expect("Let cordon act? [y/n] ");
    s.answer("y");
    s.expect("Who decides? [room] ");
    s.answer("dana");
    // The run waits at its approval step: the clock stops for the room.
    s.expect("== T+0s: approval needed ==");
    let waiting = s.expect("Approve? [y/n] ");
    assert!(
        waiting.contains("of quarantine-account in account 352283894008 waits at step confirm"),
        "{waiting}"
    );
    assert!(waiting.contains("approvals: 0 of 1"), "{waiting}");
    // An approval needs a name; the person who started the run cannot approve it: the room
    // is told, and asked again.
    s.answer("y");
    s.expect("Who decides? (a name) ");
    s.answer("");
    s.expect("a name is required: approvals are counted per person");
    s.expect("Who decides? (a name) ");
    s.answer("bob");
    let refused = s.expect("Approve? [y/n] ");
    assert!(refused.contains("refused:"), "{refused}");
    s.answer("yes");
    s.expect("Who decides? (a name) ");
    s.answer("carol");
    let (code, out) = s.finish();
    let report = &out[out.find("# Drill: ").expect("a report")..];
    assert_eq!(code, Some(0), "{report}");
    // Who decided what, in the report's timeline.
    assert!(report.contains("| room decision |"), "{report}");
    assert!(report.contains("| dana |"), "{report}");
    assert!(report.contains("refused: "), "{report}");
    assert!(report.contains("| carol |"), "{report}");
    assert!(
        report.contains(
            "scripted approval of quarantine-account/confirm by carol skipped: the room decides"
        ),
        "{report}"
    );
    assert!(
        report.contains("| met | expect\\[2\\] account\\_fenced 352283894008 |"),
        "{report}"
    );
    assert!(report.contains("| met | released: world equals its pre-drill snapshot"));
}

#[test]
fn the_room_holds_a_finding_back_and_the_report_shows_the_instance_was_not_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = root().join("playbooks/drills/c2-instance.yaml");
    let mut s = Session::start(
        &["drill", scenario.to_str().unwrap(), "--interactive"],
        dir.path(),
    );
    let plan = s.expect("Let cordon act? [y/n] ");
    assert!(
        plan.contains("isolate-ec2-instance (auto), because its trigger matched"),
        "{plan}"
    );
    s.answer("n");
    s.expect("Who decides? [room] ");
    s.answer("");
    let (code, out) = s.finish();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("held back: cordon does not act on"), "{out}");
    assert!(out.contains("| room |"), "{out}");
    assert!(out.contains("missed: expect[2] instance_isolated"), "{out}");
}

#[test]
fn the_drill_stops_when_the_room_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = root().join("playbooks/drills/c2-instance.yaml");
    let mut s = Session::start(
        &["drill", scenario.to_str().unwrap(), "--interactive"],
        dir.path(),
    );
    s.expect("Let cordon act? [y/n] ");
    // Ctrl-D: end of input.
    s.master.write_all(&[4]).unwrap();
    let (code, out) = s.finish();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("error: the drill stopped at T+"), "{out}");
    assert!(
        out.contains("the room gave no answer (end of input)"),
        "{out}"
    );
}

#[test]
fn interactive_without_a_terminal_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args([
            "drill",
            "playbooks/drills/c2-instance.yaml",
            "--interactive",
        ])
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--interactive needs a terminal on stdin and stdout"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
