//! One shared bearer token for every caller, compared in constant time.

use super::{AuthConfigError, Grant, Refusal};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of the configured token: comparing digests keeps the comparison constant-time
/// in the token's length too.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl BearerToken {
    /// At least 16 printable ASCII characters, no spaces (RFC 6750 § 2.1 `b64token`-ish).
    pub fn new(token: &str) -> Result<BearerToken, AuthConfigError> {
        if token.len() < 16 {
            return Err(AuthConfigError::BadToken("use at least 16 characters"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AuthConfigError::BadToken(
                "printable ASCII without spaces only",
            ));
        }
        Ok(BearerToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Every title for the right token; a refusal for any other.
    pub fn check(&self, presented: &str) -> Result<Grant, Refusal> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if bool::from(digest.ct_eq(&self.digest)) {
            Ok(Grant::AnyTitle)
        } else {
            Err(Refusal::invalid("the bearer token does not match"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_compared() {
        assert!(BearerToken::new("short").is_err());
        assert!(BearerToken::new("has a space in it, sixteen+").is_err());
        let token = BearerToken::new("test-token-0123456789abcdef").unwrap();
        assert_eq!(
            token.check("test-token-0123456789abcdef"),
            Ok(Grant::AnyTitle)
        );
        assert!(token.check("test-token-0123456789abcdeX").is_err());
        assert!(token.check("test-token-0123456789abcde").is_err());
    }
}
