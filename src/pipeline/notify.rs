//! The pipeline's announcement seam: after a title is published, fails, or is removed, the
//! job tells a [`Notifier`] so a site can react (send the uploader an e-mail, list the new
//! title) without polling manifests. EventBridge's is [`crate::aws::events`].

use crate::error::Result;
use serde::Serialize;

/// What happened to a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TitleChange {
    /// A version is live: the master names it.
    Published,
    /// The job failed for good (a corrupt or unsupported upload); `error` says why.
    Failed,
    /// The upload was deleted and the title's objects with it.
    Removed,
}

/// One announcement. `error` is at most [`MAX_ERROR_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TitleEvent {
    pub change: TitleChange,
    pub bucket: String,
    pub title: String,
    /// The upload's key.
    pub source: String,
    /// The live version (published), the failed job's (failed), none (removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The master playlist's key, when a version is live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An error text longer than this is cut (with `…`): an event's detail is small.
pub const MAX_ERROR_CHARS: usize = 2000;

impl TitleEvent {
    /// `error` cut to [`MAX_ERROR_CHARS`].
    pub fn with_error(mut self, error: &str) -> TitleEvent {
        let mut text: String = error.chars().take(MAX_ERROR_CHARS).collect();
        if text.len() < error.len() {
            text.push('…');
        }
        self.error = Some(text);
        self
    }
}

/// Announces title changes. A failed announcement is a warning of the job, never its
/// failure: the title itself is published (or failed) either way.
pub trait Notifier: Send + Sync {
    fn notify(&self, event: &TitleEvent) -> Result<()>;
}

/// Nobody to tell (the folder store, local runs).
pub struct NoNotification;

impl Notifier for NoNotification {
    fn notify(&self, _event: &TitleEvent) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_and_events_serialise_without_empty_fields() {
        let e = TitleEvent {
            change: TitleChange::Failed,
            bucket: "b".into(),
            title: "shows/ep1".into(),
            source: "uploads/shows/ep1.mp4".into(),
            version: None,
            master: None,
            error: None,
        }
        .with_error(&"é".repeat(5000));
        assert_eq!(
            e.error.as_ref().unwrap().chars().count(),
            MAX_ERROR_CHARS + 1
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["change"], "failed");
        assert!(json.get("version").is_none() && json.get("master").is_none());
    }
}
