//! `cordon eventbridge install`: the EventBridge plumbing that delivers findings to `cordon
//! serve`, created or brought up to date idempotently, with cordon's own identity.
//!
//! Four things, each read first and written only when missing or different: a connection holding
//! the API key, an API destination (POST to cordon's endpoint, rate limited), a rule on the bus
//! whose pattern covers the loaded playbooks, and the rule's target (the API destination, with a
//! retry policy and an optional dead-letter queue). Running it again changes nothing but the key.

use aws_sdk_eventbridge::error::SdkError;
use aws_sdk_eventbridge::types::{
    ApiDestinationHttpMethod, ConnectionAuthorizationType,
    CreateConnectionApiKeyAuthRequestParameters, CreateConnectionAuthRequestParameters,
    DeadLetterConfig, RetryPolicy, RuleState, Target, UpdateConnectionApiKeyAuthRequestParameters,
    UpdateConnectionAuthRequestParameters,
};
use aws_sdk_eventbridge::Client;
use cordon_engine::cloud::{CloudError, CloudResult};
use cordon_engine::secret::Secret;
use serde::Serialize;
use serde_json::Value;

use super::error::classify;
use super::AwsCloud;

/// The HTTP header EventBridge sends the API key in; `cordon serve` checks it.
pub const API_KEY_HEADER: &str = "x-cordon-api-key";

/// What to install.
#[derive(Debug)]
pub struct InstallSpec {
    /// Name of the connection, the API destination, the rule and the target id.
    pub name: String,
    /// The event bus the rule is on.
    pub bus: String,
    /// Where EventBridge POSTs events (`cordon serve`'s URL).
    pub endpoint: String,
    /// The role EventBridge assumes to invoke the API destination.
    pub role_arn: String,
    /// The API key sent in [`API_KEY_HEADER`]; never logged or reported.
    pub api_key: Secret,
    /// An SQS queue for events EventBridge gave up delivering.
    pub dlq_arn: Option<String>,
    /// Delivery retries (0 to 185).
    pub max_retries: i32,
    /// How long EventBridge keeps retrying an event, in seconds (60 to 86400).
    pub max_age_seconds: i32,
    /// Invocations per second allowed to the endpoint.
    pub rate: i32,
    /// The rule's event pattern (`PlaybookSet::eventbridge_cover`).
    pub pattern: Value,
}

/// What install did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It did not exist.
    Created,
    /// It existed and was rewritten.
    Updated,
    /// It existed as wanted.
    Unchanged,
}

/// One installed resource.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    /// Its name (the target's id, for the target).
    pub name: String,
    /// Its ARN (the API destination's, for the target).
    pub arn: String,
    /// What install did.
    pub change: Change,
}

/// What install did; the API key appears nowhere in it.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    /// The connection holding the API key.
    pub connection: Installed,
    /// The API destination.
    pub api_destination: Installed,
    /// The rule.
    pub rule: Installed,
    /// The rule's target.
    pub target: Installed,
    /// The rule's event pattern.
    pub event_pattern: Value,
}

/// Creates or updates the connection, API destination, rule and target of `spec`.
pub async fn install(cloud: &AwsCloud, spec: &InstallSpec) -> CloudResult<InstallReport> {
    let c = Client::new(cloud.base());
    let connection = connection(cloud, &c, spec).await?;
    let api_destination = api_destination(cloud, &c, spec, &connection.arn).await?;
    let rule = rule(cloud, &c, spec).await?;
    let target = target(cloud, &c, spec, &api_destination.arn).await?;
    Ok(InstallReport {
        connection,
        api_destination,
        rule,
        target,
        event_pattern: spec.pattern.clone(),
    })
}

/// Whether an SDK error is the service saying the resource does not exist.
fn missing<E: aws_sdk_eventbridge::error::ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ResourceNotFoundException")
}

fn installed(name: &str, arn: Option<&str>, change: Change) -> Installed {
    Installed {
        name: name.to_string(),
        arn: arn.unwrap_or_default().to_string(),
        change,
    }
}

