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

use crate::clock::unix_now;
use crate::error::{Error, Result};
use crate::pipeline::batch::{log_handled, Handled};
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::event::{parse_message_body, s3_put_event, ParsedRecord};
use crate::pipeline::invalidate::Invalidator;
use crate::pipeline::job::Pipeline;
use crate::pipeline::work::PartQueue;
use crate::store::{ObjectInfo, StoreFactory};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, SendMessageBatchRequestEntry};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
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
    pub notifier: Arc<dyn crate::pipeline::notify::Notifier>,
    /// Where a ladder's parts go to be shared by the fleet; `None`: encoded by the job.
    pub parts: Option<Arc<dyn PartQueue>>,
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
        change_visibility(&self.sqs, &self.queue_url, &self.receipt, seconds)
            .await
            .map_err(|e| Error::Queue(format!("message {}: {e}", self.message_id)))
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
        // Flips to true when work in hand must be released (grace over).
        let (release_tx, release_rx) = watch::channel(false);
        let mut tasks: JoinSet<Fate> = JoinSet::new();
        let mut summary = RunSummary::default();
        tokio::pin!(shutdown);
        tracing::info!(
            queue_url = %this.settings.queue_url,
            concurrency = this.settings.concurrency,
            "worker started"
        );
        this.receive_until(&mut shutdown, &mut tasks, &mut summary, release_rx)
            .await?;
        this.drain(&mut tasks, &mut summary, release_tx).await;
        tracing::info!(
            deleted = summary.deleted,
            retried = summary.retried,
            released = summary.released,
            "worker stopped"
        );
        Ok(summary)
    }

    /// Receives while there is a free slot, handing each message to a task, until
    /// `shutdown` completes. Passing receive errors back off (1 s doubling to 32 s).
    async fn receive_until<S: Future<Output = ()>>(
        self: &Arc<Self>,
        shutdown: &mut std::pin::Pin<&mut S>,
        tasks: &mut JoinSet<Fate>,
        summary: &mut RunSummary,
        release: watch::Receiver<bool>,
    ) -> Result<()> {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut failures: u32 = 0;
        loop {
            while let Some(done) = tasks.try_join_next() {
                count(summary, done);
            }
            // Wait for a free slot (or shutdown) before asking for more messages.
            let permits = tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(()),
                permits = free_slots(&slots) => match permits {
                    Some(p) => p,
                    None => return Ok(()),
                },
            };
            let received = tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(()),
                r = self.receive(permits.len()) => r,
            };
            match received {
                Ok(messages) => {
                    failures = 0;
                    self.dispatch(messages, permits, tasks, &release).await;
                }
                Err((e, true)) => return Err(e),
                Err((e, false)) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_secs(1u64 << failures.min(5));
                    tracing::warn!(error = %e, backoff_s = backoff.as_secs(), "receive failed");
                    tokio::select! {
                        biased;
                        () = shutdown.as_mut() => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }
    }

    /// One task per message, each holding one of the slots it was received for.
    async fn dispatch(
        self: &Arc<Self>,
        messages: Vec<Message>,
        mut permits: Vec<OwnedSemaphorePermit>,
        tasks: &mut JoinSet<Fate>,
        release: &watch::Receiver<bool>,
    ) {
        for message in messages {
            let Some(permit) = permits.pop() else {
                // SQS returned more than asked for: never happens; hand it back.
                self.release_unowned(&message).await;
                continue;
            };
            let consumer = Arc::clone(self);
            let release = release.clone();
            tasks.spawn(async move {
                let fate = consumer.handle_message(message, release).await;
                drop(permit);
                fate
            });
        }
    }

    /// Shutdown: no more receives. Work in hand may finish within the grace period; what
    /// is still running then is released to the queue.
    async fn drain(
        &self,
        tasks: &mut JoinSet<Fate>,
        summary: &mut RunSummary,
        release: watch::Sender<bool>,
    ) {
        tracing::info!(
            in_hand = tasks.len(),
            grace_s = self.settings.grace.as_secs_f64(),
            "stopping"
        );
        let deadline = tokio::time::sleep(self.settings.grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    Some(done) => count(summary, done),
                    None => break,
                },
                () = &mut deadline, if !*release.borrow() => {
                    tracing::warn!(in_hand = tasks.len(), "grace period over: releasing unfinished messages");
                    let _ = release.send(true);
                }
            }
        }
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
        release: watch::Receiver<bool>,
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
        let records = parse_message_body(message.body().unwrap_or_default(), Some(&message_id));
        let started = Instant::now();
        tracing::info!(
            message_id,
            records = records.len(),
            receive_count,
            "message received"
        );
        let job = Arc::clone(&self);
        let work = tokio::task::spawn_blocking(move || job.run_pipeline(&records));
        match self.hold_while(work, &lease, release, started).await {
            Ok(handled) => self.settle(&handled, &lease, started).await,
            Err(fate) => fate,
        }
    }

    /// The records of one message through the pipeline, on a blocking thread.
    fn run_pipeline(&self, records: &[ParsedRecord]) -> Vec<(Handled, Duration)> {
        let pipeline = Pipeline {
            config: &self.config,
            invalidator: self.invalidator.as_ref(),
            notifier: self.notifier.as_ref(),
            parts: self.parts.as_deref(),
            deadline: None,
            clock: &unix_now,
            rebuild: false,
        };
        let stores = Arc::clone(&self.stores);
        let store_for = move |bucket: &str| stores.store_for(bucket);
        pipeline.handle_each(records, &store_for)
    }

    /// Waits for the job, extending the message's visibility every third of its timeout
    /// so that no other consumer receives it meanwhile; gives the message back at once
    /// when shutdown says release.
    async fn hold_while(
        &self,
        mut work: tokio::task::JoinHandle<Vec<(Handled, Duration)>>,
        lease: &Lease,
        mut release: watch::Receiver<bool>,
        started: Instant,
    ) -> std::result::Result<Vec<(Handled, Duration)>, Fate> {
        let message_id = lease.message_id.as_str();
        let beat = Duration::from_secs(
            u64::try_from(self.settings.visibility_seconds / 3)
                .unwrap_or(1)
                .max(1),
        );
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        loop {
            tokio::select! {
                res = &mut work => return match res {
                    Ok(h) => Ok(h),
                    Err(e) => {
                        // A panic in the job: leave the message for a later attempt.
                        tracing::error!(message_id, error = %e, "job panicked");
                        Err(self.retry_later(lease).await)
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
                        return Err(Fate::Released);
                    }
                }
            }
        }
    }

    /// Logs what became of each record, then deletes the message, or leaves it for a retry
    /// when a record failed in a way that may pass (DESIGN.md "Publish protocol" 5).
    async fn settle(
        &self,
        handled: &[(Handled, Duration)],
        lease: &Lease,
        started: Instant,
    ) -> Fate {
        for (h, elapsed) in handled {
            log_handled(h, *elapsed);
        }
        if handled.iter().any(|(h, _)| h.outcome.is_retryable()) {
            return self.retry_later(lease).await;
        }
        match lease.delete().await {
            Ok(()) => {
                tracing::info!(
                    message_id = lease.message_id,
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

/// Up to ten free slots (ReceiveMessage's maximum), waiting for the first; `None` once the
/// semaphore is closed.
async fn free_slots(slots: &Arc<Semaphore>) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = Arc::clone(slots).acquire_owned().await.ok()?;
    let mut permits = vec![first];
    while permits.len() < 10 {
        match Arc::clone(slots).try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    Some(permits)
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

/// When an SQS message whose work failed for a passing reason is delivered again. Without
/// this, a retryable failure in the Lambda function waits out the queue's whole visibility
/// timeout (six times the function timeout: an hour with the template's defaults) before
/// the next attempt; with it, attempt *n* comes back after `base · 2^(n−1)` seconds, at most
/// `max`, so a throttled S3 is retried in seconds and a message reaches the dead-letter
/// queue in minutes.
pub trait Redelivery: Send + Sync {
    /// Makes the message of `receipt_handle` on `queue_url` visible again in `seconds`.
    fn delay<'a>(
        &'a self,
        queue_url: &'a str,
        receipt_handle: &'a str,
        seconds: i32,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;
}

/// [`Redelivery`] through SQS's ChangeMessageVisibility.
pub struct SqsRedelivery(pub aws_sdk_sqs::Client);

impl SqsRedelivery {
    /// With the usual AWS configuration of the environment (the function's role, its region).
    pub async fn from_env() -> SqsRedelivery {
        SqsRedelivery(aws_sdk_sqs::Client::new(
            &crate::aws::load_config("us-east-1").await,
        ))
    }
}

impl Redelivery for SqsRedelivery {
    fn delay<'a>(
        &'a self,
        queue_url: &'a str,
        receipt_handle: &'a str,
        seconds: i32,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(change_visibility(
            &self.0,
            queue_url,
            receipt_handle,
            seconds,
        ))
    }
}

/// SQS's ChangeMessageVisibility: the message of `receipt_handle` is visible again in
/// `seconds` (0: now).
async fn change_visibility(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handle: &str,
    seconds: i32,
) -> Result<()> {
    sqs.change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .visibility_timeout(seconds)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::Queue(format!(
                "ChangeMessageVisibility({seconds}) on {queue_url}: {}",
                DisplayErrorContext(&e)
            ))
        })
}

/// The backoff of delivery `receive_count` (1 for the first): `base · 2^(n−1)` seconds,
/// capped at `max` and at SQS's 12 hours.
pub fn redelivery_delay(receive_count: u32, base: i32, max: i32) -> i32 {
    let doublings = receive_count.saturating_sub(1).min(20);
    let delay = i64::from(base.max(0)) << doublings;
    i32::try_from(delay.min(i64::from(max)).min(43_200)).unwrap_or(43_200)
}

/// A queue's URL from its ARN (`arn:aws:sqs:eu-west-1:123456789012:uploads`), as a Lambda
/// SQS record names it (`eventSourceARN`): `https://sqs.<region>.<suffix>/<account>/<name>`.
pub fn queue_url_from_arn(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(partition), Some("sqs"), Some(region), Some(account), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let fine = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if parts.next().is_some() || ![region, account, name].into_iter().all(fine) {
        return None;
    }
    let suffix = match partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    Some(format!("https://sqs.{region}.{suffix}/{account}/{name}"))
}

/// Puts one message on a queue: how the Lambda function hands an upload past its size
/// threshold to the worker fleet's queue. A trait so that the function's tests record the
/// messages instead.
pub trait QueueSender: Send + Sync {
    fn send<'a>(
        &'a self,
        queue_url: &'a str,
        body: String,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;
}

/// [`QueueSender`] through SQS's SendMessage.
pub struct SqsSender(pub aws_sdk_sqs::Client);

impl SqsSender {
    /// With the usual AWS configuration of the environment (the function's role, its region).
    pub async fn from_env() -> SqsSender {
        SqsSender(aws_sdk_sqs::Client::new(
            &crate::aws::load_config("us-east-1").await,
        ))
    }
}

impl QueueSender for SqsSender {
    fn send<'a>(
        &'a self,
        queue_url: &'a str,
        body: String,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            self.0
                .send_message()
                .queue_url(queue_url)
                .message_body(body)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    Error::Queue(format!(
                        "SendMessage to {queue_url}: {}",
                        DisplayErrorContext(&e)
                    ))
                })
        })
    }
}

