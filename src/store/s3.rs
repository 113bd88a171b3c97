//! Amazon S3 (or an S3-compatible server) as an object store, on `aws-sdk-s3`.
//!
//! The [`Store`] trait is synchronous: packaging runs on plain threads. An
//! [`S3Client`] therefore carries a tokio runtime — its own, or a handle to the
//! caller's — and every store call `block_on`s one request. Call the store from
//! threads that are not running async tasks: plain threads (as `publish` does) or
//! `tokio::task::spawn_blocking`. Calling it from inside an async task panics
//! (tokio refuses to block a runtime thread).
//!
//! Writes: a body of at most [`SINGLE_PUT_MAX`] bytes is one PutObject; a larger one
//! is a multipart upload whose parts are read from the body one at a time, so the
//! memory a put holds is one part (or one small object), whatever the object's size.
//! A failed multipart upload is aborted, so it leaves no billed parts behind.

use super::{
    collect_pages, ObjectInfo, Precondition, ReadAheadConfig, ReadAheadSource, Store, Versioned,
};
use crate::error::{Error, Result, RetryClass};
use crate::media::object::{self, Object, Piece};
use crate::media::source::Source;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Bodies up to this size go up in one PutObject; larger ones as multipart uploads.
pub const SINGLE_PUT_MAX: u64 = 16 << 20;

/// Smallest part of a multipart upload we send. S3's minimum is 5 MiB for every
/// part but the last ("Amazon S3 multipart upload limits", S3 User Guide).
pub const MIN_PART_SIZE: u64 = 8 << 20;

/// S3 accepts at most 10,000 parts per upload (same page of the S3 User Guide).
const MAX_PARTS: u64 = 10_000;

/// Times a ranged GET whose response body breaks off is resumed. The SDK retries a
/// request until its response headers arrive; a body cut after that is ours to retry.
const BODY_ATTEMPTS: u32 = 4;

/// How to reach S3.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// An S3-compatible server (`http://127.0.0.1:9000`). `None`: the SDK's own
    /// resolution, which honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_S3`.
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`http://host/bucket/key`), which most S3-compatible
    /// servers need; AWS itself uses virtual-hosted style (`bucket.host/key`).
    pub force_path_style: bool,
    /// `None`: the SDK's region chain (`AWS_REGION`, profile, instance metadata).
    pub region: Option<String>,
    /// Access key id and secret for this client only (tests); `None`: the SDK's
    /// credential chain (environment, profile, SSO, container or instance role).
    pub static_credentials: Option<(String, String)>,
    /// Attempts per request, the first included. `None`: the SDK's configuration
    /// (`AWS_MAX_ATTEMPTS`, profile) or, when that says nothing, [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: Option<u32>,
    /// First retry delay; later ones double (with full jitter) up to 20 s.
    pub initial_backoff: Duration,
}

/// Attempts per request when nothing else is configured. The SDK's standard mode
/// defaults to 3; S3 asks clients to back off and retry on 503 SlowDown, which can
/// take more than two retries under load ("Retry behavior", AWS SDKs and Tools
/// Reference Guide; "Best practices design patterns: optimizing Amazon S3 performance").
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint_url: None,
            force_path_style: false,
            region: None,
            static_credentials: None,
            max_attempts: None,
            initial_backoff: Duration::from_millis(500),
        }
    }
}

impl S3Settings {
    /// Settings from the environment: path-style addressing whenever a custom
    /// endpoint is configured (`AWS_ENDPOINT_URL[_S3]`), unless
    /// `HLSPIPE_S3_PATH_STYLE=0`; `HLSPIPE_S3_PATH_STYLE=1` forces it on.
    pub fn from_env() -> Self {
        let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        let force_path_style = match std::env::var("HLSPIPE_S3_PATH_STYLE").as_deref() {
            Ok("1" | "true") => true,
            Ok("0" | "false") => false,
            _ => custom_endpoint,
        };
        S3Settings {
            force_path_style,
            ..S3Settings::default()
        }
    }
}

