//! Systems Manager in member accounts.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};
use cordon_engine::cloud::{CloudError, CloudResult, Ssm, Target};
use cordon_engine::secret::Secret;

use super::error::classify;
use super::AwsCloud;

impl AwsCloud {
    async fn ssm(&self, t: &Target, action: &'static str) -> CloudResult<aws_sdk_ssm::Client> {
        self.client(t, action, aws_sdk_ssm::Client::new).await
    }
}

#[async_trait]
impl Ssm for AwsCloud {
    async fn put_secure_parameter(
        &self,
        t: &Target,
        name: &str,
        value: &Secret,
        description: &str,
    ) -> CloudResult<u64> {
        let c = self.ssm(t, "ssm:PutParameter").await?;
        let out = c
            .put_parameter()
            .name(name)
            .value(value.expose())
            .r#type(ParameterType::SecureString)
            .description(description)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| classify("ssm:PutParameter", &t.account, e))?;
        Ok(u64::try_from(out.version()).unwrap_or(0))
    }

    async fn parameter_exists(&self, t: &Target, name: &str) -> CloudResult<bool> {
        // DescribeParameters reads the parameter's metadata, never its value.
        let c = self.ssm(t, "ssm:DescribeParameters").await?;
        let filter = ParameterStringFilter::builder()
            .key("Name")
            .option("Equals")
            .values(name)
            .build()
            .map_err(|e| CloudError::fatal(e.to_string()))?;
        let out = c
            .describe_parameters()
            .parameter_filters(filter)
            .send()
            .await
            .map_err(|e| classify("ssm:DescribeParameters", &t.account, e))?;
        Ok(out.parameters().iter().any(|p| p.name() == Some(name)))
    }

    async fn send_command(
        &self,
        t: &Target,
        document: &str,
        instance_ids: &[String],
        parameters: &BTreeMap<String, Vec<String>>,
        comment: &str,
    ) -> CloudResult<String> {
        let c = self.ssm(t, "ssm:SendCommand").await?;
        let params: HashMap<String, Vec<String>> = parameters.clone().into_iter().collect();
        let out = c
            .send_command()
            .document_name(document)
            .set_instance_ids(Some(instance_ids.to_vec()))
            .set_parameters(Some(params))
            .comment(comment.chars().take(100).collect::<String>())
            .send()
            .await
            .map_err(|e| classify("ssm:SendCommand", &t.account, e))?;
        out.command()
            .and_then(|c| c.command_id())
            .map(String::from)
            .ok_or_else(|| CloudError::fatal("SendCommand returned no command id"))
    }

    async fn command_status(
        &self,
        t: &Target,
        command_id: &str,
        instance_id: &str,
    ) -> CloudResult<String> {
        let c = self.ssm(t, "ssm:GetCommandInvocation").await?;
        let out = c
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
            .await
            .map_err(|e| classify("ssm:GetCommandInvocation", &t.account, e))?;
        Ok(out
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "Unknown".into()))
    }
}
