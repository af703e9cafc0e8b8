//! IAM in member accounts.

use async_trait::async_trait;
use cordon_engine::cloud::{
    AccessKeyInfo, CloudError, CloudResult, Iam, KeyStatus, NewAccessKey, RoleInfo, Target,
    UserInfo,
};
use cordon_engine::secret::Secret;

use super::error::{classify, none_if_missing};
use super::{decode_policy, AwsCloud};

impl AwsCloud {
    async fn iam(&self, t: &Target, action: &'static str) -> CloudResult<aws_sdk_iam::Client> {
        self.client(t, action, aws_sdk_iam::Client::new).await
    }
}

fn status(s: KeyStatus) -> aws_sdk_iam::types::StatusType {
    match s {
        KeyStatus::Active => aws_sdk_iam::types::StatusType::Active,
        KeyStatus::Inactive => aws_sdk_iam::types::StatusType::Inactive,
    }
}

#[async_trait]
impl Iam for AwsCloud {
    async fn get_role(&self, t: &Target, role: &str) -> CloudResult<Option<RoleInfo>> {
        let c = self.iam(t, "iam:GetRole").await?;
        match c.get_role().role_name(role).send().await {
            Ok(out) => Ok(out.role().map(|r| RoleInfo {
                name: r.role_name().into(),
                arn: r.arn().into(),
                path: r.path().into(),
            })),
            Err(e) => none_if_missing(classify("iam:GetRole", &t.account, e)),
        }
    }

    async fn put_role_policy(
        &self,
        t: &Target,
        role: &str,
        name: &str,
        doc: &str,
    ) -> CloudResult<()> {
        let c = self.iam(t, "iam:PutRolePolicy").await?;
        c.put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(doc)
            .send()
            .await
            .map_err(|e| classify("iam:PutRolePolicy", &t.account, e))?;
        Ok(())
    }

    async fn get_role_policy(
        &self,
        t: &Target,
        role: &str,
        name: &str,
    ) -> CloudResult<Option<String>> {
        let c = self.iam(t, "iam:GetRolePolicy").await?;
        match c
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(Some(decode_policy(out.policy_document()))),
            Err(e) => none_if_missing(classify("iam:GetRolePolicy", &t.account, e)),
        }
    }

    async fn delete_role_policy(&self, t: &Target, role: &str, name: &str) -> CloudResult<()> {
        let c = self.iam(t, "iam:DeleteRolePolicy").await?;
        c.delete_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| classify("iam:DeleteRolePolicy", &t.account, e))?;
        Ok(())
    }

    async fn get_user(&self, t: &Target, user: &str) -> CloudResult<Option<UserInfo>> {
        let c = self.iam(t, "iam:GetUser").await?;
        match c.get_user().user_name(user).send().await {
            Ok(out) => Ok(out.user().map(|u| UserInfo {
                name: u.user_name().into(),
                arn: u.arn().into(),
            })),
            Err(e) => none_if_missing(classify("iam:GetUser", &t.account, e)),
        }
    }

    async fn list_access_keys(&self, t: &Target, user: &str) -> CloudResult<Vec<AccessKeyInfo>> {
        let c = self.iam(t, "iam:ListAccessKeys").await?;
        let out = c
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .map_err(|e| classify("iam:ListAccessKeys", &t.account, e))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|k| {
                let status = match k.status()? {
                    aws_sdk_iam::types::StatusType::Active => KeyStatus::Active,
                    _ => KeyStatus::Inactive,
                };
                Some(AccessKeyInfo {
                    id: k.access_key_id()?.to_string(),
                    status,
                })
            })
            .collect())
    }

    async fn set_access_key_status(
        &self,
        t: &Target,
        user: &str,
        key_id: &str,
        s: KeyStatus,
    ) -> CloudResult<()> {
        let c = self.iam(t, "iam:UpdateAccessKey").await?;
        c.update_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .status(status(s))
            .send()
            .await
            .map_err(|e| classify("iam:UpdateAccessKey", &t.account, e))?;
        Ok(())
    }

    async fn create_access_key(&self, t: &Target, user: &str) -> CloudResult<NewAccessKey> {
        let c = self.iam(t, "iam:CreateAccessKey").await?;
        let out = c
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| classify("iam:CreateAccessKey", &t.account, e))?;
        let key = out
            .access_key()
            .ok_or_else(|| CloudError::fatal("CreateAccessKey returned no key"))?;
        Ok(NewAccessKey {
            id: key.access_key_id().to_string(),
            secret: Secret::new(key.secret_access_key()),
        })
    }

    async fn has_login_profile(&self, t: &Target, user: &str) -> CloudResult<bool> {
        let c = self.iam(t, "iam:GetLoginProfile").await?;
        match c.get_login_profile().user_name(user).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                none_if_missing::<()>(classify("iam:GetLoginProfile", &t.account, e)).map(|_| false)
            }
        }
    }

    async fn delete_login_profile(&self, t: &Target, user: &str) -> CloudResult<()> {
        let c = self.iam(t, "iam:DeleteLoginProfile").await?;
        c.delete_login_profile()
            .user_name(user)
            .send()
            .await
            .map_err(|e| classify("iam:DeleteLoginProfile", &t.account, e))?;
        Ok(())
    }

    async fn put_user_policy(
        &self,
        t: &Target,
        user: &str,
        name: &str,
        doc: &str,
    ) -> CloudResult<()> {
        let c = self.iam(t, "iam:PutUserPolicy").await?;
        c.put_user_policy()
            .user_name(user)
            .policy_name(name)
            .policy_document(doc)
            .send()
            .await
            .map_err(|e| classify("iam:PutUserPolicy", &t.account, e))?;
        Ok(())
    }

    async fn get_user_policy(
        &self,
        t: &Target,
        user: &str,
        name: &str,
    ) -> CloudResult<Option<String>> {
        let c = self.iam(t, "iam:GetUserPolicy").await?;
        match c
            .get_user_policy()
            .user_name(user)
            .policy_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(Some(decode_policy(out.policy_document()))),
            Err(e) => none_if_missing(classify("iam:GetUserPolicy", &t.account, e)),
        }
    }

    async fn delete_user_policy(&self, t: &Target, user: &str, name: &str) -> CloudResult<()> {
        let c = self.iam(t, "iam:DeleteUserPolicy").await?;
        c.delete_user_policy()
            .user_name(user)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| classify("iam:DeleteUserPolicy", &t.account, e))?;
        Ok(())
    }
}
