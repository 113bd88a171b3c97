//! `hlspipe reprocess`: every source under a prefix, again (after a change of settings or
//! of the packager). Locally, with bounded concurrency, through the same job logic as an
//! upload event; or by sending each source's S3-shaped upload event to the queue, so the
//! fleet (Lambda or `hlspipe worker`) does the work (DESIGN.md "Surfaces").

use crate::error::{Error, Result};
use crate::pipeline::batch::Handled;
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::event::{s3_put_event, Job, ParsedRecord, Record, RecordKind};
use crate::pipeline::job::Pipeline;
use crate::pipeline::keys::{classify_key, KeyRole, TitleManifest};
use crate::store::{ObjectInfo, Store};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The sources under `prefix`, in key order: media files and title manifests, leaving
/// out the inputs that a listed title manifest names (they are built with their title,
/// and two jobs must not build one title at once). A title manifest that cannot be read
/// is kept: its job reports why.
pub fn sources_under(
    store: &dyn Store,
    config: &PipelineConfig,
    prefix: &str,
) -> Result<Vec<ObjectInfo>> {
    let listing = store.list(prefix)?;
    let mut claimed: Vec<String> = Vec::new();
    for o in &listing {
        if let KeyRole::TitleManifest { .. } = classify_key(config, &o.key) {
            if let Some(bytes) = store.get(&o.key)? {
                if let Ok(inputs) = TitleManifest::parse(config, &o.key, &bytes) {
                    claimed.extend(inputs);
                }
            }
        }
    }
    Ok(listing
        .into_iter()
        .filter(|o| !matches!(classify_key(config, &o.key), KeyRole::Ignored(_)))
        .filter(|o| !claimed.contains(&o.key))
        .collect())
}

/// The upload record of a listed source, as its upload event would give it.
pub fn record_for(bucket: &str, source: &ObjectInfo) -> ParsedRecord {
    Ok(Record {
        kind: RecordKind::Created,
        job: Job {
            bucket: bucket.to_string(),
            key: source.key.clone(),
            etag: Some(source.etag.clone()),
            size: Some(source.size),
            sequencer: None,
        },
        message_id: None,
    })
}

/// Handles every source with at most `concurrency` jobs at once; results in source order,
/// each with how long it took.
pub fn process_locally(
    worker: &Pipeline<'_>,
    bucket: &str,
    sources: &[ObjectInfo],
    store: &Arc<dyn Store>,
    concurrency: usize,
) -> Vec<(Handled, Duration)> {
    let records: Vec<ParsedRecord> = sources.iter().map(|s| record_for(bucket, s)).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<(Handled, Duration)>>> =
        Mutex::new((0..records.len()).map(|_| None).collect());
    let store_for = |_: &str| Ok(Arc::clone(store));
    std::thread::scope(|scope| {
        for _ in 0..concurrency.clamp(1, 64).min(records.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(record) = records.get(i) else { break };
                let done = worker.handle_each(std::slice::from_ref(record), &store_for);
                if let (Ok(mut results), Some(first)) = (results.lock(), done.into_iter().next()) {
                    if let Some(slot) = results.get_mut(i) {
                        *slot = Some(first);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// Sends one S3 `ObjectCreated:Put` event per source to the queue (SendMessageBatch, 10
/// a call, SQS's limit). Returns how many were sent; a source the queue refused is an
/// error naming it.
pub async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    bucket: &str,
    sources: &[ObjectInfo],
    unix_seconds: u64,
) -> Result<usize> {
    let mut sent = 0;
    for (batch_no, batch) in sources.chunks(10).enumerate() {
        let mut entries = Vec::with_capacity(batch.len());
        for (i, s) in batch.iter().enumerate() {
            let body = s3_put_event(bucket, &s.key, &s.etag, s.size, unix_seconds);
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{}", batch_no * 10 + i))
                    .message_body(body)
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
        if let Some(f) = out.failed().first() {
            let index: usize = f.id().trim_start_matches('m').parse().unwrap_or(0);
            let key = sources.get(index).map(|s| s.key.as_str()).unwrap_or("?");
            return Err(Error::Queue(format!(
                "the queue refused the event of '{key}': {} ({})",
                f.message().unwrap_or_default(),
                f.code()
            )));
        }
        sent += out.successful().len();
    }
    Ok(sent)
}
