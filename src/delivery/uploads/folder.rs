//! Uploads into a bucket that is a folder (`hlspipe dev`, `serve --store file:///…`): the part
//! URLs point at this server (`PUT /v1/uploads/{id}/parts/{n}?token=…`), each part is
//! streamed to a staging folder (never held whole in memory), and completing joins the parts
//! with [`Store::put`]: written beside the object under a temporary name and renamed into
//! place, so the upload watcher sees the whole file or nothing.
//!
//! A part URL's capability is a random 128-bit token per upload, compared in constant time
//! and refused once the upload's `expires_at` has passed. Uploads live in memory: a restart
//! forgets them (their staged parts are removed at the next start once stale). Bounds: at
//! most [`MAX_UPLOADS`] at once, each part exactly its planned length.

use super::routes::refusal;
use super::{CompletedPart, StartedUpload, UploadError, UploadPlan, UploadTarget};
use crate::media::object::{content_type_for_key, Body as ObjectBody, Object};
use crate::media::source::{FileSource, Source};
use crate::store::Store;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use rand_core::{OsRng, RngCore};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

/// Uploads in progress at once; one more is answered 503.
pub const MAX_UPLOADS: usize = 64;

/// How long after its part URLs expire an upload may still be completed, before its parts
/// are removed.
const COMPLETE_GRACE: u64 = 3600;

/// Staged folders older than this at start-up are left over from an earlier run (the longest
/// part-URL lifetime, 7 days, plus the grace).
const STALE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600 + COMPLETE_GRACE);

/// Body chunks queued between the connection and the file writer.
const WRITE_QUEUE: usize = 4;

struct Session {
    key: String,
    plan: UploadPlan,
    token: String,
    expires_at: u64,
    /// MD5 (hex) of each part received, by part number - 1.
    etags: Vec<Option<String>>,
}

/// Multipart uploads into a folder store.
pub struct FolderUploads {
    store: Arc<dyn Store>,
    staging: PathBuf,
    sessions: Mutex<HashMap<String, Session>>,
}

