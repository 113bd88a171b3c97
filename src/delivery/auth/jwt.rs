//! The site's own login token (a JWS-signed JWT, RFC 7519 / RFC 7515), verified by the
//! `jsonwebtoken` crate on aws-lc-rs.
//!
//! The configuration decides the algorithm, never the token: a PEM public key takes RS256
//! (RSA) or ES256 (P-256), a secret takes HS256, and a JWKS key takes the algorithm of its
//! own entry ([`super::jwks`]). A token whose header names another algorithm is refused
//! before any key is used, which closes the "HS256 signed with the RSA public key" and
//! `alg: none` attacks (RFC 8725 § 2.1, § 3.1).
//!
//! Claims (RFC 7519 § 4.1): `exp` is required; `nbf` is checked when present; `iss` and `aud`
//! are required and compared when configured; times allow `leeway` seconds of clock skew
//! (§ 4.1.4, § 4.1.5). An optional claim lists the title prefixes the viewer may watch.

use super::jwks::{Jwks, VerificationKey};
use super::{AuthConfigError, Grant, Refusal};
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::Arc;

/// The most clock skew a configuration may allow.
const MAX_LEEWAY: u64 = 300;
/// RFC 7518 § 3.2: an HS256 key is at least as long as the hash output.
const MIN_HS256_SECRET: usize = 32;

/// Where the verification key comes from.
#[derive(Clone)]
pub enum JwtKeys {
    /// One key and its algorithm (a PEM public key, or an HS256 secret).
    Static(VerificationKey),
    /// The provider's key set, by `kid`.
    Jwks(Arc<Jwks>),
}

impl JwtKeys {
    /// An RSA (RS256, at least 2048 bits) or EC P-256 (ES256) public key: PEM
    /// `BEGIN PUBLIC KEY` (SPKI), or `BEGIN RSA PUBLIC KEY` (PKCS#1).
    pub fn public_key_pem(pem: &str) -> Result<JwtKeys, AuthConfigError> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::DecodePublicKey;
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::traits::PublicKeyParts;
        let rsa = rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem));
        if let Ok(key) = rsa {
            if key.size() < 256 {
                return Err(AuthConfigError::BadKey(format!(
                    "an RSA key of {} bits; RS256 needs at least 2048",
                    key.size() * 8
                )));
            }
            let n = key.n().to_bytes_be();
            let e = key.e().to_bytes_be();
            let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
            return Ok(JwtKeys::Static((Arc::new(decoding), Algorithm::RS256)));
        }
        if let Ok(key) = p256::PublicKey::from_public_key_pem(pem) {
            let point = key.to_encoded_point(false);
            let b64 = |bytes: Option<&p256::FieldBytes>| {
                bytes
                    .map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
                    .unwrap_or_default()
            };
            let decoding = DecodingKey::from_ec_components(&b64(point.x()), &b64(point.y()))
                .map_err(|e| AuthConfigError::BadKey(e.to_string()))?;
            return Ok(JwtKeys::Static((Arc::new(decoding), Algorithm::ES256)));
        }
        Err(AuthConfigError::BadKey(
            "expected a PEM RSA or EC P-256 public key (BEGIN PUBLIC KEY)".into(),
        ))
    }

    /// An HS256 secret of at least 32 bytes.
    pub fn hs256_secret(secret: &[u8]) -> Result<JwtKeys, AuthConfigError> {
        if secret.len() < MIN_HS256_SECRET {
            return Err(AuthConfigError::BadKey(format!(
                "an HS256 secret needs at least {MIN_HS256_SECRET} bytes"
            )));
        }
        let key =
            DecodingKey::from_secret(secret).map_err(|e| AuthConfigError::BadKey(e.to_string()))?;
        Ok(JwtKeys::Static((Arc::new(key), Algorithm::HS256)))
    }
}

/// The claims a token must carry, and how its grant is read.
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    /// `iss` must equal this, when set.
    pub issuer: Option<String>,
    /// `aud` must be, or contain, this, when set.
    pub audience: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: u64,
    /// The claim that lists the title prefixes the viewer may watch; without it, a valid
    /// token may watch every title.
    pub titles_claim: Option<String>,
}