async fn connection(cloud: &AwsCloud, c: &Client, spec: &InstallSpec) -> CloudResult<Installed> {
    let name = &spec.name;
    cloud.meter.call("self", "events:DescribeConnection").await;
    let exists = match c.describe_connection().name(name).send().await {
        Ok(_) => true,
        Err(e) if missing(&e) => false,
        Err(e) => return Err(classify("events:DescribeConnection", name, e)),
    };
    if !exists {
        let key = CreateConnectionApiKeyAuthRequestParameters::builder()
            .api_key_name(API_KEY_HEADER)
            .api_key_value(spec.api_key.expose())
            .build()
            .map_err(|e| CloudError::fatal(format!("connection {name}: {e}")))?;
        cloud.meter.call("self", "events:CreateConnection").await;
        let out = c
            .create_connection()
            .name(name)
            .description("cordon: the API key EventBridge sends to cordon serve")
            .authorization_type(ConnectionAuthorizationType::ApiKey)
            .auth_parameters(
                CreateConnectionAuthRequestParameters::builder()
                    .api_key_auth_parameters(key)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("events:CreateConnection", name, e))?;
        return Ok(installed(name, out.connection_arn(), Change::Created));
    }
    // The key cannot be read back to compare, so it is always sent again: re-running install
    // is also how the key is rotated.
    let key = UpdateConnectionApiKeyAuthRequestParameters::builder()
        .api_key_name(API_KEY_HEADER)
        .api_key_value(spec.api_key.expose())
        .build();
    cloud.meter.call("self", "events:UpdateConnection").await;
    let out = c
        .update_connection()
        .name(name)
        .authorization_type(ConnectionAuthorizationType::ApiKey)
        .auth_parameters(
            UpdateConnectionAuthRequestParameters::builder()
                .api_key_auth_parameters(key)
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify("events:UpdateConnection", name, e))?;
    Ok(installed(name, out.connection_arn(), Change::Updated))
}

async fn api_destination(
    cloud: &AwsCloud,
    c: &Client,
    spec: &InstallSpec,
    connection_arn: &str,
) -> CloudResult<Installed> {
    let name = &spec.name;
    cloud
        .meter
        .call("self", "events:DescribeApiDestination")
        .await;
    let current = match c.describe_api_destination().name(name).send().await {
        Ok(d) => Some(d),
        Err(e) if missing(&e) => None,
        Err(e) => return Err(classify("events:DescribeApiDestination", name, e)),
    };
    if let Some(d) = &current {
        let same = d.connection_arn() == Some(connection_arn)
            && d.invocation_endpoint() == Some(spec.endpoint.as_str())
            && d.http_method() == Some(&ApiDestinationHttpMethod::Post)
            && d.invocation_rate_limit_per_second() == Some(spec.rate);
        if same {
            return Ok(installed(name, d.api_destination_arn(), Change::Unchanged));
        }
        cloud
            .meter
            .call("self", "events:UpdateApiDestination")
            .await;
        let out = c
            .update_api_destination()
            .name(name)
            .connection_arn(connection_arn)
            .invocation_endpoint(&spec.endpoint)
            .http_method(ApiDestinationHttpMethod::Post)
            .invocation_rate_limit_per_second(spec.rate)
            .send()
            .await
            .map_err(|e| classify("events:UpdateApiDestination", name, e))?;
        return Ok(installed(name, out.api_destination_arn(), Change::Updated));
    }
    cloud
        .meter
        .call("self", "events:CreateApiDestination")
        .await;
    let out = c
        .create_api_destination()
        .name(name)
        .description("cordon: findings to cordon serve")
        .connection_arn(connection_arn)
        .invocation_endpoint(&spec.endpoint)
        .http_method(ApiDestinationHttpMethod::Post)
        .invocation_rate_limit_per_second(spec.rate)
        .send()
        .await
        .map_err(|e| classify("events:CreateApiDestination", name, e))?;
    Ok(installed(name, out.api_destination_arn(), Change::Created))
}

