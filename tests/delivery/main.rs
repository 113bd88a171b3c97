//! Delivery: CloudFront signing (checked against openssl, botocore and the AWS SDK), the
//! verifier, the signing commands, and `hlspipe serve` (playback API and edge) over HTTP, as
//! routers and in a browser.

#[path = "../support/mod.rs"]
mod support;

mod api_jwt;
mod edge_http;
mod edge_player;
mod edge_router;
mod serve_limits;
mod sign_cli;
mod sign_crosscheck;
mod sign_openssl;
mod sign_verify;
mod uploads;
