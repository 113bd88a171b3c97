//! Getting titles to viewers: CloudFront signing ([`sign`]), the playback API that hands out
//! signed cookies ([`api`]) from the titles' state ([`state`]), a local CloudFront stand-in
//! that checks them ([`edge`]), uploads from the site ([`uploads`]), and the HTTP plumbing they share ([`http`]).

pub mod api;
pub mod auth;
pub mod cors;
pub mod edge;
pub mod http;
pub mod listen;
pub mod sign;
pub mod state;
pub mod uploads;
