//! CloudFront invalidations (aws-sdk-cloudfront `CreateInvalidation`), the
//! [`Invalidator`] the worker calls after a re-publish flipped a title's master.
//!
//! Only the master's path is ever invalidated (never `/*`: every other object has a new,
//! versioned key; DESIGN.md "Publish protocol"). The first 1,000 invalidation paths a
//! month are free, after that each costs ("Paying for file invalidation", CloudFront
//! Developer Guide): one path per re-publish keeps that at zero for most catalogues.

use crate::error::{Error, Result};
use crate::worker::Invalidator;
use aws_sdk_cloudfront::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

/// Invalidates paths of one distribution. The [`Invalidator`] trait is synchronous (the
/// worker runs on blocking threads); each call drives the SDK on `handle`, so call it from
/// a thread that is not running async tasks (`spawn_blocking`, a plain thread).
pub struct CloudFrontInvalidator {
    client: aws_sdk_cloudfront::Client,
    distribution_id: String,
    handle: tokio::runtime::Handle,
}

impl CloudFrontInvalidator {
    pub fn new(
        client: aws_sdk_cloudfront::Client,
        distribution_id: impl Into<String>,
        handle: tokio::runtime::Handle,
    ) -> Self {
        CloudFrontInvalidator {
            client,
            distribution_id: distribution_id.into(),
            handle,
        }
    }

    /// A client from the environment's AWS configuration (credentials, `AWS_ENDPOINT_URL`
    /// or `AWS_ENDPOINT_URL_CLOUDFRONT`), driven by the current runtime. CloudFront is a
    /// global service whose API lives in us-east-1: that region is used when none is
    /// configured.
    pub async fn from_env(distribution_id: impl Into<String>) -> Self {
        let client = aws_sdk_cloudfront::Client::new(&crate::aws::load_config("us-east-1").await);
        CloudFrontInvalidator::new(client, distribution_id, tokio::runtime::Handle::current())
    }

    pub fn distribution_id(&self) -> &str {
        &self.distribution_id
    }

    async fn create(&self, paths: &[String], reference: &str) -> Result<()> {
        let items: Vec<String> = paths.iter().map(|p| encode_path(p)).collect();
        let quantity = i32::try_from(items.len())
            .map_err(|_| Error::Cdn(format!("{} paths in one invalidation", items.len())))?;
        let batch = InvalidationBatch::builder()
            .paths(
                Paths::builder()
                    .quantity(quantity)
                    .set_items(Some(items))
                    .build()
                    .map_err(|e| Error::Cdn(e.to_string()))?,
            )
            .caller_reference(reference)
            .build()
            .map_err(|e| Error::Cdn(e.to_string()))?;
        let sent = self
            .client
            .create_invalidation()
            .distribution_id(&self.distribution_id)
            .invalidation_batch(batch)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // Same reference, another batch: this publish was already invalidated (a
            // retried job), which is all that was wanted ("CreateInvalidation", CloudFront
            // API Reference: InvalidationBatchAlreadyExists).
            Err(e) if e.code() == Some("InvalidationBatchAlreadyExists") => Ok(()),
            Err(e) => Err(Error::Cdn(format!(
                "CreateInvalidation on distribution {}: {}",
                self.distribution_id,
                DisplayErrorContext(&e)
            ))),
        }
    }
}

impl Invalidator for CloudFrontInvalidator {
    fn invalidate(&self, paths: &[String], reference: &str) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        self.handle.block_on(self.create(paths, reference))
    }
}

/// Percent-encodes an invalidation path the way CloudFront matches it: "If the path
/// includes non-ASCII characters or unsafe characters as defined in RFC 1738, URL-encode
/// those characters. Don't URL-encode any other characters in the path, or CloudFront
/// will not invalidate the old version of the updated file" ("Specifying the objects to
/// invalidate", CloudFront Developer Guide). RFC 1738 § 2.2's unsafe characters are
/// space, `< > " # % { } | \ ^ ~ [ ] \``; controls are encoded too, and `?` (which would
/// start a query string) and `*` (a wildcard in an invalidation path), which titles never
/// hold but a path must not smuggle in.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        let unsafe_char = matches!(
            b,
            b' ' | b'<'
                | b'>'
                | b'"'
                | b'#'
                | b'%'
                | b'{'
                | b'}'
                | b'|'
                | b'\\'
                | b'^'
                | b'~'
                | b'['
                | b']'
                | b'`'
                | b'?'
                | b'*'
        );
        if b.is_ascii_graphic() && !unsafe_char {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_only_unsafe_and_non_ascii() {
        assert_eq!(
            encode_path("/hls/shows/ep1/master.m3u8"),
            "/hls/shows/ep1/master.m3u8"
        );
        assert_eq!(
            encode_path("/hls/Shows/Épisode 1 (2024)/master.m3u8"),
            "/hls/Shows/%C3%89pisode%201%20(2024)/master.m3u8"
        );
        assert_eq!(
            encode_path("/hls/a#b%c~d+e&f/master.m3u8"),
            "/hls/a%23b%25c%7Ed+e&f/master.m3u8"
        );
        assert_eq!(encode_path("/hls/x*?/m"), "/hls/x%2A%3F/m");
    }
}
