//! `hlspipe process-event EVENT.json [--store URL] [--config FILE] [--json]`

use crate::setup;
use anyhow::Context;
use hlspipe::pipeline::batch::{retryable_batch_item_failures, Handled};
use hlspipe::pipeline::event;
use hlspipe::pipeline::invalidate::NoInvalidation;
use hlspipe::pipeline::job::Pipeline;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Event JSON: an S3 notification, an SQS event or message wrapping one, an EventBridge
    /// S3 event, or s3:TestEvent. '-' reads standard input.
    event: PathBuf,
    #[command(flatten)]
    job: setup::JobArgs,
    /// Print one JSON document (records and SQS batchItemFailures) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (config, stores) = args.job.load()?;

    let bytes = if args.event == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b)?;
        b
    } else {
        std::fs::read(&args.event)
            .with_context(|| format!("cannot read {}", args.event.display()))?
    };
    let records = event::parse_event(&bytes)
        .with_context(|| format!("{} is not an event hlspipe reads", args.event.display()))?;

    // Only when a distribution or an event bus is configured: a runtime for their clients.
    let runtime = match config.cdn.is_some() || config.event_bus.is_some() {
        true => Some(setup::runtime()?),
        false => None,
    };
    let (invalidator, notifier) = match &runtime {
        Some(rt) => (
            rt.block_on(setup::invalidator(&config))?,
            rt.block_on(setup::notifier(&config))?,
        ),
        None => (
            std::sync::Arc::new(NoInvalidation)
                as std::sync::Arc<dyn hlspipe::pipeline::invalidate::Invalidator>,
            std::sync::Arc::new(hlspipe::pipeline::notify::NoNotification)
                as std::sync::Arc<dyn hlspipe::pipeline::notify::Notifier>,
        ),
    };
    let worker = Pipeline {
        config: &config,
        invalidator: invalidator.as_ref(),
        notifier: notifier.as_ref(),
        parts: None,
        deadline: None,
        clock: &hlspipe::clock::unix_now,
        rebuild: false,
    };
    let store_for = |bucket: &str| stores.store_for(bucket);
    let handled = worker.handle_all(&records, &store_for);
    print_report(&handled, args.json)?;

    let failed = handled.iter().filter(|h| h.outcome.is_failure()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} records failed", handled.len());
    }
    Ok(())
}

fn print_report(handled: &[Handled], json: bool) -> anyhow::Result<()> {
    if json {
        // What the Lambda function would answer an SQS batch: only retryable failures
        // are delivered again (a corrupt upload has its failed manifest already).
        let failures: Vec<serde_json::Value> = retryable_batch_item_failures(handled)
            .unwrap_or_default()
            .into_iter()
            .map(|id| serde_json::json!({ "itemIdentifier": id }))
            .collect();
        let doc = serde_json::json!({
            "records": handled,
            "failed": handled.iter().filter(|h| h.outcome.is_failure()).count(),
            "batchItemFailures": failures,
        });
        println!("{}", serde_json::to_string(&doc)?);
        return Ok(());
    }
    if handled.is_empty() {
        println!("no records");
    }
    for h in handled {
        match (&h.bucket, &h.key) {
            (Some(b), Some(k)) => println!("s3://{b}/{k}: {}", h.outcome),
            _ => println!("{}", h.outcome),
        }
    }
    Ok(())
}
