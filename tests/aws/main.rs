//! Against real AWS APIs served on 127.0.0.1 (moto): the S3 store's conformance, packaging
//! S3 to S3 through a faulty proxy, the SQS worker and `reprocess`; and the deploy template.

#[path = "../support/mod.rs"]
mod support;

mod aws_worker;
mod deploy_template;
mod events;
mod reprocess;
mod s3_denied;
mod s3_kill;
mod s3_package;
mod s3_race;
mod s3_subtitles;
mod secrets;
mod serve_s3;
mod store_conformance;
mod uploads_s3;
