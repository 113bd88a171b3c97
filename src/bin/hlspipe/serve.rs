//! `hlspipe serve`: the playback API (`/v1/…`, `/healthz`) over a store (a folder of buckets
//! or S3), and with `--edge` a local stand-in for CloudFront (the CDN paths, `/hls/…`) on the
//! same listener. Thin over `hlspipe::delivery::api`, `hlspipe::delivery::edge` and
//! `hlspipe::delivery::http`.

use crate::serve_auth::{AuthArgs, AuthMode};
use crate::sign::{add_public_keys, Hash, SameSiteArg};
use anyhow::Context;
use hlspipe::delivery::api::{self, ApiConfig};
use hlspipe::delivery::edge::{self, Access, EdgeConfig};
use hlspipe::delivery::http::{self, AccessLog};
use hlspipe::delivery::sign::{CookieAttributes, KeySet, PrivateKey, SameSite, Signer, Verifier};
use hlspipe::delivery::uploads::{target_for, UploadRules, Uploads};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::store::location::{Stores, UrlStore};
use hlspipe::store::S3Settings;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `hlspipe serve`
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0: any free port, printed on stderr).
    #[arg(long, env = "HLSPIPE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where titles are read: file:///PATH (a folder of buckets; --bucket picks one) or
    /// s3://BUCKET[/PREFIX] (AWS_ENDPOINT_URL and the usual AWS variables honoured).
    #[arg(long, env = "HLSPIPE_STORE", value_name = "URL")]
    store: String,
    /// The bucket, with a file:/// store: a folder of it.
    #[arg(long, env = "HLSPIPE_BUCKET", default_value = "media")]
    bucket: String,
    /// Where titles live in the bucket and on the CDN (empty, or ending in `/`).
    #[arg(long, env = "HLSPIPE_OUTPUT_PREFIX", default_value = "hls/")]
    output_prefix: String,
    /// The CDN's base URL as viewers see it, e.g. https://cdn.example.com (default with
    /// --edge: http://<the listening address>; required without it).
    #[arg(long, env = "HLSPIPE_CDN_BASE_URL", value_name = "URL")]
    cdn_base_url: Option<String>,
    /// CloudFront public-key id (key-pair id) of the signing key.
    #[arg(long, env = "HLSPIPE_KEY_PAIR_ID", value_name = "ID")]
    key_pair_id: String,
    /// PEM file with the private key (PKCS#1, PKCS#8 or SEC1; RSA-2048 or EC P-256).
    #[arg(long, env = "HLSPIPE_PRIVATE_KEY", value_name = "PEM")]
    private_key: PathBuf,
    /// Also serve the CDN paths (`/<output prefix>…`) from the store, checking signed cookies
    /// and URLs as CloudFront does: a stand-in for the distribution. Off by default: in
    /// production CloudFront is the edge and this server is only the API.
    #[arg(long, env = "HLSPIPE_EDGE")]
    edge: bool,
    /// With --edge: another public key the edge trusts, ID=PEM-FILE (repeatable), as a
    /// CloudFront key group holds the old and the new key during a rotation.
    #[arg(long = "trusted-key", value_name = "ID=PEM", requires = "edge")]
    trusted_keys: Vec<String>,
    /// Hash inside the signature; sha256 also sets CloudFront-Hash-Algorithm.
    #[arg(long, env = "HLSPIPE_SIGNING_HASH", value_enum, default_value = "sha1")]
    hash: Hash,
    #[command(flatten)]
    auth: AuthArgs,
    /// Cookies are valid this long (rounded up to the minute).
    #[arg(
        long,
        env = "HLSPIPE_COOKIE_TTL",
        value_name = "SECS",
        default_value_t = 3600
    )]
    cookie_ttl: u64,
    /// Cookie Domain, shared by the player's site and the CDN host (default: host-only).
    #[arg(long, env = "HLSPIPE_COOKIE_DOMAIN", value_name = "D")]
    cookie_domain: Option<String>,
    /// SameSite of the cookies.
    #[arg(long, env = "HLSPIPE_SAME_SITE", value_enum, default_value = "lax")]
    same_site: SameSiteArg,
    /// An origin (scheme://host[:port]) whose pages may call the API (and, with --edge, fetch
    /// media) with credentials. Repeat, or comma-separate in HLSPIPE_ALLOW_ORIGIN.
    #[arg(
        long,
        env = "HLSPIPE_ALLOW_ORIGIN",
        value_name = "URL",
        value_delimiter = ','
    )]
    allow_origin: Vec<String>,
    /// Access log (Combined Log Format): a file, `-` for stdout, or `off`.
    #[arg(
        long,
        env = "HLSPIPE_ACCESS_LOG",
        value_name = "PATH",
        default_value = "-"
    )]
    access_log: String,
    /// A request's line and headers must arrive within this many seconds of the server
    /// starting to wait for them (also how long a kept-alive connection may sit idle).
    #[arg(long, env = "HLSPIPE_HEADER_TIMEOUT", value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// A connection on which no byte moves either way for this long is closed.
    #[arg(long, env = "HLSPIPE_IDLE_TIMEOUT", value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Connections open at once; one more is answered 503 (Retry-After: 1) and closed.
    #[arg(long, env = "HLSPIPE_MAX_CONNECTIONS", value_name = "N", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// On SIGTERM or SIGINT, requests in flight get this long to finish; then every
    /// connection still open is closed.
    #[arg(
        long,
        env = "HLSPIPE_SHUTDOWN_GRACE",
        value_name = "SECS",
        default_value_t = 5
    )]
    shutdown_grace: u64,
    #[command(flatten)]
    uploads: UploadArgs,
    /// Serve the edge without any signature check. Only to measure what the check costs.
    #[arg(long, hide = true, requires = "edge")]
    unsigned_edge_for_benchmarks: bool,
}

