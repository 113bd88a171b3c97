//! Uploads from the site: `POST /v1/uploads` hands a browser the URLs of a multipart upload of
//! `<input prefix><title>.<ext>`, so the file goes straight to the bucket; the pipeline then
//! sees the new object as it sees any upload.
//!
//! ```text
//! POST   /v1/uploads                  {"filename","size"[,"content_type"][,"title"]}
//!   201 {"upload_id","key","title","size","part_size","parts":[{"part_number","url"}…],
//!        "complete":{"method":"POST","url"},"abort":{"method":"DELETE","url"},"expires_at"}
//!   400 bad name, extension or size   401 no credential   403 title outside the token's prefixes
//! PUT    <parts[i].url>               the part's bytes → 200, ETag: "…"   (straight to S3, or
//!                                     the folder store's own endpoint; no Authorization)
//! POST   /v1/uploads/{upload_id}/complete   {"parts":[{"part_number","etag"}…]} → 200
//! DELETE /v1/uploads/{upload_id}            → 204
//! ```
//!
//! Completing goes through this API, not a presigned CompleteMultipartUpload URL: a site then
//! posts a small JSON list of ETags instead of building S3's XML body, the same call works for
//! the folder store, and completing is authorised like starting. `upload_id` is opaque: the
//! key and the target's own upload id, base64url-encoded, so a stateless API (a Lambda
//! function) needs no table of uploads.
//!
//! Where parts go is an [`UploadTarget`]: S3 presigned UploadPart URLs ([`s3::S3Uploads`]) or
//! this server itself for a bucket that is a folder ([`folder::FolderUploads`]). Chosen from
//! the store URL by [`target_for`].

pub mod folder;
mod routes;
pub mod s3;

use crate::pipeline::config::PipelineConfig;
use crate::pipeline::keys::{classify_key, KeyRole};
use crate::store::location::UrlStore;
use crate::store::Store;
use crate::title::Title;
use base64::Engine;
use std::sync::Arc;

pub(crate) use routes::{authorised_routes, open_routes};

/// The largest upload accepted unless configured otherwise.
pub const DEFAULT_MAX_SIZE: u64 = 50 << 30;

/// How long part URLs stay valid unless configured otherwise.
pub const DEFAULT_URL_TTL: u64 = 3600;

/// The smallest part handed out. S3 requires at least 5 MiB for every part but the last
/// ("Amazon S3 multipart upload limits", S3 User Guide).
pub const MIN_PART_SIZE: u64 = 8 << 20;

/// S3's largest part (same page).
pub const MAX_PART_SIZE: u64 = 5 << 30;

/// At most this many parts per upload. S3 allows 10,000; every part is one presigned URL in
/// the answer (about 1.5 KB with a Lambda role's session token), and a function URL's
/// response is at most 6 MB, so parts grow instead of their number.
pub const MAX_PARTS: u64 = 500;

/// The largest upload the part limits allow: 500 parts of 5 GiB (S3's own object limit is
/// 5 TiB).
pub const MAX_UPLOAD_SIZE: u64 = MAX_PARTS * MAX_PART_SIZE;

/// A site's request for an upload, as posted.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The file's name on the viewer's machine: its extension must be a media one, its stem
    /// is the title unless `title` is given.
    pub filename: String,
    pub size: u64,
    pub content_type: Option<String>,
    /// The title to upload as (`shows/ep1`); default: the file name without its extension.
    pub title: Option<String>,
}

/// What a refused or failed upload call answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// 400: the request breaks a rule; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// 403: a part URL whose capability is wrong or expired.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such upload (completed, aborted, expired, or never started).
    #[error("{0}")]
    NotFound(String),
    /// 503: too many uploads in progress.
    #[error("{0}")]
    Busy(String),
    /// 500: the store failed; the reason is logged, not sent.
    #[error("{0}")]
    Storage(String),
}

/// What is enforced on every upload.
#[derive(Debug, Clone)]
pub struct UploadRules {
    /// The input prefix and the accepted extensions, as the worker has them.
    pipeline: PipelineConfig,
    max_size: u64,
    url_ttl: u64,
}

impl UploadRules {
    /// The worker's input prefix and extensions (`pipeline` validated), 50 GiB, URLs valid 1 h.
    pub fn new(pipeline: PipelineConfig) -> UploadRules {
        UploadRules {
            pipeline,
            max_size: DEFAULT_MAX_SIZE,
            url_ttl: DEFAULT_URL_TTL,
        }
    }

    /// The largest upload, 1 byte to [`MAX_UPLOAD_SIZE`].
    pub fn max_size(mut self, bytes: u64) -> Result<UploadRules, String> {
        if bytes == 0 || bytes > MAX_UPLOAD_SIZE {
            return Err(format!(
                "the upload size limit is 1 to {MAX_UPLOAD_SIZE} bytes, not {bytes}"
            ));
        }
        self.max_size = bytes;
        Ok(self)
    }

