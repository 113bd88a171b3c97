//! The Lambda function's entry point: it only wires (logs, configuration, stores, CDN,
//! the runtime). The handler is [`hlspipe_lambda::handle`].

use hlspipe::aws::cloudfront::CloudFrontInvalidator;
use hlspipe::aws::events::EventBridgeNotifier;
use hlspipe::aws::sqs::{QueueSender, SqsRedelivery, SqsSender};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::invalidate::{Invalidator, NoInvalidation};
use hlspipe::pipeline::notify::{NoNotification, Notifier};
use hlspipe::store::location::Stores;
use hlspipe::store::S3Settings;
use hlspipe_lambda::{handle, init_logging, FleetRoute, Handler};
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    // Lambda configures the function through environment variables only.
    let config = PipelineConfig::load(std::env::vars(), None)?;
    // S3 through the function's role, or folders when HLSPIPE_STORE=file:///path.
    let stores = Stores::new(config.store.as_deref(), S3Settings::from_env())?;
    let invalidator: Arc<dyn Invalidator> = match &config.cdn {
        Some(cdn) => Arc::new(CloudFrontInvalidator::from_env(cdn.distribution_id.clone()).await?),
        None => Arc::new(NoInvalidation),
    };
    let redelivery = Arc::new(SqsRedelivery::from_env().await);
    let notifier: Arc<dyn Notifier> = match &config.event_bus {
        Some(bus) => Arc::new(EventBridgeNotifier::from_env(bus.clone()).await?),
        None => Arc::new(NoNotification),
    };
    let sender: Arc<dyn QueueSender> = Arc::new(SqsSender(redelivery.0.clone()));
    let fleet = FleetRoute::from_vars(
        std::env::var("HLSPIPE_FLEET_QUEUE_URL").ok(),
        std::env::var("HLSPIPE_FLEET_MIN_BYTES").ok(),
        || sender,
    )?;
    let handler = Arc::new(Handler {
        config,
        stores,
        invalidator,
        notifier,
        clock: hlspipe::clock::unix_now,
        redelivery: Some(redelivery),
        fleet,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        handle(Arc::clone(&handler), event)
    }))
    .await
}
