//! `ec2.snapshot_volumes`: snapshot every attached EBS volume for forensics.
//!
//! Each snapshot is tagged with the step key, so a re-run after a crash finds the snapshots of
//! the earlier attempt instead of taking new ones. Snapshots are evidence: release keeps them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{args, Action, ActionError, ActionMeta, Context, Outcome, Param, Params};
use crate::cloud::CloudError;

/// The action.
pub struct SnapshotVolumes;

static META: ActionMeta = ActionMeta {
    id: "ec2.snapshot_volumes",
    description: "Snapshot every EBS volume attached to an instance, tagged with the run id",
    params: &[Param { name: "instance", required: true, description: "instance id" }],
    iam_actions: &[
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeInstanceAttribute",
        "ec2:DescribeSnapshots",
        "ec2:CreateSnapshot",
        // CreateSnapshot with TagSpecifications is authorized as ec2:CreateTags on the snapshot.
        "ec2:CreateTags",
    ],
    example: "- id: snapshot\n  action: ec2.snapshot_volumes\n  with:\n    instance: ${finding.resources[0].id}\n",
    idempotent: true,
    undo: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    instance: String,
}

#[async_trait]
impl Action for SnapshotVolumes {
    fn meta(&self) -> &'static ActionMeta {
        &META
    }

    async fn execute(
        &self,
        ctx: &Context<'_>,
        params: &Params,
        _prepared: &Value,
    ) -> Result<Outcome, ActionError> {
        let a: Args = args(params)?;
        let (t, ec2) = (&ctx.target, &ctx.cloud.ec2);
        let instance = ec2
            .describe_instance(t, &a.instance)
            .await?
            .ok_or_else(|| {
                CloudError::not_found(format!(
                    "instance {} not found in {} {}",
                    a.instance, t.account, t.region
                ))
            })?;
        let tags = BTreeMap::from([
            ("cordon:run".to_string(), t.run_id.clone()),
            ("cordon:step".to_string(), ctx.step_key.clone()),
            ("cordon:instance".to_string(), instance.id.clone()),
        ]);
        let mut snapshots = BTreeMap::new();
        for volume in &instance.volumes {
            let earlier = ec2
                .find_snapshots(t, volume, ("cordon:step", &ctx.step_key))
                .await?;
            let id = match earlier.into_iter().next() {
                Some(id) => id,
                None => {
                    ec2.create_snapshot(
                        t,
                        volume,
                        &format!("cordon forensic snapshot of {} ({})", instance.id, t.run_id),
                        &tags,
                    )
                    .await?
                }
            };
            snapshots.insert(volume.clone(), id);
        }
        for volume in &instance.volumes {
            if ec2
                .find_snapshots(t, volume, ("cordon:step", &ctx.step_key))
                .await?
                .is_empty()
            {
                return Err(ActionError::Verify(format!(
                    "no snapshot of {volume} found after CreateSnapshot"
                )));
            }
        }
        Ok(Outcome {
            output: json!({"instance": instance.id, "snapshots": snapshots}),
            undoable: false,
            proof: json!({"snapshots": snapshots}),
        })
    }
}