impl FolderUploads {
    /// Parts are staged under `staging` (made if missing), which must be on the store's file
    /// system for the final rename to be cheap; objects are written to `store`.
    pub fn new(store: Arc<dyn Store>, staging: PathBuf) -> crate::error::Result<FolderUploads> {
        std::fs::create_dir_all(&staging).map_err(|e| crate::error::Error::Io {
            what: staging.display().to_string(),
            source: e,
        })?;
        remove_stale(&staging);
        Ok(FolderUploads {
            store,
            staging,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops uploads past their grace, with their parts.
    fn sweep(&self, now: u64) {
        let mut sessions = self.sessions();
        let expired: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| s.expires_at.saturating_add(COMPLETE_GRACE) < now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            sessions.remove(&id);
            let _ = std::fs::remove_dir_all(self.staging.join(&id));
        }
    }

    /// Takes the upload `id` of `key` out of the table if its parts are all there and match
    /// `parts`; the part files in order.
    fn take_complete(
        &self,
        key: &str,
        id: &str,
        parts: &[CompletedPart],
    ) -> Result<(Session, Vec<PathBuf>), UploadError> {
        let mut sessions = self.sessions();
        let session = match sessions.get(id) {
            Some(s) if s.key == key => s,
            _ => return Err(no_such_upload()),
        };
        if u64::try_from(parts.len()).ok() != Some(session.plan.part_count) {
            return Err(UploadError::Invalid(format!(
                "parts: this upload has {} parts, {} were listed",
                session.plan.part_count,
                parts.len()
            )));
        }
        let mut files = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let n = i + 1;
            if usize::try_from(part.part_number).ok() != Some(n) {
                return Err(UploadError::Invalid(format!(
                    "parts: part {n} listed as {} (list them 1, 2, 3 … in order)",
                    part.part_number
                )));
            }
            match session.etags.get(i).cloned().flatten() {
                None => return Err(UploadError::Invalid(format!("part {n} was not uploaded"))),
                Some(etag) if etag != part.etag.trim().trim_matches('"') => {
                    return Err(UploadError::Invalid(format!(
                        "part {n}: the ETag is not the one its upload answered"
                    )))
                }
                Some(_) => files.push(self.staging.join(id).join(format!("part-{n}"))),
            }
        }
        let session = sessions.remove(id).ok_or_else(no_such_upload)?;
        Ok((session, files))
    }

    /// Receives part `n` of upload `id`: checks the token and the expiry, streams the body to
    /// the staging folder, and answers its ETag (the MD5 of the part, as S3's).
    async fn receive_part(
        self: Arc<Self>,
        id: String,
        n: u64,
        token: &str,
        body: Body,
    ) -> Result<String, UploadError> {
        let expected = self.check_part(&id, n, token, crate::clock::unix_now())?;
        let dir = self.staging.join(&id);
        let tmp = dir.join(format!("part-{n}.tmp"));
        let written = stream_to_file(body, tmp.clone(), expected).await;
        let md5 = match written {
            Ok(md5) => md5,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let mut sessions = self.sessions();
        let Some(session) = sessions.get_mut(&id) else {
            // Aborted or completed while the part was arriving.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(no_such_upload());
        };
        std::fs::rename(&tmp, dir.join(format!("part-{n}")))
            .map_err(|e| UploadError::Storage(format!("part {n} of {}: {e}", session.key)))?;
        let slot = usize::try_from(n.saturating_sub(1))
            .ok()
            .and_then(|i| session.etags.get_mut(i));
        if let Some(slot) = slot {
            *slot = Some(md5.clone());
        }
        Ok(md5)
    }

    /// The planned length of part `n`, if the token opens upload `id` and it has not expired.
    fn check_part(&self, id: &str, n: u64, token: &str, now: u64) -> Result<u64, UploadError> {
        let sessions = self.sessions();
        let session = sessions.get(id).ok_or_else(no_such_upload)?;
        if !bool::from(session.token.as_bytes().ct_eq(token.as_bytes())) {
            tracing::warn!(target: "hlspipe::delivery::uploads", upload = %id, "403: a part URL with a wrong token");
            return Err(UploadError::Forbidden("this part URL is not valid".into()));
        }
        if now >= session.expires_at {
            return Err(UploadError::Forbidden("this part URL has expired".into()));
        }
        if n == 0 || n > session.plan.part_count {
            return Err(UploadError::Invalid(format!(
                "part {n}: this upload has parts 1 to {}",
                session.plan.part_count
            )));
        }
        Ok(session.plan.part_len(n))
    }
}

impl UploadTarget for FolderUploads {
    fn start(
        &self,
        plan: &UploadPlan,
        expires_at: u64,
        api_base: &str,
    ) -> Result<StartedUpload, UploadError> {
        self.sweep(crate::clock::unix_now());
        let id = random_hex();
        let token = random_hex();
        let mut sessions = self.sessions();
        if sessions.len() >= MAX_UPLOADS {
            return Err(UploadError::Busy(format!(
                "{MAX_UPLOADS} uploads are in progress; try again later"
            )));
        }
        std::fs::create_dir(self.staging.join(&id))
            .map_err(|e| UploadError::Storage(format!("staging {id}: {e}")))?;
        let part_urls = (1..=plan.part_count)
            .map(|n| format!("{api_base}/v1/uploads/{id}/parts/{n}?token={token}"))
            .collect();
        let slots = usize::try_from(plan.part_count).unwrap_or(0);
        sessions.insert(
            id.clone(),
            Session {
                key: plan.key.clone(),
                plan: plan.clone(),
                token,
                expires_at,
                etags: vec![None; slots],
            },
        );
        Ok(StartedUpload {
            upload_id: id,
            part_urls,
        })
    }

    fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), UploadError> {
        let (session, files) = self.take_complete(key, upload_id, parts)?;
        let joined = join_parts(self.store.as_ref(), &session.key, &files);
        let _ = std::fs::remove_dir_all(self.staging.join(upload_id));
        joined
    }

    fn abort(&self, key: &str, upload_id: &str) -> Result<(), UploadError> {
        let mut sessions = self.sessions();
        match sessions.get(upload_id) {
            Some(s) if s.key == key => {
                sessions.remove(upload_id);
                let _ = std::fs::remove_dir_all(self.staging.join(upload_id));
                Ok(())
            }
            _ => Err(no_such_upload()),
        }
    }

    fn part_routes(self: Arc<Self>) -> Option<Router> {
        Some(
            Router::new()
                .route(
                    "/v1/uploads/{id}/parts/{n}",
                    put(put_part).options(preflight),
                )
                .with_state(self),
        )
    }
}

/// Writes the parts, in order, as one object at `key` (atomically: [`Store::put`]).
fn join_parts(store: &dyn Store, key: &str, files: &[PathBuf]) -> Result<(), UploadError> {
    let mut sources: Vec<Arc<dyn Source>> = Vec::with_capacity(files.len());
    let mut body = ObjectBody::default();
    for (i, file) in files.iter().enumerate() {
        let source = FileSource::open(file).map_err(|e| UploadError::Storage(e.to_string()))?;
        body.push_source(i, 0, source.len());
        sources.push(Arc::new(source));
    }
    let object = Object {
        key: key.to_owned(),
        content_type: content_type_for_key(key),
        cache_control: "no-cache",
        body,
    };
    store
        .put(key, &object, &sources)
        .map_err(|e| UploadError::Storage(format!("writing {key}: {e}")))
}

async fn put_part(
    State(uploads): State<Arc<FolderUploads>>,
    Path((id, n)): Path<(String, u64)>,
    uri: Uri,
    body: Body,
) -> Response {
    // The token is hex: no percent-decoding needed.
    let token = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or_default();
    let mut r = match uploads.receive_part(id, n, token, body).await {
        Ok(md5) => {
            let mut r = StatusCode::OK.into_response();
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{md5}\"")) {
                r.headers_mut().insert(header::ETAG, etag);
            }
            r
        }
        Err(e) => refusal(&e),
    };
    cors(&mut r);
    r
}

