//! `hlspipe dev`: the whole product on one machine with no AWS account. A folder
//! bucket, upload events from it into the worker, the edge, the playback API with
//! a development key, and a player page, all on one loopback listener.

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use hlspipe::delivery::api::{self, ApiConfig, Auth};
use hlspipe::delivery::edge::{self, Access, EdgeConfig};
use hlspipe::delivery::http::{self, AccessLog};
use hlspipe::delivery::sign::{HashAlgorithm, KeySet, Signer, Verifier};
use hlspipe::delivery::uploads::{self, UploadRules, Uploads};
use hlspipe::dev::lanes::Lanes;
use hlspipe::dev::watch::UploadWatcher;
use hlspipe::dev::{self, DEV_KEY_PAIR_ID, PLAYER_PAGE, SAMPLE_MP4};
use hlspipe::logs::escape_name;
use hlspipe::media::object::{Body, Object};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::{Record, RecordKind};
use hlspipe::pipeline::invalidate::NoInvalidation;
use hlspipe::pipeline::job::Pipeline;
use hlspipe::store::{DirStore, Store};
use hlspipe::transcode::ffmpeg::Ffmpeg;
use hlspipe::transcode::ladder::Ladder;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The local bucket's name: `DIR/media/` holds it, so `HLSPIPE_STORE=file://DIR`
/// names the same objects.
const BUCKET: &str = "media";

/// hls.js for the player page when no local copy is found (a pinned major version).
const HLS_JS_CDN: &str = "https://cdn.jsdelivr.net/npm/hls.js@1/dist/hls.min.js";

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
    /// A local hls.min.js for the player page (default: the test harness's copy if
    /// present, else the page loads it from a CDN).
    #[arg(long, env = "HLSPIPE_HLS_JS", value_name = "PATH")]
    hls_js: Option<PathBuf>,
    /// Seconds between looks at the uploads folder.
    #[arg(long, default_value_t = 1.0)]
    poll_seconds: f64,
    /// The transcoding stage's ladder (docs/ladder.md): `auto` by default when ffmpeg is
    /// found (on PATH, or HLSPIPE_FFMPEG), else `off`.
    #[arg(long, env = "HLSPIPE_LADDER", value_name = "off|auto|RUNGS")]
    ladder: Option<Ladder>,
}

struct Page {
    store: Arc<dyn Store>,
    output_prefix: String,
    hls_js: Option<PathBuf>,
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
    let ffmpeg_path = std::env::var("HLSPIPE_FFMPEG")
        .ok()
        .filter(|p| !p.is_empty());
    let ffmpeg = Ffmpeg::locate(ffmpeg_path.as_deref().map(std::ffi::OsStr::new));
    let ladder = match (&args.ladder, &ffmpeg) {
        (Some(ladder), _) => ladder.clone(),
        (None, Ok(_)) => Ladder::Auto,
        (None, Err(_)) => Ladder::Off,
    };
    let config = Arc::new(
        PipelineConfig {
            segment_duration: args.segment_duration,
            ladder,
            ffmpeg: ffmpeg_path,
            ..PipelineConfig::default()
        }
        .validate()?,
    );
    let ladder_line = match (&config.ladder, &ffmpeg) {
        (Ladder::Off, Err(e)) => format!("off ({e})"),
        (Ladder::Off, Ok(_)) => "off".to_owned(),
        (ladder, Ok(f)) => format!("{ladder} ({}, {})", f.version, f.path().display()),
        (ladder, Err(e)) => format!("{ladder}, but {e}"),
    };
    seed_sample(store.as_ref(), &config.input_prefix)?;

    let key = dev::dev_key(&args.data.join("dev-key.pem"))?;
    let keys = KeySet::new(DEV_KEY_PAIR_ID, key)?;
    let verifier = Arc::new(Verifier::new(keys.public_keys()));
    let signer = Arc::new(Signer::new(keys, HashAlgorithm::Sha1));
    let hls_js = args.hls_js.clone().or_else(find_hls_js);

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
        let app = dev_app(
            &base,
            args.token.as_deref(),
            &store,
            &config,
            (signer, verifier),
            uploads,
            hls_js.clone(),
        )?;
        let watcher = tokio::spawn(watch_uploads(
            Arc::clone(&store),
            Arc::clone(&config),
            Duration::from_secs_f64(args.poll_seconds.clamp(0.1, 60.0)),
        ));
        let shutdown = http::shutdown_signal();
        eprintln!("{}", banner(&base, &bucket_dir, &config, hls_js.as_deref()));
        eprintln!("  ladder:   {ladder_line}");
        http::serve(listener, app, shutdown).await?;
        watcher.abort();
        eprintln!("hlspipe dev: stopped");
        Ok(())
    })
}

