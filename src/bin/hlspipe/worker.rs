//! `hlspipe worker --queue-url URL [--concurrency N] [--wait-seconds 20] …`: the
//! long-running SQS consumer ([`hlspipe::aws::sqs`]). Exits 0 after SIGTERM or SIGINT
//! once work in hand is finished or released.

use crate::setup;
use anyhow::Context;
use hlspipe::aws::sqs::{QueueConsumer, QueueSettings, SqsPartQueue};
use hlspipe::pipeline::work::PartQueue;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The queue's URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`). AWS_ENDPOINT_URL
    /// points the client at another server.
    #[arg(long, value_name = "URL")]
    queue_url: String,
    /// Messages worked on at once.
    #[arg(long, default_value_t = 1, value_name = "N")]
    concurrency: usize,
    /// Long-poll wait of each receive (0-20 s).
    #[arg(long, default_value_t = 20, value_name = "S")]
    wait_seconds: i32,
    /// Visibility timeout taken on receive and renewed every third of it while working.
    #[arg(long, default_value_t = 120, value_name = "S")]
    visibility_seconds: i32,
    /// After a retryable failure, the message comes back after this long.
    #[arg(long, default_value_t = 30, value_name = "S")]
    retry_delay_seconds: i32,
    /// On SIGTERM/SIGINT, how long work in hand may run before it is released.
    #[arg(long, default_value_t = 20, value_name = "S")]
    grace_seconds: u64,
    #[command(flatten)]
    job: setup::JobArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    setup::json_logs();
    let (config, stores) = args.job.load()?;
    let config = Arc::new(config);
    let settings = QueueSettings {
        queue_url: args.queue_url,
        concurrency: args.concurrency,
        wait_seconds: args.wait_seconds,
        visibility_seconds: args.visibility_seconds,
        retry_delay_seconds: args.retry_delay_seconds,
        grace: Duration::from_secs(args.grace_seconds),
    };
    settings.validate()?;
    let runtime = setup::runtime()?;
    let result = runtime.block_on(async {
        let sqs = aws_sdk_sqs::Client::new(&hlspipe::aws::load_config("us-east-1").await);
        // A ladder's chunks fan out through the worker's own queue, to the whole fleet.
        let parts = config.ladder.is_on().then(|| {
            Arc::new(SqsPartQueue {
                sqs: sqs.clone(),
                queue_url: settings.queue_url.clone(),
                handle: tokio::runtime::Handle::current(),
            }) as Arc<dyn PartQueue>
        });
        let worker = QueueConsumer {
            parts,
            sqs,
            settings,
            invalidator: setup::invalidator(&config).await?,
            notifier: setup::notifier(&config).await?,
            config,
            stores,
        };
        tracing::info!("worker started");
        let stop = async {
            hlspipe::delivery::http::shutdown_signal().await;
            tracing::info!("SIGTERM or SIGINT: stopping");
        };
        anyhow::Ok(worker.run(stop).await?)
    });
    // Jobs abandoned at the end of the grace period may still be running on blocking
    // threads: do not wait for them (their messages were released).
    runtime.shutdown_background();
    result.context("worker")?;
    Ok(())
}
