//! CloudFront signed cookies and signed URLs, and a verifier that answers the way CloudFront
//! would.
//!
//! ```text
//! TitlePrefix ─► Policy (custom: Resource = "<prefix>/*", DateLessThan, IpAddress?, DateGreaterThan?)
//!             ─► Signer (KeySet: active key-pair id → PrivateKey; RSA SHA-1/SHA-256, ECDSA P-256)
//!             ─► SignedCookies (Set-Cookie values) or a signed URL (canned or custom)
//! request URL + Cookie header / signed URL ─► Verifier (PublicKeySet) ─► Decision
//! ```
//!
//! The rules come from the Amazon CloudFront Developer Guide, "Serve private content with
//! signed URLs and signed cookies" (custom policy, canned policy, signed cookies, and "Use
//! SHA-256 and ECDSA"). Clocks stay outside: every function that depends on time takes `now`
//! as Unix seconds.
//!
//! ```
//! use hlspipe::delivery::sign::{HashAlgorithm, KeySet, Policy, PrivateKey, Signer, TitlePrefix, Verifier};
//! # fn main() -> Result<(), hlspipe::delivery::sign::SignError> {
//! let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/keys/ec-p256.sec1.pem")).unwrap();
//! let keys = KeySet::new("K2TESTKEY", PrivateKey::from_pem(&pem)?)?;
//! let verifier = Verifier::new(keys.public_keys());
//! let signer = Signer::new(keys, HashAlgorithm::Sha256);
//!
//! let prefix = TitlePrefix::parse("https://cdn.example.com/hls/shows/ep1.hls/")?;
//! let cookies = signer.signed_cookies(&Policy::for_title(&prefix, 1_900_000_000))?;
//!
//! let ip = "192.0.2.7".parse().unwrap();
//! let url = "https://cdn.example.com/hls/shows/ep1.hls/master.m3u8";
//! assert!(verifier.verify_request(url, Some(&cookies.cookie_header()), ip, 1_800_000_000).is_allow());
//! let nested = "https://cdn.example.com/hls/shows/ep1/extra.hls/master.m3u8";
//! assert!(!verifier.verify_request(nested, Some(&cookies.cookie_header()), ip, 1_800_000_000).is_allow());
//! # Ok(()) }
//! ```

mod awslc_rsa;
mod cookies;
mod encoding;
mod error;
mod keys;
mod policy;
mod url;
mod verify;
pub mod wildcard;

pub use cookies::{CookieAttributes, SameSite, SignedCookies, Signer};
pub use encoding::{decode_cloudfront_base64, encode_cloudfront_base64};
pub use error::SignError;
pub use keys::{HashAlgorithm, KeySet, PrivateKey, PublicKey, PublicKeySet};
pub use policy::{strip_whitespace, IpRange, Policy, TitlePrefix};
pub use url::SIGNING_PARAMETERS;
pub use verify::{Credentials, Decision, DenyReason, Grant, Verifier};