/// A browser on another origin asks before PUTting (Fetch standard, "CORS protocol"). The part
/// URL is the capability, so any origin may use it; `ETag` must be readable to complete.
async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    cors(&mut r);
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("PUT"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    r
}

fn cors(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag"),
    );
}

/// Streams `body` into `path` through a bounded queue to a blocking writer, so a part is
/// never held whole in memory; refuses a body longer or shorter than `expected`. The MD5
/// of the bytes, in hex.
async fn stream_to_file(body: Body, path: PathBuf, expected: u64) -> Result<String, UploadError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || write_chunks(&path, rx));
    let mut body = body;
    let mut received: u64 = 0;
    let mut refused = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                refused = Some(UploadError::Invalid(format!(
                    "the part's body broke off: {e}"
                )));
                break;
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received = received.saturating_add(data.len() as u64);
        if received > expected {
            refused = Some(UploadError::Invalid(format!(
                "the part is longer than its {expected} bytes"
            )));
            break;
        }
        if tx.send(data).await.is_err() {
            break;
        }
    }
    drop(tx);
    let written = writer
        .await
        .map_err(|e| UploadError::Storage(format!("part writer: {e}")))?;
    if let Some(refused) = refused {
        return Err(refused);
    }
    let md5 = written.map_err(|e| UploadError::Storage(format!("writing a part: {e}")))?;
    if received != expected {
        return Err(UploadError::Invalid(format!(
            "the part is {received} bytes; it must be {expected}"
        )));
    }
    Ok(md5)
}

fn write_chunks(
    path: &FsPath,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> std::io::Result<String> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut md5 = Md5::new();
    while let Some(chunk) = rx.blocking_recv() {
        md5.update(&chunk);
        file.write_all(&chunk)?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(hex::encode(md5.finalize()))
}

fn no_such_upload() -> UploadError {
    UploadError::NotFound("no such upload (completed, aborted, expired or never started)".into())
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Removes staged uploads an earlier run left behind.
fn remove_stale(staging: &FsPath) {
    let Ok(entries) = std::fs::read_dir(staging) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
