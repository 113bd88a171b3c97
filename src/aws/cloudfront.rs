//! CloudFront invalidations, the [`Invalidator`] the worker calls after a re-publish
//! flipped a title's master.
//!
//! Only the master's path is ever invalidated (never `/*`: every other object has a new,
//! versioned key; DESIGN.md "Publish protocol"). The first 1,000 invalidation paths a
//! month are free, after that each costs ("Paying for file invalidation", CloudFront
//! Developer Guide): one path per re-publish keeps that at zero for most catalogues.
//!
//! These are the two CloudFront API calls hlspipe makes, `CreateInvalidation` ("POST
//! /2020-05-31/distribution/{Id}/invalidation", CloudFront API Reference) and, for
//! `reprocess --wait`, `GetInvalidation`, so they are built here (an XML body; the two fields
//! read from the answers), signed with Signature Version 4 (`aws-sigv4`, the SDK's own
//! signer) and sent over the hyper + rustls stack the S3 client already links, instead of
//! through `aws-sdk-cloudfront`, whose generated code is larger than the S3 SDK's and would
//! double the build for two operations.

use crate::aws::signed::{endpoint_from_env, Attempt, Service, SignedClient};
use crate::error::{Error, Result, RetryClass};
use crate::pipeline::invalidate::Invalidator;
use aws_credential_types::provider::SharedCredentialsProvider;
use hyper::body::Bytes;
use std::time::Duration;

/// CloudFront's API endpoint (a global service, signed for us-east-1: "CloudFront
/// endpoints and quotas", AWS General Reference).
pub const DEFAULT_ENDPOINT: &str = "https://cloudfront.amazonaws.com";
const SIGNING_REGION: &str = "us-east-1";
const SERVICE: Service = Service {
    name: "cloudfront",
    region: SIGNING_REGION,
};
const API_VERSION: &str = "2020-05-31";
/// Attempts for one invalidation: throttling, 5xx and connection failures are retried
/// with exponential backoff (20 ms × 4ⁿ: 20, 80, 320 ms), anything else is final.
const ATTEMPTS: u32 = 4;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Invalidates paths of one distribution. The [`Invalidator`] trait is synchronous (the
/// worker runs on blocking threads); each call drives the request on `handle`, so call it
/// from a thread that is not running async tasks (`spawn_blocking`, a plain thread).
pub struct CloudFrontInvalidator {
    distribution_id: String,
    endpoint: String,
    client: SignedClient,
    handle: tokio::runtime::Handle,
    /// How often `wait_until_done` asks.
    poll: Duration,
}

impl CloudFrontInvalidator {
    /// `endpoint` is a base URL (`https://cloudfront.amazonaws.com`, or a local server's
    /// `http://127.0.0.1:PORT`). The distribution id is checked here (CloudFront's ids are
    /// ASCII letters and digits), so it can never reshape the request path.
    pub fn new(
        distribution_id: impl Into<String>,
        endpoint: impl Into<String>,
        credentials: SharedCredentialsProvider,
        handle: tokio::runtime::Handle,
    ) -> Result<Self> {
        let distribution_id = distribution_id.into();
        if distribution_id.is_empty()
            || distribution_id.len() > 64
            || !distribution_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(Error::Config(format!(
                "{distribution_id:?} is not a CloudFront distribution id (letters and digits)"
            )));
        }
        let endpoint = endpoint.into().trim_end_matches('/').to_string();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(Error::Config(format!(
                "CloudFront endpoint {endpoint:?} is not an http(s) URL"
            )));
        }
        let client = SignedClient::new(credentials).map_err(|reason| Error::Cdn {
            reason,
            class: RetryClass::Permanent,
        })?;
        Ok(CloudFrontInvalidator {
            distribution_id,
            endpoint,
            client,
            handle,
            poll: Duration::from_secs(5),
        })
    }

    /// From the environment's AWS configuration: the credentials chain, and the endpoint
    /// from `AWS_ENDPOINT_URL_CLOUDFRONT`, else `AWS_ENDPOINT_URL` ("Service-specific
    /// endpoints", AWS SDKs and Tools Reference Guide), else CloudFront's own. Driven by
    /// the current runtime.
    pub async fn from_env(distribution_id: impl Into<String>) -> Result<Self> {
        let config = crate::aws::load_config(SIGNING_REGION).await;
        let credentials = config.credentials_provider().ok_or_else(|| {
            Error::Config("no AWS credentials provider for CloudFront invalidations".into())
        })?;
        let endpoint = endpoint_from_env(
            "AWS_ENDPOINT_URL_CLOUDFRONT",
            config.endpoint_url(),
            DEFAULT_ENDPOINT.to_string(),
        );
        CloudFrontInvalidator::new(
            distribution_id,
            endpoint,
            credentials,
            tokio::runtime::Handle::current(),
        )
    }

    pub fn distribution_id(&self) -> &str {
        &self.distribution_id
    }

    /// CreateInvalidation: the new invalidation's id, or `None` when `reference` was used
    /// before.
    async fn create(&self, paths: &[String], reference: &str) -> Result<Option<String>> {
        let url = format!(
            "{}/{API_VERSION}/distribution/{}/invalidation",
            self.endpoint, self.distribution_id
        );
        let body = Bytes::from(invalidation_batch_xml(paths, reference));
        let mut last = String::new();
        // Connection trouble and time-outs that outlast the attempts may still pass.
        let mut class = RetryClass::Retryable;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << (2 * attempt))).await;
            }
            let headers = [("content-type", "application/xml")];
            let send =
                self.client
                    .post_within(ATTEMPT_TIMEOUT, SERVICE, &url, &headers, body.clone());
            let (status, text) = match send.await {
                Ok(answer) => answer,
                Err(Attempt::Final(reason)) => {
                    return Err(Error::Cdn {
                        reason,
                        class: RetryClass::Permanent,
                    })
                }
                Err(Attempt::Retry(e)) => {
                    last = e;
                    continue;
                }
            };
            if (200..300).contains(&status) {
                // `<Invalidation><Id>I2J0I21PCUYOIK</Id><Status>InProgress</Status>…`
                return Ok(xml_text(&text, "Id"));
            }
            let code = xml_text(&text, "Code").unwrap_or_default();
            let message = xml_text(&text, "Message").unwrap_or_default();
            // Same reference, another batch: this publish was already invalidated (a
            // retried job), which is all that was wanted (CreateInvalidation, CloudFront
            // API Reference: InvalidationBatchAlreadyExists).
            if code == "InvalidationBatchAlreadyExists" {
                return Ok(None);
            }
            last = format!("HTTP {status} {code}: {message}");
            let retryable = status >= 500
                || status == 429
                || matches!(
                    code.as_str(),
                    "Throttling" | "ThrottlingException" | "RequestTimeout"
                );
            if !retryable {
                // Access denied is a policy to fix, not an input to drop (DESIGN.md
                // "Publish protocol" 5); other refusals will not change.
                if status != 403 {
                    class = RetryClass::Permanent;
                }
                break;
            }
        }
        Err(Error::Cdn {
            reason: format!(
                "CreateInvalidation on distribution {}: {last}",
                self.distribution_id
            ),
            class,
        })
    }
}

