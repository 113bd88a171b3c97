//! Getting titles to viewers: CloudFront signing ([`sign`]), the playback API that hands out
//! signed cookies ([`api`]) from the titles' state ([`state`]), a local CloudFront stand-in
//! that checks them ([`edge`]), uploads from the site ([`uploads`]), and the HTTP plumbing they share ([`http`]).

#[cfg(feature = "service")]
pub mod api;
#[cfg(feature = "service")]
pub mod auth;
#[cfg(feature = "service")]
pub mod cors;
#[cfg(feature = "service")]
pub mod edge;
#[cfg(feature = "service")]
pub mod http;
#[cfg(feature = "service")]
pub mod listen;
pub mod request;
pub mod sign;
#[cfg(feature = "service")]
pub mod state;
#[cfg(feature = "service")]
pub mod uploads;
