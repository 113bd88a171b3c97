//! `hlspipe reprocess`: the catalogue under a prefix planned title by title
//! ([`crate::pipeline::catalogue`]), and the titles that need it run through the same job
//! as an upload event, several at once, while the listing goes on; or their upload events
//! sent to the queue, so the fleet does the work (DESIGN.md "Surfaces").

use crate::error::Result;
use crate::pipeline::batch::Handled;
use crate::pipeline::catalogue::{self, PlannedTitle, Scope, Status};
use crate::pipeline::event::{Job, ParsedRecord, Record, RecordKind};
use crate::pipeline::job::Pipeline;
use crate::store::{ObjectInfo, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The upload record of a listed source, as its upload event would give it.
pub fn record_for(bucket: &str, source: &ObjectInfo) -> ParsedRecord {
    Ok(Record {
        reprocess: false,
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

/// What a run does with the titles the plan gives.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Jobs at once.
    pub concurrency: usize,
    /// Plan only: nothing is written.
    pub dry_run: bool,
    /// Also the titles whose last run of this version failed.
    pub retry_failed: bool,
    /// Every title with a source, whatever its status.
    pub force: bool,
}

impl RunOptions {
    /// Whether a run does `status`: `new` and `outdated`; `failed before` when asked to;
    /// everything with a source with `force`. Never an orphan (only `--prune` removes one).
    pub fn selects(&self, status: &Status) -> bool {
        match status {
            Status::Orphaned(_) => false,
            _ if self.force => true,
            Status::New | Status::Outdated(_) => true,
            Status::FailedBefore(_) => self.retry_failed,
            Status::UpToDate | Status::InProgress(_) => false,
        }
    }
}

/// What a run tells its caller, title by title as it goes.
#[derive(Debug)]
pub enum Progress {
    /// Planned and left as it is (not selected, a dry run, or stopped before it started).
    Left(PlannedTitle),
    /// Planned and handed to a job.
    Started(PlannedTitle),
    /// Its job is done.
    Done(PlannedTitle, Handled, Duration),
}

/// Plans `scope` and runs the titles `opts` selects through `pipeline`, `concurrency` at
/// once, while the listing goes on (a bounded hand-over: the plan waits for a free job).
/// Once `stop` is set (Ctrl-C), no title is started; the running ones finish.
pub fn run(
    pipeline: &Pipeline<'_>,
    store: &Arc<dyn Store>,
    bucket: &str,
    scope: &Scope,
    opts: RunOptions,
    stop: &AtomicBool,
    report: &(dyn Fn(Progress) + Sync),
) -> Result<()> {
    let jobs = opts.concurrency.max(1);
    let (hand, take) = std::sync::mpsc::sync_channel::<PlannedTitle>(jobs);
    let take = Mutex::new(take);
    let store_for = |_: &str| Ok(Arc::clone(store));
    std::thread::scope(|threads| {
        for _ in 0..jobs {
            threads.spawn(|| loop {
                let next = take.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok(planned) = next else { break };
                if stop.load(Ordering::SeqCst) {
                    report(Progress::Left(planned));
                    continue;
                }
                let Some(source) = planned.source.as_ref() else {
                    report(Progress::Left(planned));
                    continue;
                };
                let record = record_for(bucket, source);
                report(Progress::Started(planned.clone()));
                let done = pipeline.handle_each(std::slice::from_ref(&record), &store_for);
                for (handled, took) in done {
                    report(Progress::Done(planned.clone(), handled, took));
                }
            });
        }
        let planned = catalogue::plan(store.as_ref(), pipeline.config, scope, &mut |p| {
            if stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            if opts.dry_run || !opts.selects(&p.status) {
                report(Progress::Left(p));
            } else if let Err(returned) = hand.send(p) {
                report(Progress::Left(returned.0));
            }
            Ok(true)
        });
        drop(hand);
        planned
    })
}
