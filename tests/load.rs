//! End-to-end: what cordon refuses at load, through the real binary. Durations and retry
//! bounds, playbook paths that are not directories, every candidate file of a playbook
//! directory, and a trigger script that fails (shared/cases rows 1, 2, 11, 12, 13).

mod common;

use std::path::Path;

use common::{fixture, root, Cordon};
use serde_json::Value;

const DEMO_EVENT: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_contains(haystack: &str, needles: &[String]) {
    for n in needles {
        assert!(
            haystack.contains(n.as_str()),
            "missing {n:?} in:\n{haystack}"
        );
    }
}

/// Row 1: an approval timeout of u64::MAX ms is a load error naming file, line and field; the
/// run that used to panic adding the deadline is refused, and `resume` afterwards is fine.
#[test]
fn an_overflowing_approval_timeout_is_a_load_error_not_a_panic() {
    let c = Cordon::new();
    let dir = c.playbook_dir(
        "overflow",
        "id: overflow\ntitle: huge timeout\nversion: 1\nmode: manual\nsteps:\n  - id: ask\n    action: approval\n    with:\n      message: go?\n      timeout: 18446744073709551615ms\n      default: approve\n  - id: tell\n    action: notify.chat\n    with: {text: after}\n",
    );
    let file = Path::new(&dir).join("overflow.yaml").display().to_string();
    let expected = format!(
        "{file}:10: steps[0].with.timeout: \"18446744073709551615ms\" is out of bounds: an approval timeout is 1s to 7d"
    );
    let out = c.run(&["--playbooks", &dir, "validate"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_contains(&stderr(&out), std::slice::from_ref(&expected));

    let out = c.run(&[
        "--playbooks",
        &dir,
        "run",
        "--cloud",
        "sim",
        "--playbook",
        "overflow",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_contains(&stderr(&out), &[expected]);
    assert!(!stderr(&out).contains("panicked"));
    c.ok(&["--cloud", "sim", "resume"], 0);
    assert_eq!(c.json(&["runs", "list"], 0), serde_json::json!([]));
}

/// Row 2: every duration, default and retry bound is checked at load, each error with its
/// file, line and field, all of them reported at once.
#[test]
fn every_duration_and_retry_bound_is_checked_at_load() {
    let c = Cordon::new();
    let dir = c.path().join("pb");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("approval.yaml"),
        "id: a-bad\ntitle: t\nversion: 1\nmode: manual\nsteps:\n  - id: ask\n    action: approval\n    with:\n      timeout: 1x\n      default: deny\n  - id: ask2\n    action: approval\n    with:\n      timeout: 30m\n      default: yes\n  - id: ask3\n    action: approval\n    with:\n      default: approve\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("retry.yaml"),
        "id: r-bad\ntitle: t\nversion: 1\nmode: manual\nsteps:\n  - id: huge\n    action: ec2.isolate_instance\n    with: {instance: i-1}\n    timeout: 1m\n    retry: {attempts: 3, backoff: 18446744073709551615ms}\n  - id: many\n    action: ec2.isolate_instance\n    with: {instance: i-1}\n    retry: {attempts: 11, backoff: 1s}\n  - id: long\n    action: ec2.isolate_instance\n    with: {instance: i-1}\n    retry: {attempts: 10, backoff: 30s}\n  - id: slow\n    action: ec2.isolate_instance\n    with: {instance: i-1}\n    timeout: 0s\n",
    )
    .unwrap();
    let out = c.run(&["validate", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let a = dir.join("approval.yaml").display().to_string();
    let r = dir.join("retry.yaml").display().to_string();
    assert_contains(
        &stderr(&out),
        &[
            format!("{a}:9: steps[0].with.timeout: \"1x\" is not a duration"),
            format!("{a}:15: steps[1].with.default: \"yes\" is not a decision: write approve or deny"),
            format!("{a}:19: steps[2].with.default: a default applies only when the approval times out"),
            format!("{r}:10: steps[0].retry.backoff: \"18446744073709551615ms\" is out of bounds: a retry backoff is 10ms to 1m"),
            format!("{r}:14: steps[1].retry.attempts: 11 is out of bounds"),
            format!("{r}:18: steps[2].retry: 10 attempts with backoff 30s can wait up to 2h39m in all"),
            format!("{r}:22: steps[3].timeout: \"0s\" is out of bounds: a step timeout is 1s to 1h"),
        ],
    );
    assert!(
        stderr(&out).starts_with("error: 7 playbook error(s):"),
        "{}",
        stderr(&out)
    );
}

/// Row 11: `./playbooks` that is a dangling link or a file, and a `--playbooks` or config path
/// that is not a directory, are errors naming the path: never the built-in library instead.
#[cfg(unix)]
#[test]
fn a_playbook_path_that_is_not_a_directory_is_an_error_naming_it() {
    let c = Cordon::new();
    let cordon = |args: &[&str]| {
        let mut cmd = c.command(args);
        cmd.env_remove("CORDON_PLAYBOOKS");
        cmd.output().unwrap()
    };
    let refused = |out: std::process::Output, needle: &str| {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{needle:?} in {}",
            stderr(&out)
        );
    };
    std::os::unix::fs::symlink("gone", c.path().join("playbooks")).unwrap();
    refused(
        cordon(&["run", "--cloud", "sim"]),
        "playbook directory playbooks (./playbooks, which is used when present) is a symbolic link to gone",
    );
    std::fs::remove_file(c.path().join("playbooks")).unwrap();
    std::fs::write(c.path().join("playbooks"), "not a directory").unwrap();
    refused(
        cordon(&["run", "--cloud", "sim"]),
        "playbook directory playbooks (./playbooks, which is used when present) is not a directory",
    );
    refused(
        cordon(&["validate"]),
        "playbook directory playbooks (./playbooks, which is used when present) is not a directory",
    );
    refused(
        cordon(&[
            "--playbooks",
            "missing",
            "explain",
            "--event",
            fixture(DEMO_EVENT).to_str().unwrap(),
        ]),
        "playbook directory missing (--playbooks) cannot be read",
    );
    std::fs::write(c.path().join("cordon.yaml"), "playbooks: playbooks\n").unwrap();
    refused(
        cordon(&["run", "--cloud", "sim"]),
        "playbook directory playbooks (the config's `playbooks`) is not a directory",
    );
    // Nothing acted: no run was journaled anywhere.
    assert_eq!(c.json(&["runs", "list"], 0), serde_json::json!([]));
    // With nothing named `playbooks` at all, the built-in library is used.
    std::fs::remove_file(c.path().join("cordon.yaml")).unwrap();
    std::fs::remove_file(c.path().join("playbooks")).unwrap();
    let out = cordon(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("built-in"));
}

const PLAYBOOK: &str = "id: ID\ntitle: t\nversion: 1\nmode: manual\nsteps:\n  - id: tell\n    action: notify.chat\n    with: {text: hi}\n";

/// Row 12: every candidate file of a playbook directory is loaded or reported by name, with
/// the reason. `B.YAML` is a candidate; a BOM is stripped; hidden names are not candidates.
#[cfg(unix)]
#[test]
fn every_candidate_playbook_file_is_loaded_or_reported_by_name() {
    use std::os::unix::fs::symlink;
    let c = Cordon::new();
    let d = c.path().join("pb");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("good.yaml"), PLAYBOOK.replace("ID", "good")).unwrap();
    std::fs::write(d.join("B.YAML"), PLAYBOOK.replace("ID", "upper")).unwrap();
    std::fs::write(
        d.join("bom.yml"),
        format!("\u{feff}{}", PLAYBOOK.replace("ID", "with-bom")),
    )
    .unwrap();
    symlink("user@host.1234", d.join(".#good.yaml")).unwrap(); // an editor's lock file
    std::fs::create_dir(d.join("x.yaml")).unwrap();
    symlink("nowhere.yaml", d.join("dangling.yaml")).unwrap();
    symlink("loop-b.yaml", d.join("loop-a.yaml")).unwrap();
    symlink("loop-a.yaml", d.join("loop-b.yaml")).unwrap();
    std::fs::write(d.join("latin1.yaml"), b"id: x\ntitle: caf\xe9\n").unwrap();
    let out = c.run(&["validate", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let p = |n: &str| d.join(n).display().to_string();
    let err = stderr(&out);
    assert_contains(
        &err,
        &[
            format!("{}: is a directory, not a playbook file", p("x.yaml")),
            format!(
                "{}: is a symbolic link to nowhere.yaml, which does not exist",
                p("dangling.yaml")
            ),
            format!(
                "{}: cannot be read: Too many levels of symbolic links",
                p("loop-a.yaml")
            ),
            format!(
                "{}: cannot be read: Too many levels of symbolic links",
                p("loop-b.yaml")
            ),
            format!(
                "{}:2: is not UTF-8 text (byte 0xe9 at offset 16)",
                p("latin1.yaml")
            ),
        ],
    );
    assert!(err.starts_with("error: 5 playbook error(s):"), "{err}");
    // The same set through --playbooks for a command that acts: refused, nothing runs.
    let out = c.run(&["--playbooks", d.to_str().unwrap(), "run", "--cloud", "sim"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("x.yaml: is a directory"));

    for bad in [
        "x.yaml",
        "dangling.yaml",
        "loop-a.yaml",
        "loop-b.yaml",
        "latin1.yaml",
    ] {
        let path = d.join(bad);
        if path.is_dir() {
            std::fs::remove_dir(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }
    let ok = c.ok(&["validate", d.to_str().unwrap()], 0);
    assert!(ok.contains("ok: 3 playbook(s) valid"), "{ok}");
    let ev = fixture(DEMO_EVENT);
    let explained = c.json(
        &[
            "--playbooks",
            d.to_str().unwrap(),
            "explain",
            "--event",
            ev.to_str().unwrap(),
        ],
        0,
    );
    let mut ids: Vec<&str> = explained[0]["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["playbook"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["good", "upper", "with-bom"]);
}

/// Row 13: a trigger script that fails is an error the operator sees: exit 4, the playbook and
/// the message on stderr, on `run`, `run --dry-run` and `explain`.
#[test]
fn a_failing_trigger_script_is_an_error_with_the_playbook_and_message() {
    let c = Cordon::new();
    let dir = c.playbook_dir(
        "when-throws",
        "id: w-err\ntitle: when err\nversion: 1\nmode: auto\ntrigger:\n  match:\n    source: [aws.guardduty]\n  when: \"finding.nope.x\"\nsteps:\n  - id: tell\n    action: notify.chat\n    with:\n      text: \"${finding.title}\"\n",
    );
    let ev = fixture(DEMO_EVENT);
    let ev = ev.to_str().unwrap();
    let said = |out: &std::process::Output| {
        assert_eq!(out.status.code(), Some(4), "{}", stderr(out));
        let err = stderr(out);
        assert!(
            err.contains("error: playbook w-err: trigger `when` failed for finding 3aaf83ddd9c31405246fa1c62e3e034d: ")
                && err.contains("Unknown property 'x'"),
            "{err}"
        );
    };
    let out = c.run(&["--playbooks", &dir, "explain", "--event", ev]);
    said(&out);
    let out = c.run(&["--playbooks", &dir, "run", "--dry-run", "--event", ev]);
    said(&out);
    let out = c.run(&["--playbooks", &dir, "run", "--cloud", "sim", "--event", ev]);
    said(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "w-err: no run for finding 3aaf83ddd9c31405246fa1c62e3e034d: trigger `when` failed: "
        ),
        "{stdout}"
    );
    let out = c.run(&[
        "--playbooks",
        &dir,
        "run",
        "--cloud",
        "sim",
        "--event",
        ev,
        "--json",
    ]);
    said(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["status"], "when_error");
    assert!(report[0]["error"]
        .as_str()
        .unwrap()
        .contains("Unknown property 'x'"));
    // The shipped playbooks' scripts fail on no fixture: their explain still exits 0.
    let shipped = root().join("playbooks");
    c.ok(
        &[
            "--playbooks",
            shipped.to_str().unwrap(),
            "explain",
            "--event",
            ev,
        ],
        0,
    );
}