/// Verifies JWTs with one key source and one set of claim rules.
pub struct JwtAuthoriser {
    keys: JwtKeys,
    settings: JwtSettings,
}

impl JwtAuthoriser {
    pub fn new(keys: JwtKeys, settings: JwtSettings) -> Result<JwtAuthoriser, AuthConfigError> {
        if settings.leeway > MAX_LEEWAY {
            return Err(AuthConfigError::BadSettings(
                "the leeway is at most 300 seconds",
            ));
        }
        let empty = |v: &Option<String>| v.as_deref().is_some_and(str::is_empty);
        if empty(&settings.issuer) || empty(&settings.audience) || empty(&settings.titles_claim) {
            return Err(AuthConfigError::BadSettings(
                "issuer, audience and titles claim are non-empty when given",
            ));
        }
        Ok(JwtAuthoriser { keys, settings })
    }

    /// The token's grant, or why it was refused (for the log; never the token).
    pub async fn verify(&self, token: &str) -> Result<Grant, Refusal> {
        let header = read_header(token)?;
        let (key, algorithm) = match &self.keys {
            JwtKeys::Static(key) => key.clone(),
            JwtKeys::Jwks(jwks) => {
                let kid = header.kid.as_deref().ok_or_else(|| {
                    Refusal::invalid("the token has no key id (kid) to look up in the JWKS")
                })?;
                jwks.key(kid).await.ok_or_else(|| {
                    Refusal::invalid(format!("unknown key id {kid:?}: not in the JWKS"))
                })?
            }
        };
        if header.alg != algorithm {
            return Err(Refusal::invalid(format!(
                "the token is signed with {:?}; the key takes {algorithm:?} only",
                header.alg
            )));
        }
        self.check(token, &key, algorithm)
    }

    /// Signature, then claims, then the grant.
    fn check(
        &self,
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
    ) -> Result<Grant, Refusal> {
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            key,
            &self.validation(algorithm),
        )
        .map_err(|e| Refusal::invalid(refusal_reason(e.kind())))?
        .claims;
        Ok(self.grant(&claims))
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.settings.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &self.settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // RFC 7519 § 4.1.3 says a token with `aud` is rejected by a recipient that does not
            // identify itself with a value in it; without a configured audience we cannot tell,
            // so `aud` is not checked: configure --jwt-audience in production.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// Every title without a configured claim; otherwise its prefixes. A claim that is absent,
    /// or not a list of strings, allows nothing (403), as an empty list does.
    fn grant(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Grant {
        let Some(name) = &self.settings.titles_claim else {
            return Grant::AnyTitle;
        };
        let entries: Vec<&str> = match claims.get(name) {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(serde_json::Value::as_str).collect()
            }
            _ => Vec::new(),
        };
        Grant::prefixes(&entries)
    }
}

/// The JOSE header (RFC 7515 § 4), or a refusal that names an algorithm we never take.
fn read_header(token: &str) -> Result<jsonwebtoken::Header, Refusal> {
    jsonwebtoken::decode_header(token).map_err(|e| match raw_alg(token) {
        // RFC 7518 § 3.6: an Unsecured JWS carries no signature at all.
        Some(alg) if alg.eq_ignore_ascii_case("none") => {
            Refusal::invalid("alg \"none\": an unsigned token")
        }
        Some(alg) if matches!(e.kind(), ErrorKind::Json(_)) => {
            Refusal::invalid(format!("unsupported algorithm {alg:?}"))
        }
        _ => Refusal::invalid(format!("malformed token header: {e}")),
    })
}

/// The `alg` of a header the crate could not read, for the log line only.
fn raw_alg(token: &str) -> Option<String> {
    let encoded = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&json).ok()?;
    Some(header.get("alg")?.as_str()?.chars().take(16).collect())
}

fn refusal_reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "expired: exp is past, beyond the leeway".into(),
        ErrorKind::ImmatureSignature => "not yet valid: nbf is ahead, beyond the leeway".into(),
        ErrorKind::InvalidAudience => "wrong audience (aud)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm => "algorithm not accepted".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim:?}"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed claim {claim:?}"),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "malformed token".into(),
        other => format!("refused: {other:?}"),
    }
}

#[cfg(test)]
mod tests;
