//! `hlspipe reprocess --prefix [s3://BUCKET/]uploads/shows/ [--bucket B] [--concurrency N]
//! [--enqueue --queue-url URL]`: every source under a prefix again, locally or through
//! the queue ([`hlspipe::pipeline::reprocess`]).

use crate::setup;
use anyhow::Context;
use hlspipe::aws::sqs::enqueue;
use hlspipe::pipeline::batch::log_handled;
use hlspipe::pipeline::job::Pipeline;
use hlspipe::pipeline::reprocess::{process_locally, sources_under};

#[derive(clap::Args)]
pub struct Args {
    /// Key prefix of the sources (`uploads/shows/`), or `s3://BUCKET/PREFIX`.
    #[arg(long, value_name = "PREFIX")]
    prefix: String,
    /// The bucket, when --prefix does not name it.
    #[arg(long, value_name = "NAME")]
    bucket: Option<String>,
    /// Send one S3 upload event per source to the queue instead of processing here.
    #[arg(long, requires = "queue_url")]
    enqueue: bool,
    /// The queue for --enqueue.
    #[arg(long, value_name = "URL")]
    queue_url: Option<String>,
    /// Sources processed at once (local mode).
    #[arg(long, default_value_t = 2, value_name = "N")]
    concurrency: usize,
    #[command(flatten)]
    job: setup::JobArgs,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (config, stores) = args.job.load()?;
    let (bucket, prefix) = match args.prefix.strip_prefix("s3://") {
        Some(rest) => {
            let (b, p) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(
                args.bucket.as_deref().is_none_or(|given| given == b),
                "--bucket and --prefix name different buckets"
            );
            (b.to_string(), p.to_string())
        }
        None => (
            args.bucket
                .clone()
                .context("name the bucket: --bucket NAME or --prefix s3://NAME/PREFIX")?,
            args.prefix.clone(),
        ),
    };
    let store = stores.store_for(&bucket)?;
    let sources = sources_under(store.as_ref(), &config, &prefix)?;
    let runtime = setup::runtime()?;

    if args.enqueue {
        let queue_url = args.queue_url.context("--enqueue needs --queue-url")?;
        let sent = runtime.block_on(async {
            let sqs = aws_sdk_sqs::Client::new(&hlspipe::aws::load_config("us-east-1").await);
            enqueue(
                &sqs,
                &queue_url,
                &bucket,
                &sources,
                hlspipe::clock::unix_now(),
            )
            .await
        })?;
        if args.json {
            println!("{}", serde_json::json!({ "enqueued": sent }));
        } else {
            println!("enqueued {sent} sources to {queue_url}");
        }
        return Ok(());
    }

    let invalidator = runtime.block_on(setup::invalidator(&config))?;
    let notifier = runtime.block_on(setup::notifier(&config))?;
    let worker = Pipeline {
        config: &config,
        invalidator: invalidator.as_ref(),
        notifier: notifier.as_ref(),
        parts: None,
        deadline: None,
        clock: &hlspipe::clock::unix_now,
    };
    let handled = process_locally(&worker, &bucket, &sources, &store, args.concurrency);
    let failed = handled
        .iter()
        .filter(|(h, _)| h.outcome.is_failure())
        .count();
    if args.json {
        let records: Vec<_> = handled.iter().map(|(h, _)| h).collect();
        println!(
            "{}",
            serde_json::json!({ "records": records, "failed": failed })
        );
    } else {
        if handled.is_empty() {
            println!("no sources under s3://{bucket}/{prefix}");
        }
        for (h, elapsed) in &handled {
            let key = h.key.as_deref().unwrap_or("?");
            println!("{key}: {} ({} ms)", h.outcome, elapsed.as_millis());
            log_handled(h, *elapsed);
        }
    }
    runtime.shutdown_background();
    if failed > 0 {
        anyhow::bail!("{failed} of {} sources failed", handled.len());
    }
    Ok(())
}
