//! `hlspipe dev`: the whole product on one machine with no AWS account. A folder
//! bucket, upload events from it into the worker, the edge, the playback API with
//! a development key, and a player page, all on one loopback listener.

use crate::dev_page::{self, Page};
use anyhow::Context;
use axum::Router;
use hlspipe::delivery::api::{self, ApiConfig, Auth};
use hlspipe::delivery::auth::BearerToken;
use hlspipe::delivery::edge::{self, Access, EdgeConfig};
use hlspipe::delivery::http::{self, AccessLog};
use hlspipe::delivery::sign::{HashAlgorithm, KeySet, Signer, Verifier};
use hlspipe::delivery::uploads::{self, UploadRules, Uploads};
use hlspipe::dev::lanes::Lanes;
use hlspipe::dev::watch::UploadWatcher;
use hlspipe::dev::{self, DEV_KEY_PAIR_ID, SAMPLE_MP4};
use hlspipe::media::object::{Body, Object};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::Record;
use hlspipe::store::{DirStore, Store};
use hlspipe::transcode::ffmpeg::Ffmpeg;
use hlspipe::transcode::ladder::Ladder;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// The local bucket's name: `DIR/media/` holds it, so `HLSPIPE_STORE=file://DIR`
/// names the same objects.
const BUCKET: &str = "media";

#[derive(clap::Args)]
pub struct Args {
    /// Data folder: the bucket is DIR/media/, uploads go to DIR/media/uploads/.
    #[arg(long, env = "HLSPIPE_DATA", default_value = "hlspipe-data")]
    data: PathBuf,
    /// Address to listen on (loopback by default).
    #[arg(long, env = "HLSPIPE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Require `Authorization: Bearer T` on the playback API (off by default on loopback).
    #[arg(long, env = "HLSPIPE_TOKEN", hide_env_values = true, value_name = "T")]
    token: Option<String>,
    /// Target segment duration in seconds.
    #[arg(long, default_value_t = 6.0)]
    segment_duration: f64,
    /// How long the playback API's cookies last, in seconds (the page renews them before
    /// they expire).
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    cookie_seconds: u64,
    /// The largest file the page (or `curl -T`) may upload, in bytes.
    #[arg(long, env = "HLSPIPE_UPLOAD_MAX_BYTES", default_value_t = 20 << 30, value_name = "BYTES")]
    upload_max_bytes: u64,
    /// Seconds between looks at the uploads folder.
    #[arg(long, default_value_t = 1.0)]
    poll_seconds: f64,
    /// The transcoding stage's ladder (docs/ladder.md): `auto` by default when ffmpeg is
    /// found (on PATH, or HLSPIPE_FFMPEG), else `off`.
    #[arg(long, env = "HLSPIPE_LADDER", value_name = "off|auto|RUNGS")]
    ladder: Option<Ladder>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::serve::init_tracing();
    if !args.listen.ip().is_loopback() && args.token.is_none() {
        anyhow::bail!(
            "--listen {}: off loopback the playback API needs --token (anyone could get cookies)",
            args.listen
        );
    }
    let bucket_dir = args.data.join(BUCKET);
    std::fs::create_dir_all(&bucket_dir)
        .with_context(|| format!("creating {}", bucket_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(DirStore::new(&bucket_dir));
    let (config, ladder_line) = pipeline_config(&args)?;
    let config = Arc::new(config);
    seed_sample(store.as_ref(), &config.input_prefix)?;

    let key = dev::dev_key(&args.data.join("dev-key.pem"))?;
    let keys = KeySet::new(DEV_KEY_PAIR_ID, key)?;
    let verifier = Arc::new(Verifier::new(keys.public_keys()));
    let signer = Arc::new(Signer::new(keys, HashAlgorithm::Sha1));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        let target = uploads::folder_target(
            Arc::clone(&store),
            args.data.join(".hlspipe-uploads").join(BUCKET),
        )?;
        let uploads = Uploads::new(UploadRules::new((*config).clone()), target, &base);
        let page = Arc::new(Page {
            store: Arc::clone(&store),
            config: Arc::clone(&config),
            bucket: BUCKET,
            bearer: args.token.as_deref().map(BearerToken::new).transpose()?,
            staging: args.data.join(".hlspipe-uploads").join("page"),
            rules: UploadRules::new((*config).clone())
                .max_size(args.upload_max_bytes)
                .map_err(|e| anyhow::anyhow!("--upload-max-bytes: {e}"))?,
            max_upload_bytes: args.upload_max_bytes,
            received: AtomicU64::new(0),
        });
        let app = dev_app(
            &base,
            args.token.as_deref(),
            page,
            args.cookie_seconds,
            (signer, verifier),
            uploads,
        )?;
        let watcher = tokio::spawn(watch_uploads(
            Arc::clone(&store),
            Arc::clone(&config),
            Duration::from_secs_f64(args.poll_seconds.clamp(0.1, 60.0)),
        ));
        let shutdown = http::shutdown_signal();
        eprintln!("{}", banner(&base, &bucket_dir, &config));
        eprintln!("  ladder:   {ladder_line}");
        http::serve(listener, app, shutdown).await?;
        watcher.abort();
        eprintln!("hlspipe dev: stopped");
        Ok(())
    })
}

