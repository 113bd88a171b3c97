//! `hlspipe reprocess`: every source under a prefix, again (after a change of settings or
//! of the packager). Locally, with bounded concurrency, through the same job logic as an
//! upload event; or by sending each source's S3-shaped upload event to the queue, so the
//! fleet (Lambda or `hlspipe worker`) does the work (DESIGN.md "Surfaces").

use crate::error::Result;
use crate::pipeline::batch::Handled;
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::event::{Job, ParsedRecord, Record, RecordKind};
use crate::pipeline::job::Pipeline;
use crate::pipeline::keys::{classify_key, KeyRole, TitleManifest};
use crate::pipeline::pool::try_map_bounded;
use crate::store::{ObjectInfo, Store};
use std::sync::Arc;
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
        // A side file's title is rebuilt from its video's record, which reads it.
        .filter(|o| {
            !matches!(
                classify_key(config, &o.key),
                KeyRole::Ignored(_) | KeyRole::Subtitles { .. }
            )
        })
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
    pipeline: &Pipeline<'_>,
    bucket: &str,
    sources: &[ObjectInfo],
    store: &Arc<dyn Store>,
    concurrency: usize,
) -> Vec<(Handled, Duration)> {
    let records: Vec<ParsedRecord> = sources.iter().map(|s| record_for(bucket, s)).collect();
    let store_for = |_: &str| Ok(Arc::clone(store));
    let handled = try_map_bounded(&records, concurrency, |record| {
        let done = pipeline.handle_each(std::slice::from_ref(record), &store_for);
        Ok::<_, std::convert::Infallible>(done.into_iter().next())
    });
    match handled {
        Ok(handled) => handled.into_iter().flatten().collect(),
        Err(never) => match never {},
    }
}
