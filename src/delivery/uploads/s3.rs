//! Uploads straight to S3: the API calls CreateMultipartUpload and presigns one UploadPart
//! URL per part (SigV4 query-string authentication, "Sharing objects with presigned URLs", S3
//! User Guide); the browser PUTs each part to S3 and reads its `ETag`; completing calls
//! CompleteMultipartUpload with those ETags. The S3 event that follows is the pipeline's.
//!
//! IAM: CreateMultipartUpload, UploadPart and CompleteMultipartUpload are all `s3:PutObject`;
//! AbortMultipartUpload is `s3:AbortMultipartUpload` ("Multipart upload API and
//! permissions", S3 User Guide). A URL presigned with temporary credentials (a Lambda role's)
//! stops working when those credentials expire, whatever its own expiry says.

use super::{CompletedPart, StartedUpload, UploadError, UploadPlan, UploadTarget};
use crate::store::{S3Client, S3Store};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart as S3Part};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Multipart uploads into one bucket (under the store's key prefix).
pub struct S3Uploads {
    client: Arc<S3Client>,
    bucket: String,
    prefix: String,
}

impl S3Uploads {
    pub fn new(store: &S3Store) -> S3Uploads {
        S3Uploads {
            client: Arc::clone(store.client()),
            bucket: store.bucket().to_owned(),
            prefix: store.prefix().to_owned(),
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// One presigned UploadPart URL per part, each valid until `expires_at`.
    async fn presign_parts(
        &self,
        full_key: &str,
        upload_id: &str,
        count: u64,
        expires_at: u64,
    ) -> Result<Vec<String>, UploadError> {
        let now = SystemTime::now();
        let ttl =
            expires_at.saturating_sub(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        let config = PresigningConfig::builder()
            .start_time(now)
            .expires_in(Duration::from_secs(ttl.max(1)))
            .build()
            .map_err(|e| UploadError::Storage(format!("presigning: {e}")))?;
        let sdk = self.client.sdk();
        let mut urls =
            Vec::with_capacity(usize::try_from(count.min(super::MAX_PARTS)).unwrap_or(0));
        for n in 1..=count {
            let part_number =
                i32::try_from(n).map_err(|_| UploadError::Storage(format!("part number {n}")))?;
            let presigned = sdk
                .upload_part()
                .bucket(&self.bucket)
                .key(full_key)
                .upload_id(upload_id)
                .part_number(part_number)
                .presigned(config.clone())
                .await
                .map_err(|e| storage("presigning UploadPart", full_key, e))?;
            urls.push(presigned.uri().to_owned());
        }
        Ok(urls)
    }
}

impl UploadTarget for S3Uploads {
    fn start(
        &self,
        plan: &UploadPlan,
        expires_at: u64,
        _api_base: &str,
    ) -> Result<StartedUpload, UploadError> {
        let full_key = self.full_key(&plan.key);
        self.client.block_on(async {
            let created = self
                .client
                .sdk()
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&full_key)
                .content_type(&plan.content_type)
                .send()
                .await
                .map_err(|e| storage("CreateMultipartUpload", &full_key, e))?;
            let upload_id = created.upload_id().unwrap_or_default().to_owned();
            if upload_id.is_empty() {
                return Err(UploadError::Storage(format!(
                    "CreateMultipartUpload {full_key}: no UploadId in the answer"
                )));
            }
            let part_urls = self
                .presign_parts(&full_key, &upload_id, plan.part_count, expires_at)
                .await?;
            Ok(StartedUpload {
                upload_id,
                part_urls,
            })
        })
    }

    fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), UploadError> {
        let full_key = self.full_key(key);
        let parts: Vec<S3Part> = parts
            .iter()
            .map(|p| {
                S3Part::builder()
                    .part_number(i32::try_from(p.part_number).unwrap_or(i32::MAX))
                    .e_tag(quoted(&p.etag))
                    .build()
            })
            .collect();
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        self.client.block_on(async {
            self.client
                .sdk()
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&full_key)
                .upload_id(upload_id)
                .multipart_upload(upload)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| storage("CompleteMultipartUpload", &full_key, e))
        })
    }

    fn abort(&self, key: &str, upload_id: &str) -> Result<(), UploadError> {
        let full_key = self.full_key(key);
        self.client.block_on(async {
            self.client
                .sdk()
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&full_key)
                .upload_id(upload_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| storage("AbortMultipartUpload", &full_key, e))
        })
    }
}

/// An ETag as S3 lists it: in double quotes (browsers hand the header over as sent).
fn quoted(etag: &str) -> String {
    format!("\"{}\"", etag.trim().trim_matches('"'))
}

/// S3's refusals the caller can act on become 400/404 with S3's own code; anything else is a
/// storage error ("Error responses", S3 API Reference).
fn storage<E, R>(what: &str, key: &str, e: SdkError<E, R>) -> UploadError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = e
        .as_service_error()
        .and_then(|s| s.code())
        .map(str::to_owned);
    let message = e
        .as_service_error()
        .and_then(|s| s.message())
        .unwrap_or_default()
        .to_owned();
    match code.as_deref() {
        Some("NoSuchUpload") => UploadError::NotFound(format!(
            "no such upload (completed, aborted or never started): {message}"
        )),
        Some(c @ ("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "MalformedXML")) => {
            UploadError::Invalid(format!("parts: {c}: {message}"))
        }
        _ => UploadError::Storage(format!(
            "{what} {key}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )),
    }
}
