//! The long-running SQS consumer (`hlspipe worker`): the same job logic as the Lambda
//! function, for titles that take longer than Lambda's 15 minutes.
//!
//! - Long polling (`WaitTimeSeconds`, at most 20: "Amazon SQS short and long polling",
//!   SQS Developer Guide), at most 10 messages a receive, never more than `concurrency`
//!   messages in hand.
//! - Each message's records go through [`Pipeline::handle_all`] on a blocking thread
//!   (packaging is CPU and synchronous storage work).
//! - While a message is worked on, its visibility timeout is extended every third of it
//!   (a heartbeat), so a long title is not delivered to a second consumer ("Amazon SQS
//!   visibility timeout": extend with ChangeMessageVisibility while processing).
//! - Done (processed, already complete, stale, ignored, removed, or a *permanent*
//!   failure whose `failed` manifest is written): the message is deleted. A retryable
//!   failure leaves it on the queue, visible again after `retry_delay`; after the queue's
//!   `maxReceiveCount` it goes to the dead-letter queue.
//! - Shutdown (the future passed to [`QueueConsumer::run`], SIGTERM/SIGINT in the binary):
//!   no more receives; work in hand gets `grace` to finish; what is still running then is
//!   released (visibility 0) so another consumer takes it at once. The publish protocol
//!   makes abandoned work harmless: nothing half-written is ever referenced.

use crate::error::{Error, Result};
use crate::pipeline::batch::{log_handled, Handled};
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::event::parse_message_body;
use crate::pipeline::invalidate::Invalidator;
use crate::pipeline::job::Pipeline;
use crate::store::StoreFactory;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How the consumer uses its queue.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub queue_url: String,
    /// Messages worked on at once (1..=64).
    pub concurrency: usize,
    /// Long-poll wait of one receive, 0..=20 seconds.
    pub wait_seconds: i32,
    /// Visibility timeout asked for on receive and renewed by each heartbeat.
    pub visibility_seconds: i32,
    /// After a retryable failure, the message becomes visible again after this long.
    pub retry_delay_seconds: i32,
    /// On shutdown, how long work in hand may still run before it is released.
    pub grace: Duration,
}

impl QueueSettings {
    pub fn new(queue_url: impl Into<String>) -> Self {
        QueueSettings {
            queue_url: queue_url.into(),
            concurrency: 1,
            wait_seconds: 20,
            visibility_seconds: 120,
            retry_delay_seconds: 30,
            grace: Duration::from_secs(20),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Config(what));
        if self.queue_url.is_empty() {
            return bad("empty queue URL".into());
        }
        if !(1..=64).contains(&self.concurrency) {
            return bad(format!(
                "concurrency {} is outside 1..=64",
                self.concurrency
            ));
        }
        // ReceiveMessage: WaitTimeSeconds 0..=20; visibility 0..=43200 (12 hours)
        // ("ReceiveMessage", "ChangeMessageVisibility", SQS API Reference).
        if !(0..=20).contains(&self.wait_seconds) {
            return bad(format!("wait {} s is outside 0..=20", self.wait_seconds));
        }
        if !(3..=43_200).contains(&self.visibility_seconds) {
            return bad(format!(
                "visibility timeout {} s is outside 3..=43200",
                self.visibility_seconds
            ));
        }
        if !(0..=43_200).contains(&self.retry_delay_seconds) {
            return bad(format!(
                "retry delay {} s is outside 0..=43200",
                self.retry_delay_seconds
            ));
        }
        Ok(())
    }
}

/// What became of the messages of one run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Deleted: every record handled for good.
    pub deleted: usize,
    /// Left on the queue after a retryable failure.
    pub retried: usize,
    /// Given back at shutdown, unfinished.
    pub released: usize,
}

/// What happened to one message.
enum Fate {
    Deleted,
    Retried,
    Released,
}

/// The consumer: a queue, the job configuration, the stores and the CDN.
pub struct QueueConsumer {
    pub sqs: aws_sdk_sqs::Client,
    pub settings: QueueSettings,
    pub config: Arc<PipelineConfig>,
    pub stores: Arc<dyn StoreFactory>,
    pub invalidator: Arc<dyn Invalidator>,
}

/// One message's handle on the queue, shared with its task.
struct Lease {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    receipt: String,
    message_id: String,
}