    /// How long part URLs are valid: 1 second to 7 days (SigV4 presigned URLs cannot live
    /// longer: "Authenticating requests: query parameters", S3 API Reference).
    pub fn url_ttl(mut self, seconds: u64) -> Result<UploadRules, String> {
        if seconds == 0 || seconds > 7 * 24 * 3600 {
            return Err(format!(
                "part URLs live 1 second to 7 days, not {seconds} s"
            ));
        }
        self.url_ttl = seconds;
        Ok(self)
    }

    pub fn ttl(&self) -> u64 {
        self.url_ttl
    }

    /// Checks a request and plans the upload: the key, the title, the parts.
    pub fn plan(&self, request: &UploadRequest) -> Result<UploadPlan, UploadError> {
        let invalid = |m: String| Err(UploadError::Invalid(m));
        if request.size == 0 {
            return invalid("size: the file is empty".into());
        }
        if request.size > self.max_size {
            return invalid(format!(
                "size: {} bytes is more than the {} allowed",
                request.size, self.max_size
            ));
        }
        // A browser sends a bare name; a path from another client keeps only its last part.
        let name = request
            .filename
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or_default();
        let lower = name.to_ascii_lowercase();
        let Some(ext) = self
            .pipeline
            .extensions
            .iter()
            .find(|e| lower.ends_with(e.as_str()) && lower.len() > e.len())
        else {
            return invalid(format!(
                "filename: '{}' is not a video the pipeline takes (accepted: {})",
                name.escape_debug(),
                self.pipeline.extensions.join(" ")
            ));
        };
        let stem = &name[..name.len() - ext.len()];
        let title_text = request.title.as_deref().unwrap_or(stem);
        let title =
            Title::new(title_text).map_err(|e| UploadError::Invalid(format!("title: {e}")))?;
        let key = format!("{}{}{ext}", self.pipeline.input_prefix, title.as_str());
        // The worker's own rule decides: the key must be media of exactly this title.
        match classify_key(&self.pipeline, &key) {
            KeyRole::Media { title: t } if t == title => {}
            KeyRole::Ignored(reason) => return invalid(reason),
            _ => return invalid(format!("'{key}' would not be read as the title '{title}'")),
        }
        let content_type = checked_content_type(request.content_type.as_deref(), &key)?;
        let part_size = part_size_for(request.size);
        Ok(UploadPlan {
            part_count: request.size.div_ceil(part_size),
            key,
            title,
            size: request.size,
            part_size,
            content_type,
        })
    }
}

/// The part size for `size` bytes: [`MIN_PART_SIZE`], or larger (in whole MiB) when that
/// would take more than [`MAX_PARTS`] parts.
pub fn part_size_for(size: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB).saturating_mul(MIB);
    needed.clamp(MIN_PART_SIZE, MAX_PART_SIZE)
}

/// A MIME type as a site sends it (`video/quicktime`), or the one the key's extension gives.
/// Printable ASCII only: it becomes an HTTP header on the object.
fn checked_content_type(given: Option<&str>, key: &str) -> Result<String, UploadError> {
    match given.filter(|t| !t.is_empty()) {
        None => Ok(crate::media::object::content_type_for_key(key).to_owned()),
        Some(t)
            if t.len() <= 255
                && t.contains('/')
                && t.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
        {
            Ok(t.to_owned())
        }
        Some(t) => Err(UploadError::Invalid(format!(
            "content_type: '{}' is not a MIME type",
            t.escape_debug()
        ))),
    }
}

/// A checked upload: where it goes and how it is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPlan {
    /// `<input prefix><title><ext>`, relative to the store.
    pub key: String,
    pub title: Title,
    pub size: u64,
    pub part_size: u64,
    pub part_count: u64,
    pub content_type: String,
}

impl UploadPlan {
    /// The byte length of part `n` (1-based).
    pub fn part_len(&self, n: u64) -> u64 {
        let start = n.saturating_sub(1).saturating_mul(self.part_size);
        self.size.saturating_sub(start).min(self.part_size)
    }
}

/// An upload a target has started.
#[derive(Debug, Clone)]
pub struct StartedUpload {
    /// The target's own id (S3's UploadId, or the folder store's).
    pub upload_id: String,
    /// Part `i + 1` is PUT to `part_urls[i]`.
    pub part_urls: Vec<String>,
}

/// A part as the browser saw it uploaded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletedPart {
    pub part_number: u32,
    /// The part's `ETag` response header, with or without its quotes.
    pub etag: String,
}

/// Where uploaded parts go and how they become one object. Synchronous, as [`Store`] is:
/// the API calls it on the blocking pool.
pub trait UploadTarget: Send + Sync {
    /// Starts a multipart upload of `plan.key` whose part URLs are valid until `expires_at`
    /// (Unix seconds). `api_base` is where this API is reached (for URLs that point at it).
    fn start(
        &self,
        plan: &UploadPlan,
        expires_at: u64,
        api_base: &str,
    ) -> Result<StartedUpload, UploadError>;

    /// Joins the parts, in order, into the object at `key`.
    fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), UploadError>;

    /// Drops an upload and its parts.
    fn abort(&self, key: &str, upload_id: &str) -> Result<(), UploadError>;

    /// Routes that receive parts on this server, outside the authoriser (a part URL carries
    /// its own capability); `None` when parts go elsewhere.
    fn part_routes(self: Arc<Self>) -> Option<axum::Router> {
        None
    }
}

