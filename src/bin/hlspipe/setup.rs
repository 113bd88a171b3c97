//! What the event commands (`process-event`, `worker`, `reprocess`) build alike: the
//! worker configuration, the stores of buckets, the CDN invalidator, JSON logs.

use anyhow::Context;
use hlspipe::config::{WorkerConfig, CONFIG_FILE_VAR};
use hlspipe::store::{DirBuckets, StoreFactory};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Defaults, the TOML file (`--config` or `HLSPIPE_CONFIG`), then `HLSPIPE_*` variables.
pub fn worker_config(config: Option<&Path>) -> anyhow::Result<WorkerConfig> {
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
    Ok(WorkerConfig::load(std::env::vars(), toml_text.as_deref())?)
}

/// The stores of buckets: `--store URL` or `HLSPIPE_STORE`.
pub fn stores(store: Option<&str>, config: &WorkerConfig) -> anyhow::Result<Arc<dyn StoreFactory>> {
    let url = store
        .map(String::from)
        .or_else(|| config.store.clone())
        .context("no store: pass --store URL or set HLSPIPE_STORE (file:///path)")?;
    Ok(Arc::new(DirBuckets::new(dir_root(&url)?)))
}

/// `file:///srv/buckets` → `/srv/buckets`. Only file:// for now: the S3 store arrives with
/// its own scheme.
fn dir_root(url: &str) -> anyhow::Result<PathBuf> {
    let Some(path) = url.strip_prefix("file://") else {
        anyhow::bail!(
            "store '{url}': only file:///PATH stores are supported by this build (a bucket is \
             a folder below PATH)"
        );
    };
    // RFC 8089: file URLs percent-encode their path.
    let path = percent_decode(path).with_context(|| format!("store '{url}'"))?;
    anyhow::ensure!(
        path.starts_with('/'),
        "store '{url}': expected file:///absolute/path"
    );
    Ok(PathBuf::from(path))
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .context("bad %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

/// CloudFront invalidations when a distribution is configured (`HLSPIPE_DISTRIBUTION_ID`),
/// none otherwise. Must run inside the runtime that will drive the client.
pub async fn invalidator(config: &WorkerConfig) -> Arc<dyn hlspipe::worker::Invalidator> {
    match &config.cdn {
        Some(cdn) => Arc::new(
            hlspipe::cdn::CloudFrontInvalidator::from_env(cdn.distribution_id.clone()).await,
        ),
        None => Arc::new(hlspipe::worker::NoInvalidation),
    }
}

/// JSON logs on standard error, one object a line. Level from `HLSPIPE_LOG_LEVEL`
/// (error, warn, info, debug, trace); default info.
pub fn json_logs() {
    let level = std::env::var("HLSPIPE_LOG_LEVEL")
        .ok()
        .and_then(|l| l.trim().parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
}

/// A runtime for the SDK clients. Two worker threads: the clients only wait on the
/// network; packaging runs on blocking threads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Unix seconds, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
