//! Containment gaps found in the field (issue 12), against moto: an instance launched by an
//! Auto Scaling group and registered in target groups, roles AWS lets no one edit, and a
//! quarantine SCP that would except nobody.

use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::types::{InstanceType, RequestLaunchTemplateData};
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetTypeEnum};

use super::*;

/// Account A's Auto Scaling group `web` (min 0, desired 1, max 2) whose one instance the group
/// registers in target group `web` (port 80); the instance is also registered by hand in
/// target group `admin` on port 8080.
struct Fleet {
    asg: aws_sdk_autoscaling::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    ec2: aws_sdk_ec2::Client,
    instance: String,
    web_tg: String,
    admin_tg: String,
    web_sg: String,
}

async fn target_group(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
    port: i32,
    vpc: &str,
) -> String {
    elb.create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(port)
        .vpc_id(vpc)
        .target_type(TargetTypeEnum::Instance)
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string()
}

async fn fleet(o: &Org) -> Fleet {
    let conf = o.moto.in_account(&o.a).await;
    let (asg, elb, ec2) = (
        aws_sdk_autoscaling::Client::new(&conf),
        aws_sdk_elasticloadbalancingv2::Client::new(&conf),
        aws_sdk_ec2::Client::new(&conf),
    );
    let vpc = ec2
        .describe_vpcs()
        .filters(filter("isDefault", "true"))
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet = ec2
        .describe_subnets()
        .filters(filter("vpc-id", &vpc))
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();
    let web_sg = ec2
        .create_security_group()
        .group_name("web")
        .description("web servers")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    ec2.create_launch_template()
        .launch_template_name("web")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-03cf127a")
                .instance_type(InstanceType::T2Micro)
                .security_group_ids(&web_sg)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let web_tg = target_group(&elb, "web", 80, &vpc).await;
    let admin_tg = target_group(&elb, "admin", 443, &vpc).await;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("web")
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("web")
                .version("$Latest")
                .build(),
        )
        .min_size(0)
        .max_size(2)
        .desired_capacity(1)
        .vpc_zone_identifier(&subnet)
        .target_group_arns(&web_tg)
        .send()
        .await
        .unwrap();
    let instance = group_instances(&asg).await.0[0].0.clone();
    elb.register_targets()
        .target_group_arn(&admin_tg)
        .targets(
            TargetDescription::builder()
                .id(&instance)
                .port(8080)
                .build(),
        )
        .send()
        .await
        .unwrap();
    Fleet {
        asg,
        elb,
        ec2,
        instance,
        web_tg,
        admin_tg,
        web_sg,
    }
}

/// The group's instances (id, lifecycle state) and its desired capacity.
async fn group_instances(asg: &aws_sdk_autoscaling::Client) -> (Vec<(String, String)>, i32) {
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("web")
        .send()
        .await
        .unwrap();
    let g = &out.auto_scaling_groups()[0];
    let members = g
        .instances()
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap().to_string(),
                i.lifecycle_state().unwrap().as_str().to_string(),
            )
        })
        .collect();
    (members, g.desired_capacity().unwrap())
}

/// The ports `instance` is registered on in a target group, as ELB reports them.
async fn ports(elb: &aws_sdk_elasticloadbalancingv2::Client, tg: &str, instance: &str) -> Vec<i32> {
    let out = elb
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .unwrap();
    out.target_health_descriptions()
        .iter()
        .filter_map(|d| d.target())
        .filter(|t| t.id() == Some(instance))
        .filter_map(|t| t.port())
        .collect()
}

/// Instances in the account that are not terminated.
async fn live_instances(ec2: &aws_sdk_ec2::Client) -> usize {
    let out = ec2
        .describe_instances()
        .filters(filter("instance-state-name", "pending"))
        .filters(filter("instance-state-name", "running"))
        .send()
        .await
        .unwrap();
    let mut n = 0;
    for r in out.reservations() {
        n += r.instances().len();
    }
    n
}

#[tokio::test]
async fn an_auto_scaled_instance_is_detached_and_deregistered_then_put_back() {
    let o = Org::new().await;
    let f = fleet(&o).await;
    let i = f.instance.clone();
    assert_eq!(ports(&f.elb, &f.web_tg, &i).await, [80], "set-up");
    assert_eq!(ports(&f.elb, &f.admin_tg, &i).await, [8080], "set-up");
    let live = live_instances(&f.ec2).await;

    let event = o.c.event("ec2.json", &ec2_event(&o.a, &i));
    o.cordon(&["run", "--cloud", "aws", "--event", &event], 0);
    let run = o.run_of("isolate-ec2-instance");
    assert_eq!(run["state"], "succeeded", "{run}");

    let (members, desired) = group_instances(&f.asg).await;
    assert!(members.is_empty(), "detached: {members:?}");
    assert_eq!(
        desired, 0,
        "desired capacity lowered, so nothing replaces it"
    );
    assert_eq!(
        live_instances(&f.ec2).await,
        live,
        "no replacement launched"
    );
    let membership = f
        .asg
        .describe_auto_scaling_instances()
        .instance_ids(&i)
        .send()
        .await
        .unwrap();
    assert!(membership.auto_scaling_instances().is_empty());
    assert!(ports(&f.elb, &f.web_tg, &i).await.is_empty());
    assert!(ports(&f.elb, &f.admin_tg, &i).await.is_empty());
    let isolate = step(&run, "isolate");
    assert_eq!(
        isolate["output"]["auto_scaling"]["group"], "web",
        "{isolate}"
    );
    assert_eq!(
        isolate["output"]["deregistered"].as_array().map(Vec::len),
        Some(2),
        "{isolate}"
    );
    assert_eq!(isolate["proof"]["service"]["target_registrations"], 0);

    let id = run["id"].as_str().unwrap().to_string();
    o.cordon(&["release", &id], 0);
    assert_eq!(o.run_of("isolate-ec2-instance")["state"], "released");
    let (members, desired) = group_instances(&f.asg).await;
    assert_eq!(members, [(i.clone(), "InService".to_string())]);
    assert_eq!(desired, 1, "the group's capacity as before");
    assert_eq!(ports(&f.elb, &f.web_tg, &i).await, [80]);
    assert_eq!(
        ports(&f.elb, &f.admin_tg, &i).await,
        [8080],
        "the same port"
    );
    for (eni, g) in eni_groups(&f.ec2, &i).await {
        assert_eq!(g, vec![f.web_sg.clone()], "{eni} is back in web");
    }
    o.check_call_coverage(&[
        "ec2.snapshot_volumes",
        "ec2.isolate_instance",
        "notify.chat",
    ]);
}