/// The upload endpoints' configuration: the rules, the target, and where the API is reached.
pub struct Uploads {
    rules: UploadRules,
    target: Arc<dyn UploadTarget>,
    api_base: String,
}

impl Uploads {
    /// `api_base` is the URL the API is reached at (`https://cdn.example.com`), for the
    /// `complete` and `abort` URLs of an answer.
    pub fn new(rules: UploadRules, target: Arc<dyn UploadTarget>, api_base: &str) -> Uploads {
        Uploads {
            rules,
            target,
            api_base: api_base.trim_end_matches('/').to_owned(),
        }
    }
}

/// The target for a store opened from a URL: presigned S3 URLs for `s3://`, this server's own
/// part endpoint for a folder (parts staged in `<root>/.hlspipe-uploads/<bucket>/`, a name
/// that can never be a bucket's).
pub fn target_for(opened: &UrlStore) -> crate::error::Result<Arc<dyn UploadTarget>> {
    Ok(match opened {
        UrlStore::S3(store) => Arc::new(s3::S3Uploads::new(store)),
        UrlStore::Folder {
            root,
            bucket,
            store,
        } => Arc::new(folder::FolderUploads::new(
            Arc::clone(store),
            root.join(".hlspipe-uploads").join(bucket),
        )?),
    })
}

/// A folder store (`hlspipe dev`): parts staged in `staging`, objects written to `store`.
pub fn folder_target(
    store: Arc<dyn Store>,
    staging: std::path::PathBuf,
) -> crate::error::Result<Arc<dyn UploadTarget>> {
    Ok(Arc::new(folder::FolderUploads::new(store, staging)?))
}

/// The API's opaque upload id: the key and the target's id, so that completing needs no
/// server-side table.
fn encode_upload_id(key: &str, target_id: &str) -> String {
    let json = serde_json::json!([key, target_id]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// `(key, target id)` of an API upload id; `None` when it is not one.
fn decode_upload_id(id: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .ok()?;
    let (key, target_id): (String, String) = serde_json::from_slice(&bytes).ok()?;
    Some((key, target_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> UploadRules {
        UploadRules::new(PipelineConfig::default().validate().unwrap())
    }

    fn request(filename: &str, size: u64) -> UploadRequest {
        UploadRequest {
            filename: filename.into(),
            size,
            content_type: None,
            title: None,
        }
    }

    #[test]
    fn names_become_keys_under_the_input_prefix() {
        let plan = rules().plan(&request("My Trip.MOV", 10)).unwrap();
        assert_eq!(plan.key, "uploads/My Trip.mov");
        assert_eq!(plan.title.as_str(), "My Trip");
        assert_eq!(plan.content_type, "video/mp4");
        let mut r = request("C:\\Users\\me\\Cafe\u{301}.mp4", 10);
        r.title = Some("shows/Été 1".into());
        let plan = rules().plan(&r).unwrap();
        assert_eq!(plan.key, "uploads/shows/Été 1.mp4");
    }

    #[test]
    fn refusals_say_why() {
        let refused = |r: UploadRequest| match rules().plan(&r) {
            Err(UploadError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(refused(request("a.txt", 1)).contains("not a video"));
        assert!(refused(request(".mp4", 1)).contains("not a video"));
        assert!(refused(request("a.mp4", 0)).contains("empty"));
        assert!(refused(request("a.mp4", DEFAULT_MAX_SIZE + 1)).contains("more than"));
        let mut r = request("a.mp4", 1);
        r.title = Some("show.hls/ep1".into());
        assert!(refused(r).contains("title"));
        let mut r = request("a.mp4", 1);
        r.content_type = Some("video/mp4\r\nX: y".into());
        assert!(refused(r).contains("content_type"));
        assert!(refused(request(&format!("{}.mp4", "x".repeat(251)), 1)).contains("250"));
    }

    #[test]
    fn parts_stay_within_s3_limits() {
        for size in [1, MIN_PART_SIZE, 4 << 30, DEFAULT_MAX_SIZE, MAX_UPLOAD_SIZE] {
            let part = part_size_for(size);
            assert!((5 << 20..=MAX_PART_SIZE).contains(&part), "{size}");
            assert!(size.div_ceil(part) <= MAX_PARTS, "{size}");
        }
        let plan = rules()
            .plan(&request("a.mp4", MIN_PART_SIZE * 2 + 3))
            .unwrap();
        assert_eq!(plan.part_count, 3);
        assert_eq!(plan.part_len(1), MIN_PART_SIZE);
        assert_eq!(plan.part_len(3), 3);
    }

    #[test]
    fn upload_ids_round_trip() {
        let id = encode_upload_id("uploads/é x.mp4", "abc.def-_+/=");
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            decode_upload_id(&id),
            Some(("uploads/é x.mp4".into(), "abc.def-_+/=".into()))
        );
        assert_eq!(decode_upload_id("not!base64"), None);
    }
}
