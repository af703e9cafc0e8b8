//! What the binary carries so it works with no files around it: the shipped playbook library
//! and a real GuardDuty finding for the demo run.

/// The shipped playbooks, `(file, text)`.
pub const PLAYBOOKS: [(&str, &str); 4] = [
    (
        "playbooks/isolate-ec2-instance.yaml",
        include_str!("../playbooks/isolate-ec2-instance.yaml"),
    ),
    (
        "playbooks/contain-iam-user-key.yaml",
        include_str!("../playbooks/contain-iam-user-key.yaml"),
    ),
    (
        "playbooks/revoke-role-sessions.yaml",
        include_str!("../playbooks/revoke-role-sessions.yaml"),
    ),
    (
        "playbooks/quarantine-account.yaml",
        include_str!("../playbooks/quarantine-account.yaml"),
    ),
];

/// The demo event: a real published GuardDuty finding (UnauthorizedAccess:EC2/MaliciousIPCaller,
/// severity 8) from tests/fixtures/events (see SOURCES.md there).
pub const DEMO_EVENT: &str =
    include_str!("../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json");