/// Drives async SDK calls from synchronous code.
enum Runtime {
    /// Ours; shut down without waiting when the client goes, so dropping the last
    /// store even inside an async context does not panic.
    Owned(Option<tokio::runtime::Runtime>),
    Borrowed(tokio::runtime::Handle),
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Runtime::Owned(rt) = self {
            if let Some(rt) = rt.take() {
                rt.shutdown_background();
            }
        }
    }
}

/// An S3 client with the runtime that drives it; shared by the stores of every
/// bucket it reaches.
pub struct S3Client {
    client: aws_sdk_s3::Client,
    runtime: Runtime,
}

impl S3Client {
    /// Builds a client with its own small runtime (two worker threads), loading
    /// region and credentials the way the AWS CLI does.
    pub fn new(settings: &S3Settings) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hlspipe-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                what: "S3 client runtime".into(),
                source: e,
            })?;
        let client = rt.block_on(build_client(settings));
        Ok(S3Client {
            client,
            runtime: Runtime::Owned(Some(rt)),
        })
    }

    /// Wraps a client the caller built, driven by the caller's runtime. The stores
    /// must then be called from `spawn_blocking` or other non-runtime threads.
    pub fn with_handle(client: aws_sdk_s3::Client, handle: tokio::runtime::Handle) -> Self {
        S3Client {
            client,
            runtime: Runtime::Borrowed(handle),
        }
    }

    /// Builds an SDK client from `settings` (async; for callers with a runtime).
    pub async fn build_sdk_client(settings: &S3Settings) -> aws_sdk_s3::Client {
        build_client(settings).await
    }

    pub fn sdk(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        match &self.runtime {
            Runtime::Owned(Some(rt)) => rt.block_on(f),
            // `Owned(None)` exists only during drop.
            Runtime::Owned(None) => unreachable!("S3 client used after drop"),
            Runtime::Borrowed(h) => h.block_on(f),
        }
    }
}

async fn build_client(settings: &S3Settings) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(aws_sdk_s3::config::Region::new(region.clone()));
    }
    if let Some((id, secret)) = &settings.static_credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            "hlspipe-static",
        ));
    }
    let shared = loader.load().await;
    let max_attempts = settings.max_attempts.unwrap_or_else(|| {
        // Keep an attempt count the user configured (AWS_MAX_ATTEMPTS or profile).
        match std::env::var_os("AWS_MAX_ATTEMPTS") {
            Some(_) => shared
                .retry_config()
                .map(|r| r.max_attempts())
                .unwrap_or(DEFAULT_MAX_ATTEMPTS),
            None => DEFAULT_MAX_ATTEMPTS,
        }
    });
    // Standard mode: exponential backoff with full jitter, retrying throttling
    // (503 SlowDown), 5xx, timeouts and broken connections.
    let retry = RetryConfig::standard()
        .with_max_attempts(max_attempts.max(1))
        .with_initial_backoff(settings.initial_backoff)
        .with_max_backoff(Duration::from_secs(20));
    // No whole-operation timeout: a large part on a slow link may take long; a
    // stalled transfer is caught by the SDK's stalled-stream protection instead.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build();
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(settings.force_path_style)
        // aws-sdk-s3 1.69+ adds CRC32 checksums to every upload and validates them on
        // download by default; many S3-compatible servers reject or lack them. "When
        // required" sends one only where an operation demands it (as before 1.69).
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(retry)
        .timeout_config(timeouts)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// One bucket (and an optional key prefix inside it) as a [`Store`].
#[derive(Clone)]
pub struct S3Store {
    client: Arc<S3Client>,
    bucket: String,
    prefix: String,
}

/// Content type and cache control of an object, as HEAD reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHeaders {
    pub info: ObjectInfo,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
}

/// An S3 object as a [`Source`]: ranged GETs through a block cache (see
/// [`ReadAheadSource`] for the memory bound).
pub type S3Source = ReadAheadSource<S3Object>;

/// One version of an S3 object, the one whose ETag its HEAD gave, read with ranged GETs
/// that each carry `If-Match: "<etag>"`. If a newer upload replaces the object while a
/// title is being cut from it, the next GET answers 412 Precondition Failed ("GetObject",
/// Amazon S3 API Reference) and the job stops with [`Error::SourceChanged`], instead of
/// mixing bytes of two uploads in one title.
pub struct S3Object {
    store: S3Store,
    key: String,
    full: String,
    etag: String,
    len: u64,
}

