//! `cordon drill` through the real binary: the shipped drills pass (exit 0, Markdown on
//! stdout), reports are byte-identical for one seed, and a missed expectation exits 1 naming it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cordon(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("cordon runs")
}

#[test]
fn every_shipped_drill_passes_and_prints_its_report() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("playbooks/drills"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        let path = format!("playbooks/drills/{name}");
        let out = cordon(&["drill", &path], &root());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with("# Drill: "), "{stdout}");
        assert!(stdout.contains("| met | released: world equals its pre-drill snapshot"));
    }
}

#[test]
fn reports_in_json_and_junit_are_byte_identical_for_one_seed() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = root().join("playbooks/drills/access-key-outside-aws.yaml");
    let scenario = scenario.to_str().unwrap();
    for ext in ["json", "xml", "md"] {
        let (a, b) = (
            dir.path().join(format!("a.{ext}")),
            dir.path().join(format!("b.{ext}")),
        );
        for p in [&a, &b] {
            let out = cordon(
                &[
                    "drill",
                    scenario,
                    "--seed",
                    "42",
                    "--report",
                    p.to_str().unwrap(),
                ],
                dir.path(),
            );
            assert_eq!(out.status.code(), Some(0));
        }
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("a.json")).unwrap()).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["seed"], 42);
    let xml = std::fs::read_to_string(dir.path().join("a.xml")).unwrap();
    assert!(xml.contains("failures=\"0\""), "{xml}");
}

#[test]
fn a_missed_expectation_exits_1_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("playbooks/drills/c2-instance.yaml"))
        .unwrap()
        .replace("../../tests/", &format!("{}/tests/", root().display()))
        .replace("containment_within: 1m", "containment_within: 1s")
        + &format!("playbooks: {}/playbooks\n", root().display());
    let path = dir.path().join("slow.yaml");
    std::fs::write(&path, text).unwrap();
    let out = cordon(&["drill", path.to_str().unwrap()], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("missed: expect[4] containment_within 1s"),
        "{stderr}"
    );
    assert!(stderr.contains("1.800s (over)"), "{stderr}");
}

#[test]
fn a_bad_scenario_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "name: x\nexpect:\n  - by: 5m\n    key_inactive: AKIA1\n    run: {playbook: p, state: succeeded}\n").unwrap();
    let out = cordon(&["drill", path.to_str().unwrap()], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:3: expect[0]: needs exactly one check"),
        "{stderr}"
    );
}
