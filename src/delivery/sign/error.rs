//! Errors from building policies, loading keys and signing. A request that fails verification
//! is not an error: it is a [`Decision::Deny`](super::Decision) with its reason.
//!
//! No variant ever carries key material: key errors say what kind of PEM was found and why it
//! was refused, never its bytes.

/// Why a policy, key, cookie or signed URL could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("title prefix {prefix:?}: {reason}")]
    BadPrefix {
        prefix: String,
        reason: &'static str,
    },
    #[error("URL {url:?}: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error("policy resource {resource:?}: {reason}")]
    BadResource {
        resource: String,
        reason: &'static str,
    },
    #[error("IP address range {value:?}: {reason}")]
    BadIpRange { value: String, reason: &'static str },
    #[error("time window: DateGreaterThan {not_before} must be before DateLessThan {expires}")]
    EmptyWindow { not_before: u64, expires: u64 },
    #[error("policy: {0}")]
    BadPolicy(String),
    #[error("key-pair id {0:?}: expected 1 to 128 ASCII letters and digits")]
    BadKeyPairId(String),
    #[error("private key: {0}")]
    BadPrivateKey(String),
    #[error("public key: {0}")]
    BadPublicKey(String),
    #[error("key-pair id {0:?} is not in the key set")]
    UnknownKeyPairId(String),
    #[error("cookie attribute {attribute}: {reason}")]
    BadCookieAttribute {
        attribute: &'static str,
        reason: &'static str,
    },
    #[error("signing failed: {0}")]
    Signing(String),
}