/// `POST /v1/uploads` and what bounds it.
#[derive(clap::Args)]
struct UploadArgs {
    /// Offer uploads from the site (POST /v1/uploads, behind the same authoriser): presigned S3
    /// URLs with an s3:// store, this server's own part endpoint with a file:/// one.
    #[arg(long = "uploads", env = "HLSPIPE_UPLOADS")]
    enabled: bool,
    /// Where uploads go in the bucket, as the worker reads them.
    #[arg(long, env = "HLSPIPE_INPUT_PREFIX", default_value = "uploads/")]
    input_prefix: String,
    /// The largest upload accepted, in bytes (default 50 GiB).
    #[arg(long = "upload-max-bytes", env = "HLSPIPE_UPLOAD_MAX_BYTES", value_name = "BYTES",
          default_value_t = hlspipe::delivery::uploads::DEFAULT_MAX_SIZE)]
    max_bytes: u64,
    /// How long part URLs are valid, in seconds.
    #[arg(long = "upload-url-ttl", env = "HLSPIPE_UPLOAD_URL_TTL", value_name = "SECS",
          default_value_t = hlspipe::delivery::uploads::DEFAULT_URL_TTL)]
    url_ttl: u64,
    /// Where callers reach this API, for the complete/abort (and folder part) URLs of an
    /// answer (default: the CDN base URL, where the API is reached in production).
    #[arg(long, env = "HLSPIPE_API_BASE_URL", value_name = "URL")]
    api_base_url: Option<String>,
}

/// The upload endpoints for the store `opened`, if asked for.
fn uploads(
    args: &UploadArgs,
    output_prefix: &str,
    opened: &UrlStore,
    cdn_base: &str,
) -> anyhow::Result<Option<Uploads>> {
    if !args.enabled {
        return Ok(None);
    }
    let pipeline = PipelineConfig {
        input_prefix: args.input_prefix.clone(),
        output_prefix: output_prefix.to_owned(),
        ..PipelineConfig::default()
    }
    .validate()?;
    let rules = UploadRules::new(pipeline)
        .max_size(args.max_bytes)
        .map_err(anyhow::Error::msg)?
        .url_ttl(args.url_ttl)
        .map_err(anyhow::Error::msg)?;
    let target = target_for(opened).context("--uploads")?;
    let base = args.api_base_url.as_deref().unwrap_or(cdn_base);
    Ok(Some(Uploads::new(rules, target, base)))
}

fn access_log(target: &str) -> anyhow::Result<AccessLog> {
    Ok(match target {
        "off" => AccessLog::off(),
        "-" => AccessLog::to_writer(std::io::stdout()),
        path => AccessLog::to_writer(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("--access-log {path}"))?,
        ),
    })
}

