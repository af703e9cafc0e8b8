//! AWS Organizations: with cordon's own identity, or a role in the management account (or a
//! delegated administrator) when `organizations_role_arn` is set.

use async_trait::async_trait;
use aws_sdk_organizations::types::PolicyType;
use cordon_engine::cloud::{CloudError, CloudResult, OrgInfo, Organizations, PolicyInfo};

use super::error::classify;
use super::{with_credentials, AwsCloud};

const ORG: &str = "organizations";

impl AwsCloud {
    async fn org(&self, action: &'static str) -> CloudResult<aws_sdk_organizations::Client> {
        let conf = match self.sessions.organizations().await? {
            Some(creds) => with_credentials(&self.calls, creds, None),
            None => self.calls.clone(),
        };
        self.meter.call(ORG, action).await;
        Ok(aws_sdk_organizations::Client::new(&conf))
    }

    async fn describe_policy(&self, id: &str, name: &str) -> CloudResult<PolicyInfo> {
        let c = self.org("organizations:DescribePolicy").await?;
        let out = c
            .describe_policy()
            .policy_id(id)
            .send()
            .await
            .map_err(|e| classify("organizations:DescribePolicy", ORG, e))?;
        let content = out
            .policy()
            .and_then(|p| p.content())
            .unwrap_or_default()
            .to_string();
        Ok(PolicyInfo {
            id: id.into(),
            name: name.into(),
            content,
        })
    }
}

#[async_trait]
impl Organizations for AwsCloud {
    async fn describe(&self) -> CloudResult<OrgInfo> {
        let c = self.org("organizations:DescribeOrganization").await?;
        let org = c
            .describe_organization()
            .send()
            .await
            .map_err(|e| classify("organizations:DescribeOrganization", ORG, e))?;
        let management = org
            .organization()
            .and_then(|o| o.master_account_id())
            .unwrap_or_default()
            .to_string();
        let c = self.org("organizations:ListRoots").await?;
        let roots = c
            .list_roots()
            .send()
            .await
            .map_err(|e| classify("organizations:ListRoots", ORG, e))?;
        let root = roots
            .roots()
            .first()
            .ok_or_else(|| CloudError::fatal("the organization has no root"))?;
        let scp_enabled = root.policy_types().iter().any(|p| {
            p.r#type() == Some(&PolicyType::ServiceControlPolicy)
                && p.status().map(|s| s.as_str()) == Some("ENABLED")
        });
        Ok(OrgInfo {
            management_account: management,
            root_id: root.id().unwrap_or_default().into(),
            scp_enabled,
        })
    }

    async fn list_accounts(&self) -> CloudResult<Vec<String>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let c = self.org("organizations:ListAccounts").await?;
            let page = c
                .list_accounts()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("organizations:ListAccounts", ORG, e))?;
            out.extend(
                page.accounts()
                    .iter()
                    .filter(|a| a.status().map(|s| s.as_str()) != Some("SUSPENDED"))
                    .filter_map(|a| a.id().map(String::from)),
            );
            token = page.next_token().map(String::from);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn enable_scp(&self, root_id: &str) -> CloudResult<()> {
        let c = self.org("organizations:EnablePolicyType").await?;
        match c
            .enable_policy_type()
            .root_id(root_id)
            .policy_type(PolicyType::ServiceControlPolicy)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = classify("organizations:EnablePolicyType", ORG, e);
                if e.message.contains("PolicyTypeAlreadyEnabledException") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn find_policy(&self, name: &str) -> CloudResult<Option<PolicyInfo>> {
        let mut token = None;
        loop {
            let c = self.org("organizations:ListPolicies").await?;
            let page = c
                .list_policies()
                .filter(PolicyType::ServiceControlPolicy)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("organizations:ListPolicies", ORG, e))?;
            if let Some(p) = page.policies().iter().find(|p| p.name() == Some(name)) {
                let id = p.id().unwrap_or_default().to_string();
                return self.describe_policy(&id, name).await.map(Some);
            }
            token = page.next_token().map(String::from);
            if token.is_none() {
                return Ok(None);
            }
        }
    }

    async fn create_policy(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> CloudResult<PolicyInfo> {
        let c = self.org("organizations:CreatePolicy").await?;
        let out = c
            .create_policy()
            .name(name)
            .description(description)
            .content(content)
            .r#type(PolicyType::ServiceControlPolicy)
            .send()
            .await
            .map_err(|e| classify("organizations:CreatePolicy", ORG, e))?;
        let id = out
            .policy()
            .and_then(|p| p.policy_summary())
            .and_then(|s| s.id())
            .unwrap_or_default();
        Ok(PolicyInfo {
            id: id.into(),
            name: name.into(),
            content: content.into(),
        })
    }

    async fn attach_policy(&self, policy_id: &str, account: &str) -> CloudResult<()> {
        let c = self.org("organizations:AttachPolicy").await?;
        match c
            .attach_policy()
            .policy_id(policy_id)
            .target_id(account)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = classify("organizations:AttachPolicy", account, e);
                // Attaching an attached policy is the state we want.
                if e.message.contains("DuplicatePolicyAttachmentException") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn detach_policy(&self, policy_id: &str, account: &str) -> CloudResult<()> {
        let c = self.org("organizations:DetachPolicy").await?;
        c.detach_policy()
            .policy_id(policy_id)
            .target_id(account)
            .send()
            .await
            .map_err(|e| classify("organizations:DetachPolicy", account, e))?;
        Ok(())
    }

    async fn policies_for_account(&self, account: &str) -> CloudResult<Vec<PolicyInfo>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let c = self.org("organizations:ListPoliciesForTarget").await?;
            let page = c
                .list_policies_for_target()
                .target_id(account)
                .filter(PolicyType::ServiceControlPolicy)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("organizations:ListPoliciesForTarget", account, e))?;
            out.extend(page.policies().iter().map(|p| PolicyInfo {
                id: p.id().unwrap_or_default().into(),
                name: p.name().unwrap_or_default().into(),
                content: String::new(),
            }));
            token = page.next_token().map(String::from);
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}