/// Everything on one listener: the player page and its title list, the playback API
/// (cookies for anyone on loopback, or for `token`), uploads from a page into the bucket
/// folder (`POST /v1/uploads`, behind the same check), and the edge that checks cookies.
fn dev_app(
    base: &str,
    token: Option<&str>,
    store: &Arc<dyn Store>,
    config: &PipelineConfig,
    (signer, verifier): (Arc<Signer>, Arc<Verifier>),
    uploads: Uploads,
    hls_js: Option<PathBuf>,
) -> anyhow::Result<Router> {
    let auth = match token {
        Some(t) => Auth::Bearer(t.to_string()),
        None => Auth::Disabled,
    };
    let out = config.output_prefix.clone();
    let api_config = ApiConfig::new(base, auth)?
        .output_prefix(&out)?
        .uploads(uploads);
    let edge_config = EdgeConfig::new(base)?.map_prefix(&format!("/{out}"), &out)?;
    let page = Arc::new(Page {
        store: Arc::clone(store),
        output_prefix: out,
        hls_js,
    });
    let dev_routes = Router::new()
        .route("/", get(player_page))
        .route("/dev/titles", get(list_titles))
        .route("/player/hls.min.js", get(hls_js_file))
        .with_state(page);
    let app = dev_routes
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
fn banner(base: &str, bucket_dir: &Path, config: &PipelineConfig, hls_js: Option<&Path>) -> String {
    let out = &config.output_prefix;
    format!(
        "hlspipe dev: {base}/ (player page)\n  \
         upload:   cp movie.mp4 {}\n  \
         titles:   {}\n  \
         playback: {base}/v1/titles/<title>/playback (sets the CloudFront cookies)\n  \
         uploads:  POST {base}/v1/uploads (docs/uploads.md)\n  \
         edge:     {base}/{out}<title>.hls/master.m3u8 (needs the cookies)\n  \
         hls.js:   {}",
        bucket_dir.join(&config.input_prefix).display(),
        bucket_dir.join(out).display(),
        hls_js
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| HLS_JS_CDN.to_string()),
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
    let mut lanes = Lanes::new(jobs, move |record: &Record| run_record(&s, &c, record));
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

/// One record through the worker, and a line saying how it went (the key escaped: an upload
/// name with a newline cannot split the line).
fn run_record(store: &Arc<dyn Store>, config: &PipelineConfig, record: &Record) {
    let worker = Pipeline {
        config,
        invalidator: &NoInvalidation,
        notifier: &hlspipe::pipeline::notify::NoNotification,
        parts: None,
        deadline: None,
        clock: &hlspipe::clock::unix_now,
        rebuild: false,
    };
    let started = std::time::Instant::now();
    let outcome = worker.handle_record(store, record);
    eprintln!(
        "hlspipe dev: {} {}: {outcome} ({:.2} s)",
        match record.kind {
            RecordKind::Removed => "removed",
            _ => "upload",
        },
        escape_name(&record.job.key),
        started.elapsed().as_secs_f64()
    );
}

async fn player_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PLAYER_PAGE,
    )
        .into_response()
}

async fn list_titles(State(page): State<Arc<Page>>) -> Response {
    let p = Arc::clone(&page);
    match tokio::task::spawn_blocking(move || dev::titles(p.store.as_ref(), &p.output_prefix)).await
    {
        Ok(Ok(titles)) => ([(header::CACHE_CONTROL, "no-cache")], Json(titles)).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn hls_js_file(State(page): State<Arc<Page>>) -> Response {
    let Some(path) = page.hls_js.clone() else {
        return Redirect::temporary(HLS_JS_CDN).into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/javascript"),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => Redirect::temporary(HLS_JS_CDN).into_response(),
    }
}

/// The hls.js the test harness installs (`npm ci` in tests/player), if this is a
/// checkout that has it.
fn find_hls_js() -> Option<PathBuf> {
    let candidates = [
        PathBuf::from("tests/player/node_modules/hls.js/dist/hls.min.js"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/player/node_modules/hls.js/dist/hls.min.js"),
    ];
    candidates.into_iter().find(|p| p.is_file())
}