impl CloudFrontInvalidator {
    /// GetInvalidation ("GET /2020-05-31/distribution/{Id}/invalidation/{InvalidationId}",
    /// CloudFront API Reference) until its `Status` is `Completed`, every `POLL` (CloudFront
    /// takes from seconds to minutes: "Invalidating files", CloudFront Developer Guide).
    async fn wait(&self, id: &str, within: Duration) -> Result<()> {
        let failed = |reason: String, class| Error::Cdn { reason, class };
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(failed(
                format!("{id:?} is not a CloudFront invalidation id"),
                RetryClass::Permanent,
            ));
        }
        let url = format!(
            "{}/{API_VERSION}/distribution/{}/invalidation/{id}",
            self.endpoint, self.distribution_id
        );
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let answer = self.client.get_within(ATTEMPT_TIMEOUT, SERVICE, &url).await;
            let status = match answer {
                Ok((200, text)) => xml_text(&text, "Status").unwrap_or_default(),
                Ok((status, text)) => {
                    let code = xml_text(&text, "Code").unwrap_or_default();
                    let reason = format!("GetInvalidation {id}: HTTP {status} {code}");
                    if status < 500 && status != 429 {
                        return Err(failed(reason, RetryClass::Permanent));
                    }
                    reason
                }
                Err(Attempt::Final(reason)) => return Err(failed(reason, RetryClass::Permanent)),
                Err(Attempt::Retry(reason)) => reason,
            };
            // AWS spells it `Completed`; some emulators `COMPLETED`.
            if status.eq_ignore_ascii_case("completed") {
                return Ok(());
            }
            if tokio::time::Instant::now() + self.poll > deadline {
                return Err(failed(
                    format!(
                        "invalidation {id} on distribution {} not completed within {} s \
                         (last: {status})",
                        self.distribution_id,
                        within.as_secs()
                    ),
                    RetryClass::Retryable,
                ));
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

/// The `InvalidationBatch` document (CreateInvalidation, CloudFront API Reference), paths
/// encoded by [`encode_path`] and XML-escaped.
pub fn invalidation_batch_xml(paths: &[String], reference: &str) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/{API_VERSION}/\">\
         <Paths><Quantity>{}</Quantity><Items>",
        paths.len()
    );
    for path in paths {
        xml.push_str("<Path>");
        xml.push_str(&xml_escape(&encode_path(path)));
        xml.push_str("</Path>");
    }
    xml.push_str("</Items></Paths><CallerReference>");
    xml.push_str(&xml_escape(reference));
    xml.push_str("</CallerReference></InvalidationBatch>");
    xml
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The text of the first `<tag>…</tag>` in an error document (CloudFront's
/// `<ErrorResponse><Error><Code>…`); enough for the two fields read here.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + len].trim().to_string())
}

impl Invalidator for CloudFrontInvalidator {
    fn invalidate(&self, paths: &[String], reference: &str) -> Result<()> {
        self.invalidate_with_id(paths, reference).map(drop)
    }