/// `hlspipe reprocess --enqueue`: sends one S3 `ObjectCreated:Put` event per source to the
/// queue. Returns how many were sent; a source the queue refused is an error naming it.
pub async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    bucket: &str,
    sources: &[ObjectInfo],
    unix_seconds: u64,
) -> Result<usize> {
    let bodies: Vec<String> = sources
        .iter()
        .map(|s| s3_put_event(bucket, &s.key, &s.etag, s.size, unix_seconds))
        .collect();
    send_all(sqs, queue_url, bodies, &|i| {
        let key = sources.get(i).map(|s| s.key.as_str()).unwrap_or("?");
        format!("the event of '{key}'")
    })
    .await
}

/// Sends at most ten bodies in one SendMessageBatch (SQS's limit), and the entries the queue
/// failed again, alone, up to four more times with a growing pause: a batch can succeed in
/// part ("SendMessageBatch", SQS API Reference: check each entry's result). Returns how
/// many were sent; an entry still refused after that is an error, `what` naming it by its
/// index in `bodies`.
pub async fn send_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: &[String],
    what: &(dyn Fn(usize) -> String + Sync),
) -> Result<usize> {
    let mut left: Vec<usize> = (0..bodies.len().min(10)).collect();
    let mut attempt = 0u32;
    loop {
        let mut entries = Vec::with_capacity(left.len());
        for &i in &left {
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(&bodies[i])
                    .build()
                    .map_err(|e| Error::Queue(e.to_string()))?,
            );
        }
        let out = sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                Error::Queue(format!(
                    "SendMessageBatch to {queue_url}: {}",
                    DisplayErrorContext(&e)
                ))
            })?;
        let index = |id: &str| id.trim_start_matches('m').parse::<usize>().ok();
        let failed: Vec<usize> = out.failed().iter().filter_map(|f| index(f.id())).collect();
        let Some(refused) = out.failed().first() else {
            return Ok(bodies.len().min(10));
        };
        attempt += 1;
        if attempt > 4 {
            return Err(Error::Queue(format!(
                "the queue refused {} {attempt} times: {} ({})",
                what(index(refused.id()).unwrap_or(0)),
                refused.message().unwrap_or_default(),
                refused.code()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        left = failed;
    }
}

/// Sends every body, ten a call ([`send_batch`]). Returns how many were sent; a message the
/// queue refused is an error, `what` naming it by its index.
pub async fn send_all(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: Vec<String>,
    what: &(dyn Fn(usize) -> String + Sync),
) -> Result<usize> {
    let mut sent = 0;
    for (batch_no, batch) in bodies.chunks(10).enumerate() {
        sent += send_batch(sqs, queue_url, batch, &|i| what(batch_no * 10 + i)).await?;
    }
    Ok(sent)
}

/// [`PartQueue`] through SQS: a ladder's parts go to the queue the fleet reads (the
/// worker's own), from the job's blocking thread.
pub struct SqsPartQueue {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub handle: tokio::runtime::Handle,
}

impl PartQueue for SqsPartQueue {
    fn send(&self, messages: &[String]) -> Result<()> {
        let what = |i: usize| format!("ladder part message #{}", i + 1);
        self.handle
            .block_on(send_all(
                &self.sqs,
                &self.queue_url,
                messages.to_vec(),
                &what,
            ))
            .map(|_| ())
    }
}

#[cfg(test)]
mod redelivery_tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let d: Vec<i32> = (1..=7).map(|n| redelivery_delay(n, 30, 900)).collect();
        assert_eq!(d, [30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(redelivery_delay(0, 30, 900), 30);
        assert_eq!(redelivery_delay(u32::MAX, 30, i32::MAX), 43_200);
        assert_eq!(redelivery_delay(3, -5, 900), 0);
    }

    #[test]
    fn queue_urls_come_from_arns() {
        assert_eq!(
            queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:hlspipe-UploadQueue-1AB2")
                .as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/hlspipe-UploadQueue-1AB2")
        );
        assert_eq!(
            queue_url_from_arn("arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q.fifo")
        );
        for bad in [
            "",
            "arn:aws:s3:::bucket",
            "arn:aws:sqs:eu-west-1:123456789012",
            "arn:aws:sqs:eu-west-1:123456789012:q:extra",
            "arn:aws:sqs:eu-west-1:12/34:q",
        ] {
            assert_eq!(queue_url_from_arn(bad), None, "{bad}");
        }
    }
}