impl Lease {
    async fn set_visibility(&self, seconds: i32) -> Result<()> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&self.receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::Queue(format!(
                    "ChangeMessageVisibility({seconds}) of {}: {}",
                    self.message_id,
                    DisplayErrorContext(&e)
                ))
            })
    }

    async fn delete(&self) -> Result<()> {
        self.sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&self.receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::Queue(format!(
                    "DeleteMessage {}: {}",
                    self.message_id,
                    DisplayErrorContext(&e)
                ))
            })
    }
}

impl QueueConsumer {
    /// Receives and handles messages until `shutdown` completes, then drains (see the
    /// module docs). An error is returned only when the queue cannot be used at all (it
    /// does not exist, access is denied); passing trouble is logged and retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<RunSummary> {
        self.settings.validate()?;
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.settings.concurrency));
        // Flips to true when work in hand must be released (grace over).
        let (release_tx, release_rx) = watch::channel(false);
        let mut tasks: JoinSet<Fate> = JoinSet::new();
        let mut summary = RunSummary::default();
        let mut failures: u32 = 0;
        tokio::pin!(shutdown);
        tracing::info!(
            queue_url = %this.settings.queue_url,
            concurrency = this.settings.concurrency,
            "worker started"
        );
        'receive: loop {
            while let Some(done) = tasks.try_join_next() {
                count(&mut summary, done);
            }
            // Wait for a free slot (or shutdown) before asking for more messages.
            let first = tokio::select! {
                biased;
                () = &mut shutdown => break 'receive,
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break 'receive,
                },
            };
            let mut permits = vec![first];
            while permits.len() < 10 {
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let received = tokio::select! {
                biased;
                () = &mut shutdown => break 'receive,
                r = this.receive(permits.len()) => r,
            };
            let messages = match received {
                Ok(m) => {
                    failures = 0;
                    m
                }
                Err((e, fatal)) => {
                    if fatal {
                        return Err(e);
                    }
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_secs(1u64 << failures.min(5));
                    tracing::warn!(error = %e, backoff_s = backoff.as_secs(), "receive failed");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break 'receive,
                        () = tokio::time::sleep(backoff) => continue 'receive,
                    }
                }
            };
            for message in messages {
                let Some(permit) = permits.pop() else {
                    // SQS returned more than asked for: never happens; hand it back.
                    this.release_unowned(&message).await;
                    continue;
                };
                let worker = Arc::clone(&this);
                let release = release_rx.clone();
                tasks.spawn(async move {
                    let fate = worker.handle_message(message, release).await;
                    drop(permit);
                    fate
                });
            }
        }

        // Shutdown: no more receives. Let work in hand finish within the grace period.
        let in_hand = tasks.len();
        tracing::info!(
            in_hand,
            grace_s = this.settings.grace.as_secs_f64(),
            "stopping"
        );
        let deadline = tokio::time::sleep(this.settings.grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    Some(done) => count(&mut summary, done),
                    None => break,
                },
                () = &mut deadline, if !*release_tx.borrow() => {
                    tracing::warn!(in_hand = tasks.len(), "grace period over: releasing unfinished messages");
                    let _ = release_tx.send(true);
                }
            }
        }
        tracing::info!(
            deleted = summary.deleted,
            retried = summary.retried,
            released = summary.released,
            "worker stopped"
        );
        Ok(summary)
    }

    /// One ReceiveMessage call. `Err((_, true))` for errors that retrying cannot cure.
    async fn receive(&self, max: usize) -> std::result::Result<Vec<Message>, (Error, bool)> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.settings.queue_url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(1))
            .wait_time_seconds(self.settings.wait_seconds)
            .visibility_timeout(self.settings.visibility_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.messages.unwrap_or_default()),
            Err(e) => {
                let fatal = matches!(
                    e.code(),
                    Some(
                        "AWS.SimpleQueueService.NonExistentQueue"
                            | "QueueDoesNotExist"
                            | "AccessDenied"
                            | "AccessDeniedException"
                            | "InvalidAddress"
                    )
                );
                let err = Error::Queue(format!(
                    "ReceiveMessage from {}: {}",
                    self.settings.queue_url,
                    DisplayErrorContext(&e)
                ));
                Err((err, fatal))
            }
        }
    }

    async fn release_unowned(&self, message: &Message) {
        if let Some(receipt) = message.receipt_handle() {
            let lease = Lease {
                sqs: self.sqs.clone(),
                queue_url: self.settings.queue_url.clone(),
                receipt: receipt.to_string(),
                message_id: message.message_id().unwrap_or_default().to_string(),
            };
            if let Err(e) = lease.set_visibility(0).await {
                tracing::warn!(error = %e, "could not release a message");
            }
        }
    }

    async fn handle_message(
        self: Arc<Self>,
        message: Message,
        mut release: watch::Receiver<bool>,
    ) -> Fate {
        let message_id = message.message_id().unwrap_or_default().to_string();
        let Some(receipt) = message.receipt_handle().map(String::from) else {
            // Without a receipt handle the message can be neither deleted nor extended:
            // leave it to its visibility timeout (and the dead-letter queue).
            tracing::error!(message_id, "message without a receipt handle");
            return Fate::Retried;
        };
        let lease = Lease {
            sqs: self.sqs.clone(),
            queue_url: self.settings.queue_url.clone(),
            receipt,
            message_id: message_id.clone(),
        };
        let receive_count = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .cloned();
        let body = message.body().unwrap_or_default().to_string();
        let records = parse_message_body(&body, Some(&message_id));
        let started = Instant::now();
        tracing::info!(
            message_id,
            records = records.len(),
            receive_count,
            "message received"
        );

        let job = Arc::clone(&self);
        let mut work = tokio::task::spawn_blocking(move || {
            let clock = || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            };
            let worker = Pipeline {
                config: &job.config,
                invalidator: job.invalidator.as_ref(),
                clock: &clock,
            };
            let stores = Arc::clone(&job.stores);
            let store_for = move |bucket: &str| stores.store_for(bucket);
            worker.handle_each(&records, &store_for)
        });

        let beat = Duration::from_secs(
            u64::try_from(self.settings.visibility_seconds / 3)
                .unwrap_or(1)
                .max(1),
        );
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        let handled: Vec<(Handled, Duration)> = loop {
            tokio::select! {
                res = &mut work => match res {
                    Ok(h) => break h,
                    Err(e) => {
                        // A panic in the job: leave the message for a later attempt.
                        tracing::error!(message_id, error = %e, "job panicked");
                        return self.retry_later(&lease).await;
                    }
                },
                _ = heartbeat.tick() => {
                    match lease.set_visibility(self.settings.visibility_seconds).await {
                        Ok(()) => tracing::debug!(message_id, "visibility extended"),
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }
                }
                changed = release.changed() => {
                    if changed.is_err() || *release.borrow() {
                        if let Err(e) = lease.set_visibility(0).await {
                            tracing::warn!(error = %e, "could not release the message");
                        }
                        tracing::warn!(message_id, elapsed_ms = ms(started.elapsed()), "released unfinished at shutdown");
                        return Fate::Released;
                    }
                }
            }
        };
        for (h, elapsed) in &handled {
            log_handled(h, *elapsed);
        }
        let retry = handled.iter().any(|(h, _)| h.outcome.is_retryable());
        if retry {
            return self.retry_later(&lease).await;
        }
        match lease.delete().await {
            Ok(()) => {
                tracing::info!(
                    message_id,
                    elapsed_ms = ms(started.elapsed()),
                    "message done"
                );
                Fate::Deleted
            }
            Err(e) => {
                // The work is done and idempotent: a second delivery finds it complete.
                tracing::warn!(error = %e, "delete failed; the message will come back");
                Fate::Retried
            }
        }
    }

    async fn retry_later(&self, lease: &Lease) -> Fate {
        if let Err(e) = lease
            .set_visibility(self.settings.retry_delay_seconds)
            .await
        {
            tracing::warn!(error = %e, "could not shorten the visibility for a retry");
        }
        tracing::warn!(
            message_id = lease.message_id,
            retry_in_s = self.settings.retry_delay_seconds,
            "left on the queue for a retry"
        );
        Fate::Retried
    }
}

fn count(summary: &mut RunSummary, done: std::result::Result<Fate, tokio::task::JoinError>) {
    match done {
        Ok(Fate::Deleted) => summary.deleted += 1,
        Ok(Fate::Retried) => summary.retried += 1,
        Ok(Fate::Released) => summary.released += 1,
        Err(e) => {
            tracing::error!(error = %e, "message task failed");
            summary.retried += 1;
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