    fn invalidate_with_id(&self, paths: &[String], reference: &str) -> Result<Option<String>> {
        if paths.is_empty() {
            return Ok(None);
        }
        self.handle.block_on(self.create(paths, reference))
    }

    fn wait_until_done(&self, id: &str, within: Duration) -> Result<()> {
        self.handle.block_on(self.wait(id, within))
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
    use http_body_util::Full;

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

    #[test]
    fn batch_document_escapes_and_counts() {
        let xml = invalidation_batch_xml(
            &[
                "/hls/a&b/master.m3u8".to_string(),
                "/hls/é/master.m3u8".to_string(),
            ],
            "hlspipe-<0>",
        );
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">"));
        assert!(xml.contains("<Quantity>2</Quantity>"));
        assert!(xml
            .contains("<Path>/hls/a&amp;b/master.m3u8</Path><Path>/hls/%C3%A9/master.m3u8</Path>"));
        assert!(xml
            .ends_with("<CallerReference>hlspipe-&lt;0&gt;</CallerReference></InvalidationBatch>"));
    }

    #[test]
    fn error_code_and_message_are_read_from_the_document() {
        let doc = "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type>\
                   <Code>NoSuchDistribution</Code><Message>The specified distribution does not exist.</Message>\
                   </Error></ErrorResponse>";
        assert_eq!(xml_text(doc, "Code").as_deref(), Some("NoSuchDistribution"));
        assert_eq!(
            xml_text(doc, "Message").as_deref(),
            Some("The specified distribution does not exist.")
        );
        assert_eq!(xml_text("<Code>unterminated", "Code"), None);
    }

    #[test]
    fn requests_are_signed_for_cloudfront_in_us_east_1() {
        let body = Bytes::from(invalidation_batch_xml(&["/hls/a/master.m3u8".into()], "r"));
        let mut request = hyper::Request::post(
            "https://cloudfront.amazonaws.com/2020-05-31/distribution/E2QWRUHEXAMPLE/invalidation",
        )
        .header("content-type", "application/xml")
        .body(Full::new(body.clone()))
        .unwrap();
        let creds = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("session".into()),
            None,
            "test",
        );
        crate::aws::signed::sign(&mut request, SERVICE, &body, creds.into()).unwrap();
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let auth = header("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(
            auth.contains("/us-east-1/cloudfront/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert_eq!(header("x-amz-date").len(), "20261123T120000Z".len());
        assert_eq!(header("x-amz-security-token"), "session");
    }

    /// `app` on 127.0.0.1, on a runtime of one worker thread (which drives the client too),
    /// and its port.
    fn serve(app: axum::Router) -> (tokio::runtime::Runtime, u16) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(async move { axum::serve(listener, app).await });
        (rt, port)
    }