impl Source for S3Object {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.store
            .client
            .block_on(self.store.get_range_into(
                &self.key,
                &self.full,
                offset,
                buf,
                Some(&self.etag),
            ))
            .map_err(Error::into_io)
    }

    fn name(&self) -> &str {
        &self.key
    }
}

impl S3Store {
    /// A store for `bucket`; every key is taken relative to `prefix` (`""`, or a
    /// prefix such as `tenant-a/`).
    pub fn new(client: Arc<S3Client>, bucket: &str, prefix: &str) -> Self {
        S3Store {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Arc<S3Client> {
        &self.client
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full_key(&self, key: &str) -> Result<String> {
        if key.is_empty() {
            return Err(Error::store_permanent(key, "empty key"));
        }
        Ok(format!("{}{key}", self.prefix))
    }

    /// Creates the bucket (in the client's region) unless this account already has
    /// it: for development servers and tests.
    pub fn create_bucket(&self) -> Result<()> {
        // Outside us-east-1 the region must be named as the location constraint
        // (CreateBucket, Amazon S3 API Reference).
        let region = self.client.client.config().region().map(|r| r.to_string());
        let location = region.filter(|r| r != "us-east-1").map(|r| {
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    r.as_str(),
                ))
                .build()
        });
        let out = self.client.block_on(
            self.client
                .client
                .create_bucket()
                .bucket(&self.bucket)
                .set_create_bucket_configuration(location)
                .send(),
        );
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(sdk_error(&self.bucket, "CreateBucket", e)),
        }
    }

