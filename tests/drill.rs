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
            // The verdict is on stdout; the report is in the file.
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(said.starts_with("PASSED: "), "{said}");
            assert!(
                said.contains(&format!("report written to {}", p.display())),
                "{said}"
            );
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

/// Runs `cordon drill` on `text` saved as `bad.yaml`; checks it exits 2 and returns stderr.
fn refused_scenario(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, text).unwrap();
    let out = cordon(&["drill", path.to_str().unwrap()], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn a_bad_scenario_exits_2_naming_file_line_and_field() {
    let stderr = refused_scenario("name: x\nexpect:\n  - by: 5m\n    key_inactive: AKIA1\n    run: {playbook: p, state: succeeded}\n");
    assert!(
        stderr.contains("bad.yaml:3: expect[0]: needs exactly one check"),
        "{stderr}"
    );
}

#[test]
fn the_fence_drill_report_shows_the_ou_guardrail_deciding_the_attackers_move() {
    let out = cordon(
        &["drill", "playbooks/drills/fence-member-account.yaml"],
        &root(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("attacker\\_denied leave-org ") && l.contains("| met |"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("explicit deny in SCP deny-leave-organization"),
        "{line}"
    );
    assert!(line.contains("on OU Workloads (ou-sim0-"), "{line}");
}

#[test]
fn a_scenario_naming_an_unknown_ou_exits_2_naming_file_line_and_field() {
    let stderr = refused_scenario("name: x\norg:\n  ous:\n    - name: Workloads\n  accounts:\n    - id: \"111111111111\"\n      name: a\n      ou: Workload\n");
    assert!(
        stderr.contains("bad.yaml:8: org.accounts[0].ou: `Workload` is not an OU under org.ous (known: Workloads)"),
        "{stderr}"
    );
}

/// The browser the HTML report is rendered in: `CORDON_CHROMIUM`, else `chromium` on PATH
/// (tests/run.sh installs it when missing).
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CORDON_CHROMIUM") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
            .find(|p| p.is_file())
    });
    found.expect("no chromium on PATH: run tests/run.sh (it installs it) or apt-get install -y chromium, or set CORDON_CHROMIUM")
}

/// Screenshots `page` in headless Chromium; the decoded RGBA pixels and the image width.
fn screenshot(page: &Path, dir: &Path) -> (Vec<u8>, u32) {
    let png = dir.join("shot.png");
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1024,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium took over 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    (rgba, info.width)
}

#[test]
fn the_html_report_escapes_finding_text_and_renders_its_svg_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let text = std::fs::read_to_string(root().join("playbooks/drills/c2-instance.yaml"))
        .unwrap()
        .replace("../../tests/", &format!("{}/tests/", root().display()))
        .replace(
            "Custom__1.json\n",
            &format!("Custom__1.json\n      set:\n        detail.id: '{hostile}'\n"),
        )
        + &format!("playbooks: {}/playbooks\n", root().display());
    let path = dir.path().join("hostile.yaml");
    std::fs::write(&path, text).unwrap();
    let page = dir.path().join("report.html");
    let out = cordon(
        &[
            "drill",
            path.to_str().unwrap(),
            "--report",
            page.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("<svg ") && html.contains("<circle "),
        "no SVG timeline"
    );
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "markup got through"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;")
    );
    assert!(html.contains("default-src 'none'"), "no CSP");

    let (pixels, width) = screenshot(&page, dir.path());
    let total = pixels.len() / 4;
    let not_white = pixels
        .chunks(4)
        .filter(|p| p[0] < 240 || p[1] < 240 || p[2] < 240)
        .count();
    assert!(
        not_white * 50 > total,
        "screenshot is blank: {not_white} of {total} pixels"
    );
    // The SVG drew its marks: the green of a contained step and the orange-red of the
    // attacker's allowed connection are both on screen.
    let near = |c: [u8; 3]| {
        pixels
            .chunks(4)
            .any(|p| (0..3).all(|i| (p[i] as i32 - c[i] as i32).abs() < 12))
    };
    assert!(near([0x2b, 0x8a, 0x3e]), "no green mark ({width} px wide)");
    assert!(near([0xd9, 0x48, 0x0f]), "no attacker mark");
}

/// `--playbooks` names the set a drill rehearses, over the scenario's own default: a team runs a
/// shipped scenario against its playbooks. Here a set without the isolation playbook makes the
/// drill's isolation expectations fail, which proves the set was the one named.
#[test]
fn playbooks_named_on_the_command_line_are_the_ones_rehearsed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("playbooks/contain-iam-user-key.yaml"),
        dir.path().join("contain-iam-user-key.yaml"),
    )
    .unwrap();
    let set = dir.path().to_str().unwrap();
    let out = cordon(
        &[
            "--playbooks",
            set,
            "drill",
            "playbooks/drills/c2-instance.yaml",
        ],
        &root(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missed: expect"), "{stderr}");
    assert!(stderr.contains("instance_isolated"), "{stderr}");
}

#[test]
fn a_drill_refuses_a_real_cloud() {
    let out = cordon(
        &[
            "--cloud",
            "aws",
            "drill",
            "playbooks/drills/c2-instance.yaml",
        ],
        &root(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("never on a real cloud"), "{stderr}");
}
