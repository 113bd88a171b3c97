//! The routes of `hlspipe dev`'s page: the page and the hls.js it loads (both in the
//! binary), the title list, uploads straight from the page or `curl -T`, and a title's
//! delete and re-process buttons.

use axum::body::Body as RequestBody;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use hlspipe::delivery::auth::{bearer_credential, BearerToken};
use hlspipe::delivery::uploads::{UploadRequest, UploadRules};
use hlspipe::dev::{self, HLS_JS, HLS_JS_LICENSE, PLAYER_PAGE};
use hlspipe::media::object::{Body, Object};
use hlspipe::media::source::{FileSource, Source};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::{Job, Record, RecordKind};
use hlspipe::store::Store;
use hlspipe::title::Title;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the page's routes share.
pub struct Page {
    pub store: Arc<dyn Store>,
    pub config: Arc<PipelineConfig>,
    /// The bucket's name in the records the page makes (re-process).
    pub bucket: &'static str,
    /// The token the page's routes require, when the server has one (the playback API's).
    pub bearer: Option<BearerToken>,
    /// Where an upload is received before it is put in the bucket whole.
    pub staging: PathBuf,
    /// What an upload must be: the rules of `POST /v1/uploads`, with the size limit below.
    pub rules: UploadRules,
    /// The largest upload taken.
    pub max_upload_bytes: u64,
    /// Names staging files apart.
    pub received: AtomicU64,
}

pub fn routes(page: Arc<Page>) -> Router {
    Router::new()
        .route("/", get(player_page))
        .route("/dev/titles", get(list_titles))
        .route("/dev/limits", get(limits))
        .route("/dev/uploads/{name}", put(receive_upload))
        .route("/dev/titles/{*title}", post(act_on_title))
        .route("/player/hls.min.js", get(hls_js))
        .route("/player/hls.js-LICENSE.txt", get(hls_js_license))
        .with_state(page)
}

async fn player_page() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, PLAYER_PAGE).into_response()
}

async fn hls_js() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, "max-age=3600"),
    ];
    (headers, HLS_JS).into_response()
}

async fn hls_js_license() -> Response {
    let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (headers, HLS_JS_LICENSE).into_response()
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({ "error": message.to_string() });
    (status, Json(body)).into_response()
}

/// What an upload must be, for the page to refuse a file before sending it.
async fn limits(State(page): State<Arc<Page>>, headers: HeaderMap) -> Response {
    if let Err((status, why)) = authorised(&page, &headers) {
        return error(status, why);
    }
    let body = serde_json::json!({
        "max_upload_bytes": page.max_upload_bytes,
        "extensions": page.config.extensions,
    });
    Json(body).into_response()
}

async fn list_titles(State(page): State<Arc<Page>>, headers: HeaderMap) -> Response {
    if let Err((status, why)) = authorised(&page, &headers) {
        return error(status, why);
    }
    let p = Arc::clone(&page);
    match tokio::task::spawn_blocking(move || dev::titles(p.store.as_ref(), &p.config)).await {
        Ok(Ok(titles)) => ([(header::CACHE_CONTROL, "no-cache")], Json(titles)).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// With a token configured, the page's routes (but the page itself and hls.js) take it as
/// the playback API does.
/// Why a request is refused: the status and the message of its JSON error.
type Refusal = (StatusCode, String);

fn authorised(page: &Page, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(bearer) = &page.bearer else {
        return Ok(());
    };
    let granted = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credential)
        .is_some_and(|credential| bearer.check(credential).is_ok());
    if granted {
        Ok(())
    } else {
        let why = "Authorization: Bearer <token> needed".to_string();
        Err((StatusCode::UNAUTHORIZED, why))
    }
}

/// `?title=shows/ep1` of an upload: the title to upload as (default: the file's name
/// without its extension).
fn title_in(uri: &axum::http::Uri) -> Result<Option<String>, Refusal> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("title=") {
            return hlspipe::percent::decode(value, hlspipe::percent::Plus::Space)
                .map(|t| Some(t.into_owned()))
                .map_err(|e| (StatusCode::BAD_REQUEST, format!("title: {e}")));
        }
    }
    Ok(None)
}

