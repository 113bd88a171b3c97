//! The hlspipe Lambda function's handler: an event in, the job logic of
//! [`hlspipe::pipeline::job`] over each record, an answer Lambda understands out.
//!
//! Accepted events (the function is invoked by one of them):
//! - an S3 event notification (S3 → Lambda), or EventBridge's S3 "Object Created" /
//!   "Object Deleted": a *direct* invocation. A retryable failure (S3 throttling, a 5xx)
//!   makes the invocation fail, so Lambda retries it (asynchronous invocations are
//!   retried twice, then go to the on-failure destination or dead-letter queue: "Error
//!   handling and automatic retries in AWS Lambda", Lambda Developer Guide).
//! - an SQS batch whose messages wrap S3 events (S3 → SQS → Lambda): the answer lists the
//!   messages to deliver again as `{"batchItemFailures": [{"itemIdentifier": id}]}`, and
//!   the event source mapping must have `ReportBatchItemFailures` ("Reporting batch item
//!   failures for Lambda functions with an Amazon SQS trigger", Lambda Developer Guide).
//!   Only *retryable* failures are listed, and each is made visible again after a
//!   backoff (30 s, doubling per delivery, at most 15 minutes) instead of the queue's whole
//!   visibility timeout ([`hlspipe::aws::sqs::Redelivery`]).
//!
//! A corrupt upload is a permanent failure: its title gets a `failed` manifest, the
//! record is logged as failed, and it is *not* retried (retrying would fail the same way,
//! hold the queue and cost money until the message reached the dead-letter queue).
//!
//! Packaging is CPU and synchronous storage work: it runs in `spawn_blocking`, never on
//! the runtime's threads.
//!
//! Long titles go to the worker fleet ([`FleetRoute`]): an upload of at least
//! `HLSPIPE_FLEET_MIN_BYTES` is put on `HLSPIPE_FLEET_QUEUE_URL` as an S3 notification that
//! reads back as the same job (sequencer kept), and not packaged here. The routing is made
//! here rather than by an EventBridge numeric match on `detail.object.size`: EventBridge's
//! numeric matching only covers values up to 5.0e9 (its rule engine, aws/event-ruler,
//! `ComparableNumber`), so an upload past 5 GB, the very kind the fleet is for, would match
//! neither a `<` nor a `>=` rule and be lost.

pub mod api;

use hlspipe::aws::sqs::{queue_url_from_arn, redelivery_delay, QueueSender, Redelivery};
use hlspipe::pipeline::batch::{log_handled, retryable_batch_item_failures, Handled};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::{parse_event, s3_created_event, ParsedRecord, RecordKind};
use hlspipe::pipeline::invalidate::Invalidator;
use hlspipe::pipeline::job::Pipeline;
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::pipeline::work::PartQueue;
use hlspipe::store::StoreFactory;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the handler needs besides the event: configuration, the stores of the buckets
/// events name, the CDN, a clock. Generic over the store factory so tests run it over
/// folders ([`hlspipe::store::location::Stores::dir`]) and the function over S3.
pub struct Handler<F> {
    pub config: PipelineConfig,
    pub stores: F,
    pub invalidator: Arc<dyn Invalidator>,
    /// Told when a title is published, fails for good, or is removed.
    pub notifier: Arc<dyn hlspipe::pipeline::notify::Notifier>,
    /// Unix seconds, now.
    pub clock: fn() -> u64,
    /// Brings a retryable SQS message back early; `None` leaves it to the visibility timeout.
    pub redelivery: Option<Arc<dyn Redelivery>>,
    /// Where uploads too long for the function go; `None` packages everything here.
    pub fleet: Option<FleetRoute>,
}

/// Uploads of at least `min_bytes` are sent to `queue_url`, which the `hlspipe worker` fleet
/// drains, instead of being packaged by the function.
#[derive(Clone)]
pub struct FleetRoute {
    pub queue_url: String,
    pub min_bytes: u64,
    pub sender: Arc<dyn QueueSender>,
}

/// [`PartQueue`] over the fleet's queue: a ladder the function planned is encoded by the
/// fleet's workers (docs/ladder.md, "Across the fleet"), not within one invocation.
struct FleetParts {
    route: FleetRoute,
    handle: tokio::runtime::Handle,
}

impl PartQueue for FleetParts {
    fn send(&self, messages: &[String]) -> hlspipe::Result<()> {
        for message in messages {
            let sending = self
                .route
                .sender
                .send(&self.route.queue_url, message.clone());
            self.handle.block_on(sending)?;
        }
        Ok(())
    }
}

