//! One AWS API call without a generated SDK crate: a POST signed with Signature Version 4
//! (`aws-sigv4`, the SDK's own signer) and sent over the hyper + rustls stack the S3 client
//! already links. CloudFront's `CreateInvalidation` and Secrets Manager's `GetSecretValue`
//! are each one operation; `aws-sdk-cloudfront` alone is larger than the S3 SDK.

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use std::time::SystemTime;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The longest answer kept: API answers and error documents are small; a secret is at most
/// 64 KiB ("Quotas for AWS Secrets Manager").
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Where and as whom requests are signed: a service's signing name and region.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub name: &'static str,
    pub region: &'static str,
}

/// Why one attempt failed: worth another attempt (the connection, credentials that may come
/// back), or not (a request that cannot be built or signed).
#[derive(Debug)]
pub enum Attempt {
    Retry(String),
    Final(String),
}

/// Signed POSTs to AWS APIs.
pub struct SignedClient {
    credentials: SharedCredentialsProvider,
    client: HttpsClient,
}

impl SignedClient {
    pub fn new(credentials: SharedCredentialsProvider) -> Result<SignedClient, String> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| format!("TLS set-up: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(SignedClient {
            credentials,
            client,
        })
    }

    /// [`SignedClient::post`] that gives up after `timeout` (worth another attempt).
    pub async fn post_within(
        &self,
        timeout: std::time::Duration,
        service: Service,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, String), Attempt> {
        let post = self.send(hyper::Method::POST, service, url, headers, body);
        within(timeout, url, post).await
    }

    /// A signed GET of `url` that gives up after `timeout` (worth another attempt).
    pub async fn get_within(
        &self,
        timeout: std::time::Duration,
        service: Service,
        url: &str,
    ) -> Result<(u16, String), Attempt> {
        let get = self.send(hyper::Method::GET, service, url, &[], Bytes::new());
        within(timeout, url, get).await
    }

    /// One signed POST of `body` with `headers`; the status and (at most 256 KiB of) the
    /// answer's body.
    pub async fn post(
        &self,
        service: Service,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, String), Attempt> {
        self.send(hyper::Method::POST, service, url, headers, body)
            .await
    }

    async fn send(
        &self,
        method: hyper::Method,
        service: Service,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, String), Attempt> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| Attempt::Retry(format!("AWS credentials: {e}")))?;
        let mut builder = hyper::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder
            .body(Full::new(body.clone()))
            .map_err(|e| Attempt::Final(format!("request {url}: {e}")))?;
        sign(&mut request, service, &body, credentials.into())
            .map_err(|e| Attempt::Final(format!("signing: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| Attempt::Retry(format!("{url}: {e}")))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Attempt::Retry(format!("{url}: reading the answer: {e}")))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ANSWER_BYTES)]);
        Ok((status, text.into_owned()))
    }
}

async fn within(
    timeout: std::time::Duration,
    url: &str,
    call: impl std::future::Future<Output = Result<(u16, String), Attempt>>,
) -> Result<(u16, String), Attempt> {
    match tokio::time::timeout(timeout, call).await {
        Ok(answer) => answer,
        Err(_) => Err(Attempt::Retry(format!(
            "{url}: no answer within {} s",
            timeout.as_secs()
        ))),
    }
}

/// Signs `request` in place for `service` (Signature Version 4, headers `authorization`,
/// `x-amz-date` and, for temporary credentials, `x-amz-security-token`).
pub fn sign(
    request: &mut hyper::Request<Full<Bytes>>,
    service: Service,
    body: &[u8],
    identity: aws_smithy_runtime_api::client::identity::Identity,
) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(service.region)
        .name(service.name)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _signature) = aws_sigv4::http_request::sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// A base URL for a service: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`
/// ("Service-specific endpoints", AWS SDKs and Tools Reference Guide), else `default`.
pub fn endpoint_from_env(
    service_env: &str,
    config_endpoint: Option<&str>,
    default: String,
) -> String {
    std::env::var(service_env)
        .ok()
        .filter(|e| !e.is_empty())
        .or_else(|| config_endpoint.map(String::from))
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_string()
}

/// AWS JSON 1.1 operations (Secrets Manager, SSM, EventBridge): a POST of a JSON document
/// naming the operation in `X-Amz-Target`, answered with a JSON document, or an error
/// document whose `__type` names the error. Retried on throttling, 5xx and connection
/// failures.
pub struct AwsJsonClient {
    client: SignedClient,
    region: &'static str,
}

const JSON_ATTEMPTS: u32 = 3;
const JSON_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl AwsJsonClient {
    /// With the configuration's credentials and region. `region` is leaked once per client
    /// (a few bytes; clients live as long as the process). `what` names the user in errors.
    pub fn from_config(
        config: &aws_config::SdkConfig,
        what: &str,
    ) -> crate::error::Result<AwsJsonClient> {
        use crate::error::Error;
        let region: &'static str = Box::leak(
            config
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into())
                .into_boxed_str(),
        );
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| Error::Config(format!("no AWS credentials provider for {what}")))?;
        let client = SignedClient::new(credentials).map_err(Error::Config)?;
        Ok(AwsJsonClient { client, region })
    }

    pub fn region(&self) -> &'static str {
        self.region
    }

    /// One operation: `service` is the signing name, `target` the `X-Amz-Target`.
    pub async fn call(
        &self,
        service: &'static str,
        url: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> crate::error::Result<serde_json::Value> {
        let service = Service {
            name: service,
            region: self.region,
        };
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ];
        let body = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let mut last = String::new();
        for attempt in 0..JSON_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << (2 * attempt))).await;
            }
            let send =
                self.client
                    .post_within(JSON_ATTEMPT_TIMEOUT, service, url, &headers, body.clone());
            let (status, text) = match send.await {
                Ok(answer) => answer,
                Err(Attempt::Final(e)) => {
                    return Err(crate::error::Error::Config(format!("{target}: {e}")))
                }
                Err(Attempt::Retry(e)) => {
                    last = e;
                    continue;
                }
            };
            let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if (200..300).contains(&status) {
                return Ok(json);
            }
            let kind = json["__type"].as_str().unwrap_or_default();
            last = format!(
                "HTTP {status} {kind}: {}",
                json["message"]
                    .as_str()
                    .or(json["Message"].as_str())
                    .unwrap_or_default()
            );
            if !(status >= 500 || status == 429 || kind.contains("Throttling")) {
                break;
            }
        }
        Err(crate::error::Error::Config(format!("{target}: {last}")))
    }
}
