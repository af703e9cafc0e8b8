//! The drill benchmark (bench/drill.sh): one drill with 1,000 accounts, 10 instances each, and
//! 10,000 GuardDuty EC2 findings spread over 24 simulated hours, each isolating its own
//! instance through the shipped isolate-ec2-instance playbook; then the release of every run
//! and the pre-drill snapshot check, the report, and its Markdown written to a file (what
//! `cordon drill` prints by default). Prints wall time, peak RSS and mutating cloud calls per
//! finding against the minimum. A figure printer, not a timed test.
//!
//! Settings: DRILL_BENCH_ACCOUNTS (1000), DRILL_BENCH_FINDINGS (10000), DRILL_BENCH_HOURS (24).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use cordon_simulator::drill;

/// The allocator `cordon drill` runs with (see the root package's src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size of this process (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> Option<f64> {
    drill::run::peak_rss_kb().map(|kb| kb as f64 / 1024.0)
}

/// CPU time this process used so far (user + system, Linux `/proc/self/stat`), in seconds: on
/// a shared machine the wall time also counts other processes' turns.
fn cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux the project runs on.
    Some((utime + stime) / 100.0)
}

fn account(i: u64) -> String {
    format!("{:012}", 100_000_000_000 + i)
}

/// The scenario: accounts, their instances (one interface, one volume, one group), and the
/// findings, one per instance, evenly spread.
fn scenario(accounts: u64, findings: u64, hours: u64, fixture: &Path) -> String {
    let per = findings.div_ceil(accounts);
    let mut s = String::from("name: benchmark\norg:\n  accounts:\n");
    for a in 0..accounts {
        let _ = writeln!(s, "    - {{id: \"{}\", name: a{a}}}", account(a));
    }
    s.push_str("resources:\n");
    for a in 0..accounts {
        let _ = writeln!(
            s,
            "  \"{}\":\n    security_groups:\n      us-east-1: {{sg-0000000000000{a:04}: web}}\n    instances:",
            account(a)
        );
        for k in 0..per {
            let _ = writeln!(
                s,
                "      - {{id: i-{a:08x}{k:09x}, region: us-east-1, vpc: vpc-{a:08x}, interfaces: {{eni-{a:08x}{k:09x}: [sg-0000000000000{a:04}]}}, volumes: [vol-{a:08x}{k:09x}]}}"
            );
        }
    }
    s.push_str("timeline:\n");
    let step_ms = hours * 3_600_000 / findings.max(1);
    for n in 0..findings {
        let (a, k) = (n % accounts, n / accounts);
        let _ = writeln!(
            s,
            "  - at: {}ms\n    inject:\n      fixture: {}\n      set:\n        detail.id: bench-{n}\n        detail.accountId: \"{}\"\n        detail.resource.instanceDetails.instanceId: i-{a:08x}{k:09x}\n        detail.resource.instanceDetails.networkInterfaces[0].vpcId: vpc-{a:08x}",
            n * step_ms,
            fixture.display(),
            account(a)
        );
    }
    s.push_str("expect:\n  - containment: contained\n");
    s
}

fn main() {
    let accounts = setting("DRILL_BENCH_ACCOUNTS", 1000);
    let findings = setting("DRILL_BENCH_FINDINGS", 10_000);
    let hours = setting("DRILL_BENCH_HOURS", 24);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fixture = root.join("tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.yaml");
    std::fs::write(&path, scenario(accounts, findings, hours, &fixture)).expect("scenario");

    let start = Instant::now();
    let mut loaded = drill::load(&path).unwrap_or_else(|e| panic!("{e}"));
    loaded.playbooks = root.join("playbooks");
    let loaded_in = start.elapsed();
    let loaded_rss = peak_rss_mb();
    let (report, phases) = drill::run_timed(&loaded, 1).unwrap_or_else(|e| panic!("{e}"));
    // What `cordon drill` does with a report by default (and for `--report FILE.md`): render
    // the Markdown and write it out.
    let rendered = Instant::now();
    let markdown = report.markdown();
    std::fs::write(dir.path().join("report.md"), &markdown).expect("report");
    let rendered = rendered.elapsed();
    let wall = start.elapsed();
    let contained = report
        .findings
        .iter()
        .filter(|f| f.containment.starts_with("contained"))
        .count();
    // The least a containment of one instance with one interface and one volume needs (AWS's
    // isolation runbooks): one snapshot, the interface to the allow-all group, then to the
    // isolation group; plus, once per VPC, the two groups (create allow-all + its rules, create
    // isolation + revoke its egress).
    let vpcs = accounts.min(findings);
    let minimum = 3 * findings + 4 * vpcs;
    println!(
        "drill benchmark: {accounts} accounts, {findings} findings over {hours} simulated hours"
    );
    println!(
        "  wall time        {:.2} s (scenario load {:.2} s; target < 10 s); CPU time {}",
        wall.as_secs_f64(),
        loaded_in.as_secs_f64(),
        cpu_s().map_or("unavailable".into(), |s| format!("{s:.2} s"))
    );
    println!(
        "    phases: timeline {:.2} s, release of every run {:.2} s, report {:.2} s, Markdown ({} KB) {:.2} s",
        phases.timeline.as_secs_f64(),
        phases.release.as_secs_f64(),
        phases.report.as_secs_f64(),
        markdown.len() / 1024,
        rendered.as_secs_f64()
    );
    match peak_rss_mb() {
        Some(mb) => println!("  peak RSS         {mb:.0} MB (target < 500 MB)"),
        None => println!("  peak RSS         unavailable (no /proc/self/status)"),
    }
    let mb =
        |kb: Option<u64>| kb.map_or("?".to_string(), |kb| format!("{:.0}", kb as f64 / 1024.0));
    println!(
        "    peak by the end of: scenario load {} MB, timeline {}, release {}, report {}",
        loaded_rss.map_or("?".to_string(), |m| format!("{m:.0}")),
        mb(phases.peak_rss_kb[0]),
        mb(phases.peak_rss_kb[1]),
        mb(phases.peak_rss_kb[2])
    );
    println!(
        "  contained        {contained} of {} findings; drill passed: {}",
        report.findings.len(),
        report.passed
    );
    println!(
        "  mutating calls   {} = {:.2} per finding; minimum {} = {:.2} per finding; ratio {:.2}x",
        report.cloud_calls,
        report.cloud_calls as f64 / findings as f64,
        minimum,
        minimum as f64 / findings as f64,
        report.cloud_calls as f64 / minimum as f64
    );
    println!("  (the playbook also tags the instance, turns on termination protection and posts to chat: 3 calls a finding beyond the minimum)");
    if let Some(e) = report.expectations.iter().find(|e| !e.met) {
        println!("  MISSED: {}: {}", e.expectation, e.evidence);
    }
}