impl FleetRoute {
    /// From `HLSPIPE_FLEET_QUEUE_URL` and `HLSPIPE_FLEET_MIN_BYTES` (both, or neither).
    pub fn from_vars(
        queue_url: Option<String>,
        min_bytes: Option<String>,
        sender: impl FnOnce() -> Arc<dyn QueueSender>,
    ) -> Result<Option<FleetRoute>, String> {
        match (
            queue_url.filter(|q| !q.is_empty()),
            min_bytes.filter(|m| !m.is_empty()),
        ) {
            (None, None) => Ok(None),
            (Some(queue_url), Some(min)) => {
                let min_bytes = min
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|m| *m > 0)
                    .ok_or_else(|| {
                        format!("HLSPIPE_FLEET_MIN_BYTES={min:?} is not a size in bytes")
                    })?;
                Ok(Some(FleetRoute {
                    queue_url,
                    min_bytes,
                    sender: sender(),
                }))
            }
            _ => Err("HLSPIPE_FLEET_QUEUE_URL and HLSPIPE_FLEET_MIN_BYTES go together".into()),
        }
    }

    /// Whether `record` is the fleet's: an upload of known size at or past the threshold.
    fn takes(&self, record: &ParsedRecord) -> bool {
        matches!(record, Ok(r) if r.kind == RecordKind::Created
            && r.job.size.is_some_and(|size| size >= self.min_bytes))
    }

    /// Sends the fleet's records on; returns the others, to be packaged here, and what
    /// became of the ones sent. A send that fails is a retryable failure of its record.
    async fn route(
        &self,
        records: Vec<ParsedRecord>,
        now: u64,
    ) -> (Vec<ParsedRecord>, Vec<(Handled, Duration)>) {
        let (theirs, ours): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| self.takes(r));
        let mut routed = Vec::with_capacity(theirs.len());
        for record in theirs.into_iter().flatten() {
            let started = Instant::now();
            let job = &record.job;
            let outcome = match self
                .sender
                .send(&self.queue_url, s3_created_event(job, now))
                .await
            {
                Ok(()) => Outcome::Routed {
                    key: job.key.clone(),
                    size: job.size.unwrap_or_default(),
                    queue: self.queue_url.clone(),
                },
                Err(e) => Outcome::Failed {
                    title: None,
                    reason: format!("not handed to the worker fleet: {e}"),
                    retryable: true,
                },
            };
            let handled = Handled {
                message_id: record.message_id.clone(),
                bucket: Some(job.bucket.clone()),
                key: Some(job.key.clone()),
                outcome,
            };
            routed.push((handled, started.elapsed()));
        }
        (ours, routed)
    }
}

/// The first retry of an SQS message comes after this many seconds, doubling per delivery.
pub const RETRY_DELAY_BASE_SECONDS: i32 = 30;
/// …up to this.
pub const RETRY_DELAY_MAX_SECONDS: i32 = 900;

