//! `hlspipe process-event EVENT.json [--store URL] [--config FILE] [--json]`

use anyhow::Context;
use hlspipe::config::{WorkerConfig, CONFIG_FILE_VAR};
use hlspipe::events;
use hlspipe::store::{DirStore, Store};
use hlspipe::worker::{batch_item_failures, Handled, NoInvalidation, Worker};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Event JSON: an S3 notification, an SQS event or message wrapping one, an EventBridge
    /// S3 event, or s3:TestEvent. '-' reads standard input.
    event: PathBuf,
    /// Store URL (overrides HLSPIPE_STORE). file:///PATH: bucket B is the folder PATH/B.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// TOML configuration file (overrides HLSPIPE_CONFIG).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print one JSON document (records and SQS batchItemFailures) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config_path = args
        .config
        .clone()
        .or_else(|| std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from));
    let toml_text = match &config_path {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the configuration {}", p.display()))?,
        ),
        None => None,
    };
    let config = WorkerConfig::load(std::env::vars(), toml_text.as_deref())?;
    let url = args
        .store
        .clone()
        .or_else(|| config.store.clone())
        .context("no store: pass --store URL or set HLSPIPE_STORE (file:///path)")?;
    let root = dir_root(&url)?;

    let bytes = if args.event == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b)?;
        b
    } else {
        std::fs::read(&args.event)
            .with_context(|| format!("cannot read {}", args.event.display()))?
    };
    let records = events::parse_event(&bytes)
        .with_context(|| format!("{} is not an event hlspipe reads", args.event.display()))?;

    if config.cdn.is_some() {
        eprintln!(
            "hlspipe: note: CloudFront invalidation is not built in yet; a re-published \
             master.m3u8 reaches viewers within its 60 s max-age"
        );
    }
    let worker = Worker {
        config: &config,
        invalidator: &NoInvalidation,
        clock: &hlspipe::server::unix_now,
    };
    let store_for = |bucket: &str| bucket_store(&root, bucket);
    let handled = worker.handle_all(&records, &store_for);
    print_report(&handled, args.json)?;

    let failed = handled.iter().filter(|h| h.outcome.is_failure()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} records failed", handled.len());
    }
    Ok(())
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

/// The folder of a bucket. Bucket names come from events: only S3-valid names (3–63 of
/// `a-z 0-9 . -`, starting and ending with a letter or digit; AWS S3 User Guide "Bucket
/// naming rules") are accepted, so a name can never leave the root.
fn bucket_store(root: &Path, bucket: &str) -> hlspipe::Result<Arc<dyn Store>> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && bucket
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if !valid {
        return Err(hlspipe::Error::Config(format!(
            "'{bucket}' is not a valid S3 bucket name"
        )));
    }
    let dir = root.join(bucket);
    if !dir.is_dir() {
        return Err(hlspipe::Error::Store {
            key: bucket.to_string(),
            reason: format!("no such bucket (no folder {})", dir.display()),
        });
    }
    Ok(Arc::new(DirStore::new(dir)))
}

fn print_report(handled: &[Handled], json: bool) -> anyhow::Result<()> {
    if json {
        let failures: Vec<serde_json::Value> = batch_item_failures(handled)
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
