//! What the event commands (`process-event`, `worker`, `reprocess`) build alike: the
//! worker configuration, the stores of buckets, the CDN invalidator, JSON logs.

use anyhow::Context;
use hlspipe::pipeline::config::{PipelineConfig, CONFIG_FILE_VAR};
use hlspipe::store::location::Stores;
use hlspipe::store::{S3Settings, StoreFactory};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the event commands find their buckets and configuration.
#[derive(clap::Args)]
pub struct JobArgs {
    /// Store URL (overrides HLSPIPE_STORE). file:///PATH: bucket B is the folder PATH/B.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// TOML configuration file (overrides HLSPIPE_CONFIG).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl JobArgs {
    /// The configuration and the stores of buckets it selects.
    pub fn load(&self) -> anyhow::Result<(PipelineConfig, Arc<dyn StoreFactory>)> {
        let config = worker_config(self.config.as_deref())?;
        let stores = stores(self.store.as_deref(), &config)?;
        Ok((config, stores))
    }
}

/// Defaults, the TOML file (`--config` or `HLSPIPE_CONFIG`), then `HLSPIPE_*` variables.
pub fn worker_config(config: Option<&Path>) -> anyhow::Result<PipelineConfig> {
    let path = config
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from));
    let toml_text = match &path {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the configuration {}", p.display()))?,
        ),
        None => None,
    };
    Ok(PipelineConfig::load(
        std::env::vars(),
        toml_text.as_deref(),
    )?)
}

/// The stores of buckets: `--store URL` or `HLSPIPE_STORE` (`file:///PATH`: bucket B is
/// the folder PATH/B), else S3 (`AWS_ENDPOINT_URL` for an S3-compatible server).
pub fn stores(
    store: Option<&str>,
    config: &PipelineConfig,
) -> anyhow::Result<Arc<dyn StoreFactory>> {
    let url = store.map(String::from).or_else(|| config.store.clone());
    Ok(Arc::new(Stores::new(
        url.as_deref(),
        S3Settings::from_env(),
    )?))
}

/// CloudFront invalidations when a distribution is configured (`HLSPIPE_DISTRIBUTION_ID`),
/// none otherwise. Must run inside the runtime that will drive the client.
pub async fn invalidator(
    config: &PipelineConfig,
) -> anyhow::Result<Arc<dyn hlspipe::pipeline::invalidate::Invalidator>> {
    Ok(match &config.cdn {
        Some(cdn) => Arc::new(
            hlspipe::aws::cloudfront::CloudFrontInvalidator::from_env(cdn.distribution_id.clone())
                .await?,
        ),
        None => Arc::new(hlspipe::pipeline::invalidate::NoInvalidation),
    })
}

/// Title events on EventBridge when a bus is configured (`HLSPIPE_EVENT_BUS`), none
/// otherwise. Must run inside the runtime that will drive the client.
pub async fn notifier(
    config: &PipelineConfig,
) -> anyhow::Result<Arc<dyn hlspipe::pipeline::notify::Notifier>> {
    Ok(match &config.event_bus {
        Some(bus) => {
            Arc::new(hlspipe::aws::events::EventBridgeNotifier::from_env(bus.clone()).await?)
        }
        None => Arc::new(hlspipe::pipeline::notify::NoNotification),
    })
}

/// JSON logs on standard error, one object a line. Level from `HLSPIPE_LOG_LEVEL`
/// (error, warn, info, debug, trace); default info.
pub fn json_logs() {
    hlspipe::logs::init_json(&["HLSPIPE_LOG_LEVEL"]);
}

/// A runtime for the SDK clients. Two worker threads: the clients only wait on the
/// network; packaging runs on blocking threads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
