//! The AWS adapters: the SQS consumer ([`sqs`]), CloudFront invalidations ([`cloudfront`]),
//! title announcements on EventBridge ([`events`]) and the playback API's secrets
//! ([`secrets`]), the last three as single SigV4-signed calls ([`signed`]), with the SDK configuration they share. The S3 store lives with the other
//! store in [`crate::store`].

pub mod cloudfront;
pub mod events;
pub mod secrets;
pub mod signed;
pub mod sqs;

/// The environment's AWS configuration, the way the AWS CLI reads it: credentials
/// chain, `AWS_REGION` / profile, and `AWS_ENDPOINT_URL` (or a service's own
/// `AWS_ENDPOINT_URL_<SERVICE>`, "Service-specific endpoints", AWS SDKs and Tools
/// Reference Guide), which is how the tests point the clients at a local server.
/// `default_region` is used when nothing names one.
pub async fn load_config(default_region: &'static str) -> aws_config::SdkConfig {
    let region =
        aws_config::meta::region::RegionProviderChain::default_provider().or_else(default_region);
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .load()
        .await
}
