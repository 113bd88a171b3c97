//! Title announcements on an EventBridge bus (`PutEvents`, EventBridge API Reference), one
//! SigV4-signed AWS JSON 1.1 call. Each event has `"source": "hlspipe"`, a `detail-type` of
//! `Title Published`, `Title Failed` or `Title Removed`, and the [`TitleEvent`] as its
//! `detail`; a site matches them with an EventBridge rule:
//!
//! ```json
//! {"source": ["hlspipe"], "detail-type": ["Title Published"], "detail": {"bucket": ["my-media"]}}
//! ```

use crate::aws::signed::{endpoint_from_env, AwsJsonClient};
use crate::error::{Error, Result};
use crate::pipeline::notify::{Notifier, TitleChange, TitleEvent};

/// The events' `source`.
pub const SOURCE: &str = "hlspipe";

/// `detail-type` of a change.
pub fn detail_type(change: TitleChange) -> &'static str {
    match change {
        TitleChange::Published => "Title Published",
        TitleChange::Failed => "Title Failed",
        TitleChange::Removed => "Title Removed",
    }
}

/// Puts title events on one bus.
pub struct EventBridgeNotifier {
    client: AwsJsonClient,
    endpoint: String,
    bus: String,
    handle: tokio::runtime::Handle,
}

impl EventBridgeNotifier {
    /// For `bus` (a name or ARN; `default` is the account's default bus), with the
    /// environment's credentials and region; `AWS_ENDPOINT_URL_EVENTBRIDGE` or
    /// `AWS_ENDPOINT_URL` point it elsewhere. Call within a Tokio runtime.
    pub async fn from_env(bus: impl Into<String>) -> Result<EventBridgeNotifier> {
        let config = crate::aws::load_config("us-east-1").await;
        let client = AwsJsonClient::from_config(&config, "EventBridge")?;
        let endpoint = endpoint_from_env(
            "AWS_ENDPOINT_URL_EVENTBRIDGE",
            config.endpoint_url(),
            format!("https://events.{}.amazonaws.com", client.region()),
        );
        Ok(EventBridgeNotifier {
            client,
            endpoint,
            bus: bus.into(),
            handle: tokio::runtime::Handle::current(),
        })
    }

    pub async fn put(&self, event: &TitleEvent) -> Result<String> {
        let detail =
            serde_json::to_string(event).map_err(|e| Error::Config(format!("title event: {e}")))?;
        let body = serde_json::json!({ "Entries": [{
            "Source": SOURCE,
            "DetailType": detail_type(event.change),
            "Detail": detail,
            "EventBusName": self.bus,
            "Resources": [],
        }]});
        let answer = self
            .client
            .call("events", &self.endpoint, "AWSEvents.PutEvents", &body)
            .await?;
        // PutEvents answers 200 even when an entry failed: the entry says so.
        let entry = &answer["Entries"][0];
        match (
            answer["FailedEntryCount"].as_u64(),
            entry["EventId"].as_str(),
        ) {
            (Some(0) | None, Some(id)) => Ok(id.to_owned()),
            _ => Err(Error::Config(format!(
                "PutEvents refused the event: {} {}",
                entry["ErrorCode"].as_str().unwrap_or("?"),
                entry["ErrorMessage"].as_str().unwrap_or("")
            ))),
        }
    }
}

impl Notifier for EventBridgeNotifier {
    fn notify(&self, event: &TitleEvent) -> Result<()> {
        self.handle.block_on(self.put(event)).map(|_| ())
    }
}
