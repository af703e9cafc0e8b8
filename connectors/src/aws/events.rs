//! EventBridge audit events, with cordon's own identity (the bus is in cordon's account).

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use cordon_engine::cloud::{CloudError, CloudResult, ErrorKind, Events};
use serde_json::Value;

use super::error::classify;
use super::AwsCloud;

#[async_trait]
impl Events for AwsCloud {
    async fn put_event(
        &self,
        bus: &str,
        source: &str,
        detail_type: &str,
        detail: &Value,
    ) -> CloudResult<()> {
        self.meter.call("self", "events:PutEvents").await;
        let c = aws_sdk_eventbridge::Client::new(&self.calls);
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(source)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = c
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| classify("events:PutEvents", bus, e))?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(CloudError::new(
                ErrorKind::Retryable,
                format!("events:PutEvents on {bus}: entry failed: {why}"),
            ));
        }
        Ok(())
    }
}