    /// HEAD with the headers the CDN passes on.
    pub fn head_headers(&self, key: &str) -> Result<Option<ObjectHeaders>> {
        let full = self.full_key(key)?;
        let out = self.client.block_on(
            self.client
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&full)
                .send(),
        );
        match out {
            Ok(o) => Ok(Some(ObjectHeaders {
                info: ObjectInfo {
                    key: key.to_string(),
                    size: size_of(key, o.content_length())?,
                    etag: unquote(o.e_tag()),
                    last_modified: o.last_modified().and_then(|t| u64::try_from(t.secs()).ok()),
                    content_type: o.content_type().map(str::to_string),
                    cache_control: o.cache_control().map(str::to_string),
                },
                content_type: o.content_type().map(str::to_string),
                cache_control: o.cache_control().map(str::to_string),
            })),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(sdk_error(key, "HEAD", e)),
        }
    }

    fn put_single(&self, key: &str, full: &str, obj: &Object, body: Vec<u8>) -> Result<()> {
        let len = body.len() as i64;
        self.client
            .block_on(
                self.client
                    .client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(full)
                    .content_type(obj.content_type)
                    .cache_control(obj.cache_control)
                    .content_length(len)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .map_err(|e| sdk_error(key, "PUT", e))?;
        Ok(())
    }

    /// One PutObject carrying `condition` as `If-None-Match: *` or `If-Match` (S3 User
    /// Guide, "Add preconditions to S3 operations with conditional requests"). S3 answers
    /// 412 when the condition does not hold, 409 ConditionalRequestConflict when another
    /// conditional write to the key raced this one, and 404 NoSuchKey for `If-Match` on a
    /// missing key: all three mean another writer decided first.
    fn put_single_if(
        &self,
        key: &str,
        obj: &Object,
        body: Vec<u8>,
        condition: Precondition<'_>,
    ) -> Result<String> {
        let full = self.full_key(key)?;
        let (if_match, if_none_match) = match condition {
            Precondition::Absent => (None, Some("*".to_string())),
            Precondition::Etag(etag) => (Some(format!("\"{etag}\"")), None),
        };
        let len = body.len() as i64;
        let out = self.client.block_on(
            self.client
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .content_type(obj.content_type)
                .cache_control(obj.cache_control)
                .content_length(len)
                .set_if_match(if_match)
                .set_if_none_match(if_none_match)
                .body(ByteStream::from(body))
                .send(),
        );
        match out {
            Ok(o) => Ok(unquote(o.e_tag())),
            Err(e) if matches!(status(&e), Some(412 | 409 | 404)) => {
                Err(Error::PreconditionFailed {
                    key: key.to_string(),
                    condition: format!(
                        "{} (HTTP {})",
                        condition.describe(),
                        status(&e).unwrap_or(0)
                    ),
                })
            }
            Err(e) => Err(sdk_error(key, "PUT", e)),
        }
    }

    fn put_multipart(
        &self,
        key: &str,
        full: &str,
        obj: &Object,
        sources: &[Arc<dyn Source>],
    ) -> Result<()> {
        let created = self
            .client
            .block_on(
                self.client
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full)
                    .content_type(obj.content_type)
                    .cache_control(obj.cache_control)
                    .send(),
            )
            .map_err(|e| sdk_error(key, "CreateMultipartUpload", e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| {
                Error::store_retryable(key, "CreateMultipartUpload returned no upload id")
            })?
            .to_string();
        let result = self.upload_parts(key, full, &upload_id, obj, sources);
        if result.is_err() {
            // Best effort: the error that stopped the upload is the one to report.
            // A bucket lifecycle rule (AbortIncompleteMultipartUpload) catches what
            // an abort that fails here leaves behind.
            let _ = self.client.block_on(
                self.client
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .send(),
            );
        }
        result
    }

    fn upload_parts(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        obj: &Object,
        sources: &[Arc<dyn Source>],
    ) -> Result<()> {
        let part_size = part_size(obj.body.len());
        let mut reader = BodyReader::new(obj.body.pieces(), sources);
        let mut parts = Vec::new();
        let mut number = 0i32;
        loop {
            let buf = reader.next_chunk(part_size, key)?;
            if buf.is_empty() {
                break;
            }
            number += 1;
            let len = buf.len() as i64;
            let out = self
                .client
                .block_on(
                    self.client
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(full)
                        .upload_id(upload_id)
                        .part_number(number)
                        .content_length(len)
                        .body(ByteStream::from(buf))
                        .send(),
                )
                .map_err(|e| sdk_error(key, "UploadPart", e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
        }
        self.client
            .block_on(
                self.client
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send(),
            )
            .map_err(|e| sdk_error(key, "CompleteMultipartUpload", e))?;
        Ok(())
    }

    /// One ranged GET streamed into `buf`, resumed where it broke off when the
    /// connection drops during the body.
    ///
    /// With `if_match` (an unquoted ETag), the GET is conditional: a 412 means the object
    /// is no longer that version ([`Error::SourceChanged`]).
    async fn get_range_into(
        &self,
        key: &str,
        full: &str,
        offset: u64,
        buf: &mut [u8],
        if_match: Option<&str>,
    ) -> Result<()> {
        let mut done = 0usize;
        let mut attempt = 0u32;
        while done < buf.len() {
            attempt += 1;
            let start = offset + done as u64;
            let last = offset + buf.len() as u64 - 1;
            let resp = self
                .client
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(full)
                .range(format!("bytes={start}-{last}"))
                // An entity tag is a quoted string (RFC 9110 § 8.8.3, § 13.1.1).
                .set_if_match(if_match.map(|etag| format!("\"{etag}\"")))
                .send()
                .await;
            let mut body = match resp {
                Ok(o) => o.body,
                // 416: the range starts at or past the end of the object.
                Err(e) if status(&e) == Some(416) => return Err(past_end(key, offset, buf.len())),
                Err(e) if status(&e) == Some(412) && if_match.is_some() => {
                    return Err(Error::SourceChanged {
                        key: key.to_string(),
                    })
                }
                Err(e) => return Err(sdk_error(key, "GET", e)),
            };
            loop {
                match body.next().await {
                    Some(Ok(chunk)) => {
                        let end = done + chunk.len();
                        if end > buf.len() {
                            return Err(Error::store_retryable(
                                key,
                                format!(
                                    "ranged GET returned more than the {} bytes asked for",
                                    buf.len()
                                ),
                            ));
                        }
                        buf[done..end].copy_from_slice(&chunk);
                        done = end;
                    }
                    // The body ended: short means the object ended before the range.
                    None if done < buf.len() => return Err(past_end(key, offset, buf.len())),
                    None => break,
                    // Resumed from `done` by the next round of the outer loop.
                    Some(Err(_)) if attempt < BODY_ATTEMPTS => break,
                    Some(Err(e)) => {
                        return Err(Error::store_retryable(
                            key,
                            format!("GET body broke off {attempt} times: {e}"),
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

impl Store for S3Store {
    fn put(&self, key: &str, obj: &Object, sources: &[Arc<dyn Source>]) -> Result<()> {
        let full = self.full_key(key)?;
        let len = obj.body.len();
        if len <= SINGLE_PUT_MAX {
            // One buffer of the object (≤ 16 MiB): the SDK can resend it on a retry
            // without reading the sources again.
            let mut reader = BodyReader::new(obj.body.pieces(), sources);
            let body = reader.next_chunk(len, key)?;
            self.put_single(key, &full, obj, body)
        } else {
            self.put_multipart(key, &full, obj, sources)
        }
    }

    fn put_if(
        &self,
        key: &str,
        obj: &Object,
        sources: &[Arc<dyn Source>],
        condition: Precondition<'_>,
    ) -> Result<String> {
        let len = obj.body.len();
        if len > SINGLE_PUT_MAX {
            return Err(Error::store_permanent(
                key,
                format!("a conditional write is one PutObject, at most {SINGLE_PUT_MAX} bytes"),
            ));
        }
        let body = BodyReader::new(obj.body.pieces(), sources).next_chunk(len, key)?;
        self.put_single_if(key, obj, body, condition)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned(key)?.map(|v| v.bytes))
    }

    /// One GetObject: the ETag is the response's, of exactly the bytes of its body.
    fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let full = self.full_key(key)?;
        self.client.block_on(async {
            let resp = self
                .client
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await;
            let out = match resp {
                Ok(o) => o,
                Err(e) if status(&e) == Some(404) => return Ok(None),
                Err(e) => return Err(sdk_error(key, "GET", e)),
            };
            let cap = out
                .content_length()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0)
                .min(64 << 20);
            let etag = unquote(out.e_tag());
            let mut bytes = Vec::with_capacity(cap);
            let mut body = out.body;
            while let Some(chunk) = body.next().await {
                let chunk =
                    chunk.map_err(|e| Error::store_retryable(key, format!("GET body: {e}")))?;
                bytes.extend_from_slice(&chunk);
            }
            Ok(Some(Versioned { bytes, etag }))
        })
    }

    fn read_range(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if offset.checked_add(buf.len() as u64).is_none() {
            return Err(past_end(key, offset, buf.len()));
        }
        let full = self.full_key(key)?;
        self.client
            .block_on(self.get_range_into(key, &full, offset, buf, None))
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        Ok(self.head_headers(key)?.map(|h| h.info))
    }

    /// The object's version `info` through the read-ahead cache ([`S3Source`]).
    fn source_for(&self, key: &str, info: &ObjectInfo) -> Result<Option<Arc<dyn Source>>> {
        let object = S3Object {
            store: self.clone(),
            key: key.to_string(),
            full: self.full_key(key)?,
            etag: info.etag.clone(),
            len: info.size,
        };
        let name = format!("s3://{}/{}{key}", self.bucket, self.prefix);
        let source: S3Source =
            ReadAheadSource::new(object, ReadAheadConfig::default()).with_name(name);
        Ok(Some(Arc::new(source)))
    }

    fn delete(&self, key: &str) -> Result<()> {
        let full = self.full_key(key)?;
        // S3 answers 204 for a missing key too.
        match self.client.block_on(
            self.client
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(&full)
                .send(),
        ) {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) => Err(sdk_error(key, "DELETE", e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        collect_pages(self, prefix)
    }

    /// ListObjectsV2, a page (at most 1,000 keys) per call ([`S3Store::list_v2`]); `page`
    /// runs between the calls, outside the client's runtime, so it may use the store itself.
    fn list_pages(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(Vec<ObjectInfo>) -> Result<bool>,
    ) -> Result<()> {
        self.list_v2(prefix, None, &mut |out| {
            let mut objects = Vec::with_capacity(out.contents().len());
            for o in out.contents() {
                let Some(rel) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                // A listing carries no content type or cache control (HEAD has them).
                objects.push(ObjectInfo {
                    key: rel.to_string(),
                    size: size_of(rel, o.size())?,
                    etag: unquote(o.e_tag()),
                    last_modified: o.last_modified().and_then(|t| u64::try_from(t.secs()).ok()),
                    content_type: None,
                    cache_control: None,
                });
            }
            // S3 lists keys in UTF-8 binary order, which is how Rust orders strings; a
            // server that does not is put right within the page.
            objects.sort_by(|a, b| a.key.cmp(&b.key));
            page(objects)
        })
    }

    /// ListObjectsV2 with the delimiter `/`: the common prefixes, page after page.
    fn folders(&self, prefix: &str) -> Result<Vec<String>> {
        let mut folders = Vec::new();
        self.list_v2(prefix, Some("/"), &mut |out| {
            folders.extend(
                out.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix()?.strip_prefix(&self.prefix))
                    .map(str::to_owned),
            );
            Ok(true)
        })?;
        folders.sort();
        folders.dedup();
        Ok(folders)
    }
}

impl S3Store {
    /// ListObjectsV2 of `prefix` (with `delimiter`), one call per page, each with the page
    /// before's NextContinuationToken until IsTruncated is false or `each` says stop.
    fn list_v2(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        each: &mut dyn FnMut(ListObjectsV2Output) -> Result<bool>,
    ) -> Result<()> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut token: Option<String> = None;
        loop {
            let out = self.client.block_on(
                self.client
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&full_prefix)
                    .set_delimiter(delimiter.map(str::to_owned))
                    .set_continuation_token(token.take())
                    .send(),
            );
            let out = out.map_err(|e| sdk_error(prefix, "LIST", e))?;
            let next = match out.next_continuation_token() {
                Some(next) if out.is_truncated() == Some(true) => Some(next.to_owned()),
                _ => None,
            };
            if !each(out)? {
                return Ok(());
            }
            match next {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }
}

/// Part size for a body of `len` bytes: [`MIN_PART_SIZE`], or larger (whole MiB)
/// when that would need more than 10,000 parts.
fn part_size(len: u64) -> u64 {
    let needed = len.div_ceil(MAX_PARTS);
    needed
        .div_ceil(1 << 20)
        .saturating_mul(1 << 20)
        .max(MIN_PART_SIZE)
}

/// Reads a body's pieces front to back in chunks, straight into each chunk's buffer
/// (source ranges are read into place, not through a second buffer).
struct BodyReader<'a> {
    pieces: &'a [Piece],
    sources: &'a [Arc<dyn Source>],
    /// Index of the current piece and how far into it we are.
    piece: usize,
    within: u64,
}

impl<'a> BodyReader<'a> {
    fn new(pieces: &'a [Piece], sources: &'a [Arc<dyn Source>]) -> Self {
        BodyReader {
            pieces,
            sources,
            piece: 0,
            within: 0,
        }
    }

    /// The next `max` bytes of the body (fewer at its end; empty when done).
    fn next_chunk(&mut self, max: u64, key: &str) -> Result<Vec<u8>> {
        let max = usize::try_from(max)
            .map_err(|_| Error::store_permanent(key, "object too large for this machine"))?;
        // Allocated zeroed in one go (calloc: fresh pages, no byte-by-byte fill) and
        // filled in place.
        let want = max.min(self.remaining());
        let mut buf = vec![0u8; want];
        let mut filled = 0usize;
        while filled < want {
            let Some(piece) = self.pieces.get(self.piece) else {
                break;
            };
            let piece_len = match piece {
                Piece::Bytes(b) => b.len() as u64,
                Piece::Source { len, .. } => *len,
            };
            // ≤ want - filled, which fits in usize.
            let n = (piece_len - self.within).min((want - filled) as u64) as usize;
            let dst = &mut buf[filled..filled + n];
            match piece {
                Piece::Bytes(b) => {
                    let from = self.within as usize;
                    dst.copy_from_slice(&b[from..from + n]);
                }
                Piece::Source { input, offset, .. } => {
                    let src = object::source(self.sources, *input)?;
                    src.read_at(offset + self.within, dst)
                        .map_err(|e| Error::Io {
                            what: src.name().to_string(),
                            source: e,
                        })?;
                }
            }
            filled += n;
            self.within += n as u64;
            if self.within == piece_len {
                self.piece += 1;
                self.within = 0;
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Bytes left in the body.
    fn remaining(&self) -> usize {
        let mut left = 0u64;
        for (i, p) in self.pieces.iter().enumerate().skip(self.piece) {
            let len = match p {
                Piece::Bytes(b) => b.len() as u64,
                Piece::Source { len, .. } => *len,
            };
            left = left.saturating_add(if i == self.piece {
                len - self.within
            } else {
                len
            });
        }
        usize::try_from(left).unwrap_or(usize::MAX)
    }
}

/// S3 quotes ETags (`"9e107d9d372bb6826bd81d3542a419d6"`); the store's callers do not.
fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_string()
}

fn size_of(key: &str, n: Option<i64>) -> Result<u64> {
    n.and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Error::store_retryable(key, "the server sent no valid object size"))
}

fn past_end(key: &str, offset: u64, len: usize) -> Error {
    Error::Io {
        what: key.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("range {offset}+{len} is past the end of the object"),
        ),
    }
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Maps an SDK error (after the SDK's retries) to the crate's: a 4xx other than
/// 403/408/429 will not change on retry ([`RetryClass::Permanent`]); everything else —
/// access denied, 5xx, throttling that outlasted the retries, timeouts, broken
/// connections — may ([`RetryClass::Retryable`]).
fn sdk_error<E>(key: &str, op: &str, e: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = status(&e);
    let what = match (&e, e.code()) {
        (SdkError::ServiceError(_), Some(c)) => {
            format!(
                "{op}: {c} (HTTP {}): {}",
                code.unwrap_or(0),
                e.message().unwrap_or("")
            )
        }
        _ => format!("{op}: {}", DisplayErrorContext(&e)),
    };
    // 403 is retryable: S3 answers a HEAD or GET of a missing key with 403 when the caller
    // may not list the bucket (HeadObject API reference, "Permissions"), and a wrong IAM
    // policy must end in the dead-letter queue, seen, not in a deleted message.
    let permanent = matches!(e, SdkError::ConstructionFailure(_))
        || matches!(code, Some(c) if (400..500).contains(&c) && !matches!(c, 403 | 408 | 429));
    let class = if permanent {
        RetryClass::Permanent
    } else {
        RetryClass::Retryable
    };
    Error::Store {
        key: key.to_string(),
        reason: what,
        class,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::object::Body;
    use crate::media::source::MemorySource;

    #[test]
    fn part_size_stays_within_ten_thousand_parts() {
        assert_eq!(part_size(17 << 20), MIN_PART_SIZE);
        assert_eq!(part_size(80_000 << 20), MIN_PART_SIZE);
        let big = 200u64 << 30;
        let p = part_size(big);
        assert!(big.div_ceil(p) <= MAX_PARTS);
        assert_eq!(p % (1 << 20), 0);
    }

    #[test]
    fn body_reader_chunks_equal_the_body() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let sources: Vec<Arc<dyn Source>> = vec![Arc::new(MemorySource::new(data, "mem"))];
        let mut body = Body::default();
        body.push_bytes(b"head".to_vec());
        body.push_source(0, 10, 40_000);
        body.push_bytes(vec![9; 333]);
        body.push_source(0, 60_000, 39_000);
        let whole = body.to_vec(&sources).unwrap();
        for chunk in [1u64, 7, 4096, 40_000, 1 << 20] {
            let mut r = BodyReader::new(body.pieces(), &sources);
            let mut got = Vec::new();
            loop {
                let c = r.next_chunk(chunk, "k").unwrap();
                if c.is_empty() {
                    break;
                }
                assert!(c.len() as u64 <= chunk);
                got.extend_from_slice(&c);
            }
            assert_eq!(got, whole, "chunk {chunk}");
        }
    }

    #[test]
    fn etags_lose_their_quotes() {
        assert_eq!(unquote(Some("\"abc\"")), "abc");
        assert_eq!(unquote(Some("abc-2")), "abc-2");
        assert_eq!(unquote(None), "");
    }
}