/// `PUT /dev/uploads/{name}[?title=shows/ep1]`, the file as the body (what `curl -T FILE
/// http://…/dev/uploads/` sends, and the page's uploads). The name and size are checked by
/// the upload rules of `POST /v1/uploads` (docs/uploads.md); the body is streamed to a
/// staging file, never held whole, and put in the bucket only once it has all arrived, so
/// the upload watcher never sees half a file. 201 with the key and title.
async fn receive_upload(
    State(page): State<Arc<Page>>,
    UrlPath(name): UrlPath<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    let title = match authorised(&page, &headers).and_then(|()| title_in(&uri)) {
        Ok(title) => title,
        Err((status, why)) => return error(status, why),
    };
    let Some(size) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return error(
            StatusCode::LENGTH_REQUIRED,
            "send the file with its Content-Length",
        );
    };
    let request = UploadRequest {
        filename: name,
        size,
        content_type: None,
        title,
    };
    let plan = match page.rules.plan(&request) {
        Ok(plan) => plan,
        Err(e) if size > page.max_upload_bytes => return error(StatusCode::PAYLOAD_TOO_LARGE, e),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let n = page.received.fetch_add(1, Ordering::SeqCst);
    // Removed however this ends, a client that goes away mid-body included (the server
    // then drops this future at an await).
    let staged = Staged(
        page.staging
            .join(format!("{}-{n}.part", std::process::id())),
    );
    let received = receive_into(&staged.0, body, size).await;
    let result = match received {
        Ok(()) => {
            let (store, key, path) = (Arc::clone(&page.store), plan.key.clone(), staged.0.clone());
            tokio::task::spawn_blocking(move || put_file(store.as_ref(), &key, &path))
                .await
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
                .and_then(|r| r.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())))
        }
        Err(e) => Err(e),
    };
    drop(staged);
    match result {
        Ok(()) => {
            let body = serde_json::json!({
                "key": plan.key, "title": plan.title.as_str(), "size": size,
            });
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err((status, why)) => error(status, why),
    }
}

/// A staging file, removed when dropped.
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The request's body into `path`, exactly `size` bytes of it.
async fn receive_into(
    path: &std::path::Path,
    body: RequestBody,
    size: u64,
) -> Result<(), (StatusCode, String)> {
    let failed = |e: std::io::Error| {
        let why = format!("staging the upload: {e}");
        (StatusCode::INTERNAL_SERVER_ERROR, why)
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut file = std::fs::File::create(path).map_err(failed)?;
    let mut stream = body.into_data_stream();
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("the upload broke off: {e}"),
            )
        })?;
        got += chunk.len() as u64;
        if got > size {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("more than the {size} bytes announced"),
            ));
        }
        tokio::task::block_in_place(|| file.write_all(&chunk)).map_err(failed)?;
    }
    if got != size {
        let why = format!("the upload broke off after {got} of {size} bytes");
        return Err((StatusCode::BAD_REQUEST, why));
    }
    tokio::task::block_in_place(|| file.sync_all()).map_err(failed)
}

fn put_file(store: &dyn Store, key: &str, path: &std::path::Path) -> hlspipe::Result<()> {
    let source = FileSource::open(path)?;
    let mut body = Body::default();
    body.push_source(0, 0, source.len());
    let lower = key.to_ascii_lowercase();
    let content_type = if lower.ends_with(".mov") {
        "video/quicktime"
    } else if lower.ends_with(".m4a") {
        "audio/mp4"
    } else {
        "video/mp4"
    };
    let obj = Object {
        key: key.to_string(),
        content_type,
        cache_control: "no-cache",
        body,
    };
    let sources: [Arc<dyn Source>; 1] = [Arc::new(source)];
    store.put(key, &obj, &sources)
}

/// `POST /dev/titles/{title}/delete` and `POST /dev/titles/{title}/reprocess`.
async fn act_on_title(
    State(page): State<Arc<Page>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, why)) = authorised(&page, &headers) {
        return error(status, why);
    }
    let Some((title, action)) = path.rsplit_once('/') else {
        return error(
            StatusCode::NOT_FOUND,
            "POST /dev/titles/<title>/delete or …/reprocess",
        );
    };
    let title = match Title::new(title) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let p = Arc::clone(&page);
    let sources = match tokio::task::spawn_blocking(move || {
        dev::titles::uploads_of(p.store.as_ref(), &p.config, &title)
    })
    .await
    {
        Ok(Ok(s)) if !s.is_empty() => s,
        Ok(Ok(_)) => return error(StatusCode::NOT_FOUND, "no upload of this title"),
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    match action {
        // The uploads go, as if deleted from the bucket: the watcher's removal events take
        // the title down by the same path as an S3 ObjectRemoved event would.
        "delete" => {
            for key in &sources {
                if let Err(e) = page.store.delete(key) {
                    return error(StatusCode::INTERNAL_SERVER_ERROR, e);
                }
            }
            let body = serde_json::json!({ "removed": sources });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        // The upload's event again, published anew even if its version is live (the
        // job's `rebuild`, what `reprocess --force` does).
        "reprocess" => {
            let p = Arc::clone(&page);
            let key = sources[0].clone();
            std::thread::spawn(move || rebuild(&p, &key));
            let body = serde_json::json!({ "reprocessing": sources[0] });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "POST /dev/titles/<title>/delete or …/reprocess",
        ),
    }
}

fn rebuild(page: &Page, key: &str) {
    let info = match page.store.head(key) {
        Ok(Some(info)) => info,
        Ok(None) => return,
        Err(e) => {
            eprintln!("hlspipe dev: re-process {key}: {e}");
            return;
        }
    };
    let record = Record {
        kind: RecordKind::Created,
        job: Job {
            bucket: page.bucket.to_string(),
            key: key.to_string(),
            etag: Some(info.etag),
            size: Some(info.size),
            sequencer: None,
        },
        reprocess: false,
        message_id: None,
    };
    dev::run_record(&page.store, &page.config, &record, true);
}