/// Why an invocation failed as a whole (Lambda then retries it, or SQS redelivers the
/// whole batch).
#[derive(Debug)]
pub enum HandlerError {
    /// A retryable failure in a direct invocation, or one that cannot be tied to a
    /// message of the batch.
    Retryable(String),
    /// The event is not a document this function reads.
    Unreadable(String),
    /// The job thread died (a panic).
    Internal(String),
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Retryable(m) => write!(f, "retryable failure: {m}"),
            HandlerError::Unreadable(m) => write!(f, "unreadable event: {m}"),
            HandlerError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for HandlerError {}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Diagnostic {
        let error_type = match e {
            HandlerError::Retryable(_) => "hlspipe.Retryable",
            HandlerError::Unreadable(_) => "hlspipe.UnreadableEvent",
            HandlerError::Internal(_) => "hlspipe.Internal",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Whether the event is an SQS batch (Lambda's SQS event: `Records[]` of messages with
/// `"eventSource": "aws:sqs"` and a `messageId`).
pub fn is_sqs_batch(event: &Value) -> bool {
    event
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            !records.is_empty()
                && records.iter().all(|r| {
                    r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs")
                        || r.get("messageId").is_some()
                })
        })
}

/// Handles one invocation. For an SQS batch the answer is the `batchItemFailures`
/// document; for a direct invocation it is a summary of the records (Lambda ignores it).
pub async fn handle<F>(
    handler: Arc<Handler<F>>,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError>
where
    F: StoreFactory + 'static,
{
    let started = Instant::now();
    let request_id = event.context.request_id.clone();
    let sqs = is_sqs_batch(&event.payload);
    let bytes =
        serde_json::to_vec(&event.payload).map_err(|e| HandlerError::Unreadable(e.to_string()))?;
    let records = parse_event(&bytes).map_err(|e| {
        tracing::error!(request_id, error = %e, "unreadable event");
        HandlerError::Unreadable(e.to_string())
    })?;
    let deadline = job_deadline(event.context.deadline, std::time::SystemTime::now());
    let (records, routed) = match &handler.fleet {
        Some(fleet) => fleet.route(records, (handler.clock)()).await,
        None => (records, Vec::new()),
    };
    let job = Arc::clone(&handler);
    // A chunked ladder's parts go to the fleet, which encodes them and publishes the title.
    let parts = handler.fleet.clone().map(|route| FleetParts {
        route,
        handle: tokio::runtime::Handle::current(),
    });
    let mut handled: Vec<(Handled, Duration)> = tokio::task::spawn_blocking(move || {
        let worker = Pipeline {
            config: &job.config,
            invalidator: job.invalidator.as_ref(),
            notifier: job.notifier.as_ref(),
            parts: parts.as_ref().map(|p| p as &dyn PartQueue),
            deadline,
            clock: &job.clock,
            rebuild: false,
        };
        let store_for = |bucket: &str| job.stores.store_for(bucket);
        worker.handle_each(&records, &store_for)
    })
    .await
    .map_err(|e| HandlerError::Internal(format!("the job thread failed: {e}")))?;
    handled.extend(routed);

    for (h, elapsed) in &handled {
        log_handled(h, *elapsed);
    }
    let only: Vec<Handled> = handled.into_iter().map(|(h, _)| h).collect();
    let failed = only.iter().filter(|h| h.outcome.is_failure()).count();
    let retryable: Vec<&Handled> = only.iter().filter(|h| h.outcome.is_retryable()).collect();
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    if sqs {
        let Some(ids) = retryable_batch_item_failures(&only) else {
            // A retryable failure without a message id: failing the whole batch is the
            // only way not to drop it.
            tracing::error!(request_id, "retryable failure without a message id");
            return Err(HandlerError::Retryable(describe(&retryable)));
        };
        tracing::info!(
            request_id,
            records = only.len(),
            failed,
            retry = ids.len(),
            elapsed_ms,
            "sqs batch done"
        );
        if let Some(redelivery) = &handler.redelivery {
            delay_retries(redelivery.as_ref(), &event.payload, &ids).await;
        }
        let failures: Vec<Value> = ids
            .into_iter()
            .map(|id| json!({ "itemIdentifier": id }))
            .collect();
        return Ok(json!({ "batchItemFailures": failures }));
    }
    tracing::info!(
        request_id,
        records = only.len(),
        failed,
        retryable = retryable.len(),
        elapsed_ms,
        "invocation done"
    );
    if !retryable.is_empty() {
        return Err(HandlerError::Retryable(describe(&retryable)));
    }
    Ok(json!({ "records": only, "failed": failed }))
}

/// Makes each retried message of the batch visible again after its backoff. A failure is
/// logged and leaves the message to the queue's visibility timeout: late, never lost.
async fn delay_retries(redelivery: &dyn Redelivery, batch: &Value, ids: &[String]) {
    let records = batch["Records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for record in records {
        let Some(id) = record["messageId"]
            .as_str()
            .filter(|id| ids.iter().any(|i| i == id))
        else {
            continue;
        };
        let receipt = record["receiptHandle"].as_str();
        let queue = record["eventSourceARN"]
            .as_str()
            .and_then(queue_url_from_arn);
        let (Some(receipt), Some(queue)) = (receipt, queue) else {
            tracing::warn!(
                message_id = id,
                "no receipt handle or queue ARN: retried after the visibility timeout"
            );
            continue;
        };
        let count = record["attributes"]["ApproximateReceiveCount"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let seconds = redelivery_delay(count, RETRY_DELAY_BASE_SECONDS, RETRY_DELAY_MAX_SECONDS);
        match redelivery.delay(&queue, receipt, seconds).await {
            Ok(()) => tracing::info!(message_id = id, retry_in_s = seconds, "retry scheduled"),
            Err(e) => tracing::warn!(message_id = id, error = %e, "retry not brought forward"),
        }
    }
}

/// Time kept back from the invocation's deadline: in-flight writes finish and the manifest
/// records the stop (a timeout would leave it at `processing`, and the retry would not know
/// why). At least this long, or a tenth of the time the invocation had.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(15);

/// The instant after which the job starts no more writes, from the context's deadline
/// (milliseconds since the epoch; 0, as in a hand-made context, means none).
pub fn job_deadline(deadline_ms: u64, now: std::time::SystemTime) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    let margin = DEADLINE_MARGIN.max(left / 10);
    Some(Instant::now() + left.saturating_sub(margin))
}

fn describe(handled: &[&Handled]) -> String {
    handled
        .iter()
        .map(|h| match (&h.key, &h.outcome) {
            (Some(k), o) => format!("{k}: {o}"),
            (None, o @ Outcome::Failed { .. }) => o.to_string(),
            (None, o) => o.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// JSON logs, one object a line, fields at the top level, for CloudWatch Logs. The level
/// comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls) or
/// `HLSPIPE_LOG_LEVEL`; default INFO.
pub fn init_logging() {
    hlspipe::logs::init_json(&["AWS_LAMBDA_LOG_LEVEL", "HLSPIPE_LOG_LEVEL"]);
}