/// The worker's settings: the ladder on when ffmpeg is found (unless the flag says), and the
/// line the banner prints about it.
fn pipeline_config(args: &Args) -> anyhow::Result<(PipelineConfig, String)> {
    let ffmpeg_path = std::env::var("HLSPIPE_FFMPEG")
        .ok()
        .filter(|p| !p.is_empty());
    let ffmpeg = Ffmpeg::locate(ffmpeg_path.as_deref().map(std::ffi::OsStr::new));
    let ladder = match (&args.ladder, &ffmpeg) {
        (Some(ladder), _) => ladder.clone(),
        (None, Ok(_)) => Ladder::Auto,
        (None, Err(_)) => Ladder::Off,
    };
    let config = PipelineConfig {
        segment_duration: args.segment_duration,
        ladder,
        ffmpeg: ffmpeg_path,
        ..PipelineConfig::default()
    }
    .validate()?;
    let ladder_line = match (&config.ladder, &ffmpeg) {
        (Ladder::Off, Err(e)) => format!("off ({e})"),
        (Ladder::Off, Ok(_)) => "off".to_owned(),
        (ladder, Ok(f)) => format!("{ladder} ({}, {})", f.version, f.path().display()),
        (ladder, Err(e)) => format!("{ladder}, but {e}"),
    };
    Ok((config, ladder_line))
}

/// Everything on one listener: the player page, its title list, uploads and buttons
/// (`dev_page`), the playback API (cookies for anyone on loopback, or for the token),
/// uploads from a site into the bucket folder (`POST /v1/uploads`, behind the same check),
/// and the edge that checks cookies.
fn dev_app(
    base: &str,
    token: Option<&str>,
    page: Arc<Page>,
    cookie_seconds: u64,
    (signer, verifier): (Arc<Signer>, Arc<Verifier>),
    uploads: Uploads,
) -> anyhow::Result<Router> {
    let auth = match token {
        Some(t) => Auth::Bearer(t.to_string()),
        None => Auth::Disabled,
    };
    let store = &page.store;
    let out = page.config.output_prefix.clone();
    // Expiries rounded up to a quarter of the lifetime (at most a minute), so one viewer's
    // cookies do not change with every request.
    let api_config = ApiConfig::new(base, auth)?
        .lifetime(cookie_seconds, (cookie_seconds / 4).clamp(1, 60))?
        .output_prefix(&out)?
        .uploads(uploads);
    let edge_config = EdgeConfig::new(base)?.map_prefix(&format!("/{out}"), &out)?;
    let app = dev_page::routes(Arc::clone(&page))
        .merge(api::router(api_config, Arc::clone(store), signer))
        .merge(edge::router(
            edge_config,
            Arc::clone(store),
            Access::Signed(verifier),
        ));
    Ok(http::with_access_log(
        app,
        AccessLog::to_writer(std::io::stdout()),
        hlspipe::clock::system_clock(),
    ))
}

/// What a newcomer needs to know on start: where to look, where to copy files.
fn banner(base: &str, bucket_dir: &Path, config: &PipelineConfig) -> String {
    let out = &config.output_prefix;
    format!(
        "hlspipe dev: {base}/ (player page: drop videos on it)\n  \
         upload:   curl -T movie.mp4 {base}/dev/uploads/   (or cp movie.mp4 {})\n  \
         titles:   {}\n  \
         playback: {base}/v1/titles/<title>/playback (sets the CloudFront cookies)\n  \
         uploads:  POST {base}/v1/uploads (docs/uploads.md)\n  \
         edge:     {base}/{out}<title>.hls/master.m3u8 (needs the cookies)\n  \
         hls.js:   {} (in the binary)",
        bucket_dir.join(&config.input_prefix).display(),
        bucket_dir.join(out).display(),
        dev::HLS_JS_VERSION,
    )
}

/// Puts the bundled sample under the input prefix when the folder holds no upload
/// yet, so the first start has a title to play.
fn seed_sample(store: &dyn Store, input_prefix: &str) -> anyhow::Result<()> {
    if !store.list(input_prefix)?.is_empty() {
        return Ok(());
    }
    let key = format!("{input_prefix}sample.mp4");
    let obj = Object {
        key: key.clone(),
        content_type: "video/mp4",
        cache_control: "no-cache",
        body: Body::from_bytes(SAMPLE_MP4.to_vec()),
    };
    store.put(&key, &obj, &[])?;
    Ok(())
}

/// Polls the uploads folder and hands what changed to the worker as S3 notifications would
/// arrive: one record a job, different uploads in parallel (`hlspipe::dev::lanes`). A listing
/// that fails is logged and retried with the watcher's state kept, so nothing is re-run and
/// deletions made meanwhile are applied.
async fn watch_uploads(store: Arc<dyn Store>, config: Arc<PipelineConfig>, every: Duration) {
    let mut watcher = UploadWatcher::new(BUCKET, config.input_prefix.clone());
    let (s, c) = (Arc::clone(&store), Arc::clone(&config));
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let mut lanes = Lanes::new(jobs, move |record: &Record| {
        dev::run_record(&s, &c, record, false)
    });
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let s = Arc::clone(&store);
                let polled = tokio::task::spawn_blocking(move || {
                    let records = watcher.poll(s.as_ref());
                    (watcher, records)
                })
                .await;
                match polled {
                    Ok((w, Ok(records))) => {
                        watcher = w;
                        lanes.submit(records);
                    }
                    Ok((w, Err(e))) => {
                        watcher = w;
                        eprintln!("hlspipe dev: listing uploads failed, will retry: {e}");
                    }
                    Err(e) => {
                        eprintln!("hlspipe dev: the upload watcher stopped: {e}");
                        return;
                    }
                }
            }
            Some(()) = lanes.next_done() => {}
        }
    }
}
