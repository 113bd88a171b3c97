//! Reporting handled records to a queue: SQS partial batch failures and one log event per
//! record.

use crate::pipeline::outcome::Outcome;
use serde::Serialize;

/// A record with what became of it, for reports and SQS partial batch failures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handled {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The message ids a queue should deliver again: those with a *retryable* failure (each
/// once, in order). A permanent failure (a corrupt upload) already wrote its `failed`
/// manifest; delivering it again would fail the same way until the dead-letter queue, so
/// it is not listed. `None` when a retryable failure came without a message id: the
/// whole invocation must then fail, or that record would be dropped.
///
/// This is the `batchItemFailures` list of an SQS-triggered Lambda function ("Reporting
/// batch item failures for Lambda functions with an Amazon SQS trigger", AWS Lambda
/// Developer Guide) and what the queue consumer leaves on the queue.
pub fn retryable_batch_item_failures(handled: &[Handled]) -> Option<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for h in handled.iter().filter(|h| h.outcome.is_retryable()) {
        let id = h.message_id.as_ref()?;
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    Some(ids)
}

/// Logs one handled record as a structured event (`tracing`; the binaries print JSON):
/// message id, bucket, key, outcome, title, retryable, elapsed milliseconds, and the
/// outcome in words. Failures are errors (retryable) or warnings (permanent).
pub fn log_handled(h: &Handled, elapsed: std::time::Duration) {
    let title = match &h.outcome {
        Outcome::Processed { title, .. }
        | Outcome::AlreadyComplete { title, .. }
        | Outcome::Removed { title, .. }
        | Outcome::FannedOut { title, .. }
        | Outcome::PartEncoded { title, .. } => Some(title.as_str()),
        Outcome::Failed { title, .. } => title.as_deref(),
        Outcome::Stale { .. } | Outcome::Ignored { .. } | Outcome::Routed { .. } => None,
    };
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(
                target: "hlspipe::job",
                $level,
                message_id = h.message_id.as_deref(),
                bucket = h.bucket.as_deref(),
                key = h.key.as_deref(),
                outcome = h.outcome.name(),
                title,
                retryable = h.outcome.is_retryable(),
                elapsed_ms,
                "{}",
                h.outcome
            )
        };
    }
    if h.outcome.is_retryable() {
        event!(tracing::Level::ERROR);
    } else if h.outcome.is_failure() {
        event!(tracing::Level::WARN);
    } else {
        event!(tracing::Level::INFO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_failures_need_message_ids() {
        let failed = |id: Option<&str>| Handled {
            message_id: id.map(String::from),
            bucket: None,
            key: None,
            outcome: Outcome::Failed {
                title: None,
                reason: "x".into(),
                retryable: false,
            },
        };
        let ok = Handled {
            message_id: Some("b".into()),
            bucket: None,
            key: None,
            outcome: Outcome::Ignored { reason: "y".into() },
        };
        // Only retryable failures are delivered again.
        let retryable = |id: &str| Handled {
            message_id: Some(id.into()),
            bucket: None,
            key: None,
            outcome: Outcome::Failed {
                title: None,
                reason: "SlowDown".into(),
                retryable: true,
            },
        };
        assert_eq!(
            retryable_batch_item_failures(&[
                failed(Some("corrupt")),
                retryable("throttled"),
                ok.clone(),
                retryable("throttled"),
            ]),
            Some(vec!["throttled".to_string()])
        );
        assert_eq!(
            retryable_batch_item_failures(&[failed(None), ok.clone()]),
            Some(vec![])
        );
        // A retryable failure without a message id cannot be reported per item.
        let mut anonymous = retryable("x");
        anonymous.message_id = None;
        assert_eq!(retryable_batch_item_failures(&[ok, anonymous]), None);
    }
}