/// Refuses what would hand out cookies to anyone on a network, or tell viewers to fetch media
/// from an address that is not one (`0.0.0.0` is where we listen, not where anyone connects).
fn check_listen(args: &Args) -> anyhow::Result<()> {
    let ip = args.listen.ip();
    if args.auth.no_auth && !ip.is_loopback() {
        anyhow::bail!(
            "--no-auth with --listen {}: off loopback anyone could get cookies; use --token",
            args.listen
        );
    }
    if args.uploads.enabled && args.auth.mode()? == AuthMode::None && !ip.is_loopback() {
        anyhow::bail!(
            "--uploads with --auth none on {}: anyone could write to the bucket; use --token or --auth jwt",
            args.listen
        );
    }
    if ip.is_unspecified() && args.cdn_base_url.is_none() {
        anyhow::bail!(
            "--listen {} listens on every interface: give --cdn-base-url, the address viewers \
             fetch media from",
            args.listen
        );
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    init_tracing();
    check_listen(&args)?;
    if args.auth.mode()? == AuthMode::None && !args.listen.ip().is_loopback() {
        tracing::warn!(
            "--auth none: anyone who can reach {} gets cookies for every title",
            args.listen
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Before the store: a wrong key or flag is reported first (the JWKS is fetched here too).
    let auth = runtime.block_on(args.auth.build())?;
    let pem = std::fs::read_to_string(&args.private_key)
        .with_context(|| format!("reading {}", args.private_key.display()))?;
    let key = PrivateKey::from_pem(&pem)
        .with_context(|| format!("loading {}", args.private_key.display()))?;
    let keys = KeySet::new(&args.key_pair_id, key)?;
    let mut trusted = keys.public_keys();
    add_public_keys(&mut trusted, &args.trusted_keys, "--trusted-key")?;
    if !args.edge && args.cdn_base_url.is_none() {
        anyhow::bail!(
            "give --cdn-base-url, the CloudFront address viewers fetch media from (or --edge, \
             to serve media from this server)"
        );
    }
    let verifier = Arc::new(Verifier::new(trusted));
    let signer = Arc::new(Signer::new(keys, args.hash.into()));
    let opened = Stores::open_url_kind(&args.store, &args.bucket, S3Settings::from_env())
        .with_context(|| format!("--store {}", args.store))?;
    let store = opened.store();
    let log = access_log(&args.access_log)?;
    let limits = http::Limits {
        header_timeout: Duration::from_secs(args.header_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
    };

    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let cdn_base = args
            .cdn_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let mut api_config = api_config(&args, &cdn_base, auth)?;
        if let Some(uploads) = uploads(&args.uploads, &args.output_prefix, &opened, &cdn_base)? {
            api_config = api_config.uploads(uploads);
        }
        let mut app = api::router(api_config, Arc::clone(&store), signer);
        if args.edge {
            app = app.merge(edge_router(&args, &cdn_base, store, verifier)?);
        }
        let app = http::with_access_log(app, log, hlspipe::clock::system_clock());

        // Before saying we listen: a SIGTERM sent as soon as we do is then never missed.
        let shutdown = http::shutdown_signal();
        let edge = if args.edge {
            format!("edge /{}…", args.output_prefix)
        } else {
            "no edge".to_owned()
        };
        let uploads_note = if args.uploads.enabled { ", uploads POST /v1/uploads" } else { "" };
        eprintln!(
            "hlspipe serve: listening on http://{addr} (API /v1/titles/<title>/playback{uploads_note}, {edge}, CDN base {cdn_base})",
        );
        http::serve_with(listener, app, shutdown, limits).await?;
        eprintln!("hlspipe serve: stopped");
        Ok(())
    })
}

fn api_config(args: &Args, cdn_base: &str, auth: api::Auth) -> anyhow::Result<ApiConfig> {
    let mut cookie_attributes = CookieAttributes::new().same_site(match args.same_site {
        SameSiteArg::Strict => SameSite::Strict,
        SameSiteArg::Lax => SameSite::Lax,
        SameSiteArg::None => SameSite::None,
    });
    if let Some(domain) = &args.cookie_domain {
        cookie_attributes = cookie_attributes.domain(domain)?;
    }
    let mut config = ApiConfig::new(cdn_base, auth)?
        .output_prefix(&args.output_prefix)?
        .lifetime(args.cookie_ttl, 60.min(args.cookie_ttl))?
        .cookie_attributes(cookie_attributes);
    for origin in &args.allow_origin {
        config = config.allow_origin(origin)?;
    }
    Ok(config)
}

fn edge_router(
    args: &Args,
    cdn_base: &str,
    store: Arc<dyn hlspipe::store::Store>,
    verifier: Arc<Verifier>,
) -> anyhow::Result<axum::Router> {
    let mut config = EdgeConfig::new(cdn_base)?
        .map_prefix(&format!("/{}", args.output_prefix), &args.output_prefix)?;
    for origin in &args.allow_origin {
        config = config.allow_origin(origin)?;
    }
    let access = if args.unsigned_edge_for_benchmarks {
        tracing::warn!("the edge serves without signature checks (--unsigned-edge-for-benchmarks)");
        Access::Open
    } else {
        Access::Signed(verifier)
    };
    Ok(edge::router(config, store, access))
}

/// Server diagnostics (denials with their reason, store errors) go to stderr; the level comes
/// from HLSPIPE_LOG (`error`, `warn`, `info`, `debug`), default `info`.
pub fn init_tracing() {
    let level = std::env::var("HLSPIPE_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .try_init();
}