#[tokio::test]
async fn revoking_an_identity_center_role_is_refused_before_any_change() {
    let o = Org::new().await;
    let role = "AWSReservedSSO_AdministratorAccess_0123456789abcdef";
    let iam = o.iam(&o.a).await;
    iam.create_role()
        .role_name(role)
        .path("/aws-reserved/sso.amazonaws.com/")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap();
    let mut event = exfiltration_event(&o.a);
    event["detail"]["resource"]["accessKeyDetails"]["userName"] = json!(role);
    let event = o.c.event("exfil.json", &event);
    o.cordon(&["run", "--cloud", "aws", "--event", &event], 3);
    let run = o.run_of("revoke-role-sessions");
    let revoke = step(&run, "revoke");
    // The playbook goes on to tell the responders (on_error: continue); the step failed.
    assert_eq!(revoke["state"], "failed", "{run}");
    assert_eq!(
        step(&run, "tell")["output"]["delivery"],
        "logged",
        "no chat configured: said as logged, not posted"
    );
    let err = revoke["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("IAM Identity Center") && err.contains("permission set"),
        "{revoke}"
    );
    assert_eq!(revoke["attempt"], 1, "not retried: {revoke}");
    let log = std::fs::read_to_string(&o.log).unwrap();
    assert!(!log.contains("iam:PutRolePolicy"), "{log}");
    let gone = iam
        .get_role_policy()
        .role_name(role)
        .policy_name("AWSRevokeOlderSessions")
        .send()
        .await
        .expect_err("no revoke policy");
    assert_eq!(gone.code(), Some("NoSuchEntity"));
}

#[tokio::test]
async fn revoking_a_service_linked_role_is_refused_naming_the_service() {
    let o = Org::new().await;
    let iam = o.iam(&o.a).await;
    let role = iam
        .create_service_linked_role()
        .aws_service_name("autoscaling.amazonaws.com")
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .role_name()
        .to_string();
    let mut event = exfiltration_event(&o.a);
    event["detail"]["resource"]["accessKeyDetails"]["userName"] = json!(role);
    let event = o.c.event("exfil.json", &event);
    o.cordon(&["run", "--cloud", "aws", "--event", &event], 3);
    let run = o.run_of("revoke-role-sessions");
    assert_eq!(step(&run, "revoke")["state"], "failed", "{run}");
    let err = step(&run, "revoke")["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("service-linked role") && err.contains("autoscaling.amazonaws.com"),
        "{run}"
    );
    let log = std::fs::read_to_string(&o.log).unwrap();
    assert!(!log.contains("iam:PutRolePolicy"), "{log}");
}

#[tokio::test]
async fn a_quarantine_with_no_break_glass_role_is_refused_and_nothing_is_created() {
    let o = Org::new().await;
    std::fs::write(
        o.c.path().join("cordon.yaml"),
        "settings:\n  break_glass_roles: []\n",
    )
    .unwrap();
    let event = o.c.event("f.json", &exfiltration_event(&o.a));
    o.cordon(
        &[
            "run",
            "--cloud",
            "aws",
            "--playbook",
            "quarantine-account",
            "--event",
            &event,
        ],
        0,
    );
    let id = o.run_of("quarantine-account")["id"]
        .as_str()
        .unwrap()
        .to_string();
    o.cordon(&["approve", &id, "confirm", "--by", "dave"], 3);
    let run = o.run_of("quarantine-account");
    assert_eq!(run["state"], "failed");
    let err = run["error"].as_str().unwrap_or_default();
    assert!(err.contains("settings.break_glass_roles is empty"), "{run}");
    let org = o.org().await;
    let policies = org
        .list_policies()
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    assert!(
        !policies
            .policies()
            .iter()
            .any(|p| p.name() == Some("cordon-quarantine")),
        "no SCP created"
    );
    let log = std::fs::read_to_string(&o.log).unwrap_or_default();
    assert!(
        !log.lines().any(|l| l.starts_with("organizations:")),
        "no Organizations call: {log}"
    );
}