    fn invalidator(rt: &tokio::runtime::Runtime, endpoint: &str) -> CloudFrontInvalidator {
        let creds = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "AKID", "secret", None, None, "test",
        ));
        CloudFrontInvalidator::new("E2QWRUHEXAMPLE", endpoint, creds, rt.handle().clone()).unwrap()
    }

    /// Against a local server that answers from a script: 503 is retried, an
    /// already-used reference is success, AccessDenied is final and reported.
    #[test]
    fn throttling_is_retried_and_a_repeated_reference_is_success() {
        use std::sync::{Arc, Mutex};
        let answers: Arc<Mutex<Vec<(u16, &'static str)>>> = Arc::new(Mutex::new(vec![
            // Popped from the end.
            (403, "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>"),
            (400, "<ErrorResponse><Error><Code>InvalidationBatchAlreadyExists</Code></Error></ErrorResponse>"),
            (201, "<Invalidation/>"),
            (503, "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>"),
        ]));
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let app = {
            let (answers, seen) = (Arc::clone(&answers), Arc::clone(&seen));
            axum::Router::new().route(
                "/2020-05-31/distribution/{id}/invalidation",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                    let (answers, seen) = (Arc::clone(&answers), Arc::clone(&seen));
                    async move {
                        assert!(headers.contains_key("authorization"));
                        seen.lock().unwrap().push(body);
                        let (status, text) = answers.lock().unwrap().pop().unwrap();
                        (axum::http::StatusCode::from_u16(status).unwrap(), text)
                    }
                }),
            )
        };
        let (rt, port) = serve(app);
        let cdn = invalidator(&rt, &format!("http://127.0.0.1:{port}/"));
        let paths = vec!["/hls/shows/ep 1/master.m3u8".to_string()];
        // 503, then 201.
        cdn.invalidate(&paths, "hlspipe-1").unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert!(seen.lock().unwrap()[1].contains("<Path>/hls/shows/ep%201/master.m3u8</Path>"));
        // The same reference again: CloudFront says it exists, which is what was wanted.
        cdn.invalidate(&paths, "hlspipe-1").unwrap();
        // Denied: not retried, and the code is in the error.
        let e = cdn.invalidate(&paths, "hlspipe-2").unwrap_err().to_string();
        assert!(
            e.contains("AccessDenied") && e.contains("E2QWRUHEXAMPLE"),
            "{e}"
        );
        assert_eq!(seen.lock().unwrap().len(), 4);
        // Nothing to invalidate: no request.
        cdn.invalidate(&[], "hlspipe-3").unwrap();
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    /// CreateInvalidation's answer gives the id; GetInvalidation is asked until it says
    /// `Completed`; a wait that outlasts its time says so; ids are checked before use.
    #[test]
    fn the_id_is_returned_and_waited_for_until_completed() {
        use std::sync::{Arc, Mutex};
        let gets: Arc<Mutex<Vec<String>>> = Arc::default();
        let app = {
            let gets = Arc::clone(&gets);
            axum::Router::new()
                .route(
                    "/2020-05-31/distribution/{id}/invalidation",
                    axum::routing::post(|| async {
                        (
                            axum::http::StatusCode::CREATED,
                            "<Invalidation><Id>I2J0I21PCUYOIK</Id><Status>InProgress</Status></Invalidation>",
                        )
                    }),
                )
                .route(
                    "/2020-05-31/distribution/{d}/invalidation/{id}",
                    axum::routing::get(
                        move |axum::extract::Path((_, id)): axum::extract::Path<(String, String)>| {
                            let gets = Arc::clone(&gets);
                            async move {
                                let mut gets = gets.lock().unwrap();
                                gets.push(id.clone());
                                let status = if id == "NEVER" || gets.len() < 3 {
                                    "InProgress"
                                } else {
                                    "Completed"
                                };
                                format!("<Invalidation><Id>{id}</Id><Status>{status}</Status></Invalidation>")
                            }
                        },
                    ),
                )
        };
        let (rt, port) = serve(app);
        let mut cdn = invalidator(&rt, &format!("http://127.0.0.1:{port}"));
        cdn.poll = Duration::from_millis(10);
        let paths = vec!["/hls/a/master.m3u8".to_string()];
        let id = cdn.invalidate_with_id(&paths, "r").unwrap();
        assert_eq!(id.as_deref(), Some("I2J0I21PCUYOIK"));
        cdn.wait_until_done("I2J0I21PCUYOIK", Duration::from_secs(5))
            .unwrap();
        assert_eq!(gets.lock().unwrap().len(), 3, "asked until completed");
        let e = cdn
            .wait_until_done("NEVER", Duration::from_millis(50))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not completed") && e.contains("InProgress"),
            "{e}"
        );
        let e = cdn
            .wait_until_done("../x", Duration::from_secs(1))
            .unwrap_err();
        assert!(e.to_string().contains("not a CloudFront invalidation id"));
    }

    #[test]
    fn distribution_ids_and_endpoints_are_checked() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let creds = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "AKID", "secret", None, None, "test",
        ));
        let make = |id: &str, endpoint: &str| {
            CloudFrontInvalidator::new(id, endpoint, creds.clone(), rt.handle().clone()).map(|_| ())
        };
        assert!(make("E2QWRUHEXAMPLE", "https://cloudfront.amazonaws.com").is_ok());
        assert!(make("E2/../x", DEFAULT_ENDPOINT).is_err());
        assert!(make("", DEFAULT_ENDPOINT).is_err());
        assert!(make("E2QWRUHEXAMPLE", "cloudfront.amazonaws.com").is_err());
    }
}
