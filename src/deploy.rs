//! What deploying cordon needs: the IAM policies of the loaded playbooks (`cordon policy`) and
//! the EventBridge delivery to `cordon serve` (`cordon eventbridge install`).

use anyhow::{bail, Result};
use cordon_connectors::aws::install::{self, InstallSpec};
use cordon_connectors::AwsCloud;
use cordon_engine::policy;
use cordon_engine::secret::Secret;
use serde_json::json;

use crate::app::App;
use crate::args::{InstallArgs, PolicyFor, PolicyFormat};
use crate::out;

/// The variable holding the API key EventBridge sends; an argument would show in `ps` and shell
/// history.
const API_KEY_VAR: &str = "CORDON_API_KEY";

pub fn policy(app: &App, format: PolicyFormat, whose: PolicyFor) -> Result<i32> {
    let set = app.playbooks()?;
    let member = match format {
        PolicyFormat::Json => policy::member_policy(&set),
        PolicyFormat::Cloudformation => policy::member_role_template(&set),
    };
    let home = || policy::home_policy(&set, &app.config.aws.role_arn);
    let doc = match (whose, format) {
        (PolicyFor::Member, _) => member,
        (PolicyFor::Home, PolicyFormat::Cloudformation) => bail!(
            "--format cloudformation is the member role's template; cordon's own identity is a policy document: use --format json --for home"
        ),
        (PolicyFor::Home, PolicyFormat::Json) => home(),
        (PolicyFor::Both, _) => json!({"member_role": member, "cordon_identity": home()}),
    };
    out::json(&doc)?;
    Ok(0)
}

pub async fn eventbridge_install(app: &App, args: &InstallArgs) -> Result<i32> {
    let api_key = match std::env::var(API_KEY_VAR) {
        Ok(k) if !k.trim().is_empty() => Secret::new(k),
        _ => bail!(
            "{API_KEY_VAR} is not set: put the API key cordon serve expects in it (it is sent in the {} header; it is never printed)",
            install::API_KEY_HEADER
        ),
    };
    let set = app.playbooks()?;
    let spec = InstallSpec {
        name: args.name.clone(),
        bus: args.bus.clone(),
        endpoint: args.endpoint.clone(),
        role_arn: args.role_arn.clone(),
        api_key,
        dlq_arn: args.dlq_arn.clone(),
        max_retries: args.max_retries,
        max_age_seconds: args.max_age_seconds,
        rate: args.rate,
        pattern: set.eventbridge_cover(),
    };
    // cordon's own identity, from the standard AWS chain: the rule is in cordon's account.
    let cloud = AwsCloud::from_env(app.config.aws.clone()).await;
    let report = install::install(&cloud, &spec).await?;
    out::json(&report)?;
    Ok(0)
}