async fn rule(cloud: &AwsCloud, c: &Client, spec: &InstallSpec) -> CloudResult<Installed> {
    let name = &spec.name;
    let place = format!("{name} on bus {}", spec.bus);
    cloud.meter.call("self", "events:DescribeRule").await;
    let current = match c
        .describe_rule()
        .name(name)
        .event_bus_name(&spec.bus)
        .send()
        .await
    {
        Ok(r) => Some(r),
        Err(e) if missing(&e) => None,
        Err(e) => return Err(classify("events:DescribeRule", &place, e)),
    };
    if let Some(r) = &current {
        // Compared as JSON: EventBridge may return the pattern re-serialized.
        let pattern: Option<Value> = r.event_pattern().and_then(|p| serde_json::from_str(p).ok());
        if pattern.as_ref() == Some(&spec.pattern) && r.state() == Some(&RuleState::Enabled) {
            return Ok(installed(name, r.arn(), Change::Unchanged));
        }
    }
    cloud.meter.call("self", "events:PutRule").await;
    let out = c
        .put_rule()
        .name(name)
        .event_bus_name(&spec.bus)
        .description(
            "cordon: every finding a loaded playbook could match (cordon filters precisely)",
        )
        .event_pattern(spec.pattern.to_string())
        .state(RuleState::Enabled)
        .send()
        .await
        .map_err(|e| classify("events:PutRule", &place, e))?;
    let change = if current.is_some() {
        Change::Updated
    } else {
        Change::Created
    };
    Ok(installed(name, out.rule_arn(), change))
}

async fn target(
    cloud: &AwsCloud,
    c: &Client,
    spec: &InstallSpec,
    destination_arn: &str,
) -> CloudResult<Installed> {
    let name = &spec.name;
    let place = format!("rule {name} on bus {}", spec.bus);
    cloud.meter.call("self", "events:ListTargetsByRule").await;
    let listed = c
        .list_targets_by_rule()
        .rule(name)
        .event_bus_name(&spec.bus)
        .send()
        .await
        .map_err(|e| classify("events:ListTargetsByRule", &place, e))?;
    let current = listed.targets().iter().find(|t| t.id() == name.as_str());
    if let Some(t) = current {
        let retry = t.retry_policy();
        let same = t.arn() == destination_arn
            && t.role_arn() == Some(spec.role_arn.as_str())
            && retry.and_then(|r| r.maximum_retry_attempts()) == Some(spec.max_retries)
            && retry.and_then(|r| r.maximum_event_age_in_seconds()) == Some(spec.max_age_seconds)
            && t.dead_letter_config().and_then(|d| d.arn()) == spec.dlq_arn.as_deref();
        if same {
            return Ok(installed(name, Some(destination_arn), Change::Unchanged));
        }
    }
    let mut b = Target::builder()
        .id(name)
        .arn(destination_arn)
        .role_arn(&spec.role_arn)
        .retry_policy(
            RetryPolicy::builder()
                .maximum_retry_attempts(spec.max_retries)
                .maximum_event_age_in_seconds(spec.max_age_seconds)
                .build(),
        );
    if let Some(dlq) = &spec.dlq_arn {
        b = b.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
    }
    let t = b
        .build()
        .map_err(|e| CloudError::fatal(format!("target of {place}: {e}")))?;
    cloud.meter.call("self", "events:PutTargets").await;
    let out = c
        .put_targets()
        .rule(name)
        .event_bus_name(&spec.bus)
        .targets(t)
        .send()
        .await
        .map_err(|e| classify("events:PutTargets", &place, e))?;
    if out.failed_entry_count() > 0 {
        let why: Vec<String> = out
            .failed_entries()
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.error_code().unwrap_or("error"),
                    f.error_message().unwrap_or("no message")
                )
            })
            .collect();
        return Err(CloudError::fatal(format!(
            "events:PutTargets on {place}: {}",
            why.join("; ")
        )));
    }
    let change = if current.is_some() {
        Change::Updated
    } else {
        Change::Created
    };
    Ok(installed(name, Some(destination_arn), change))
}
