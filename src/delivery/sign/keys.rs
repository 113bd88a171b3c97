//! Keys: private keys for signing, public keys for verifying, and key sets for rotation.
//!
//! CloudFront accepts RSA-2048 and ECDSA P-256 public keys (CloudFront API reference,
//! `PublicKey`). Signatures cover the raw policy bytes: RSASSA-PKCS1-v1_5 with SHA-1 unless the
//! request names SHA-256 (`CloudFront-Hash-Algorithm=SHA256` cookie or `Hash-Algorithm=SHA256`
//! URL parameter); ECDSA signatures are DER-encoded, as OpenSSL, Node's `crypto.sign` and the
//! AWS CLI produce them.
//!
//! RSA signing goes through aws-lc (`awslc_rsa`, constant-time and blinded, at OpenSSL's
//! speed), not the pure-Rust `rsa` crate, whose RUSTSEC-2023-0071 (Marvin, a timing side
//! channel) has no fixed release; `rsa` still reads PEM structure and verifies, which involve
//! no private key operation. ECDSA stays on the `p256` crate: its RFC 6979 nonces make the
//! same policy always get the same signature, which aws-lc's randomised ECDSA would not.
//! See docs/signing.md.

use super::awslc_rsa::{RsaHash, RsaSigner};
use super::error::SignError;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use rsa::pkcs1::der::{Decode, SecretDocument};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::fmt;

/// The hash inside the signature. CloudFront assumes SHA-1 when the request names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum HashAlgorithm {
    #[default]
    Sha1,
    Sha256,
}

impl HashAlgorithm {
    /// The value of the `CloudFront-Hash-Algorithm` cookie / `Hash-Algorithm` parameter.
    pub fn as_param(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Parse the parameter value (`SHA1` or `SHA256`, exactly as CloudFront documents them).
    pub fn from_param(value: &str) -> Option<HashAlgorithm> {
        match value {
            "SHA1" => Some(HashAlgorithm::Sha1),
            "SHA256" => Some(HashAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// A signing key. Its `Debug` shows only the key type; key material is never printed.
pub struct PrivateKey {
    inner: PrivateInner,
}

enum PrivateInner {
    Rsa(Box<RsaSigningKeys>),
    EcdsaP256(p256::ecdsa::SigningKey),
}

struct RsaSigningKeys {
    signer: RsaSigner,
    public: rsa::RsaPublicKey,
}

/// The DER inside a PEM block, checked to carry the block's own label; wiped when dropped.
fn der_of(block: &PemBlock<'_>) -> Result<SecretDocument, String> {
    let (label, der) = SecretDocument::from_pem(block.text).map_err(|e| e.to_string())?;
    if label != block.label {
        return Err(format!(
            "PEM label {label:?} does not match {:?}",
            block.label
        ));
    }
    Ok(der)
}

/// One PEM block: its label and the whole text from BEGIN to END.
struct PemBlock<'a> {
    label: &'a str,
    text: &'a str,
    encrypted: bool,
}

/// The first PEM block whose label is not `EC PARAMETERS` (which `openssl ecparam -genkey`
/// writes before the key).
fn key_block(pem: &str) -> Option<PemBlock<'_>> {
    let mut rest = pem;
    loop {
        let begin = rest.find("-----BEGIN ")?;
        let after = &rest[begin + "-----BEGIN ".len()..];
        let label_end = after.find("-----")?;
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = after.find(&end_marker)?;
        let block_end = begin + "-----BEGIN ".len() + end + end_marker.len();
        let text = &rest[begin..block_end];
        if label != "EC PARAMETERS" {
            return Some(PemBlock {
                label,
                text,
                encrypted: text.contains("ENCRYPTED"),
            });
        }
        rest = &rest[block_end..];
    }
}

/// The one RSA size CloudFront takes for a public key ("Upload a public key to CloudFront":
/// "RSA 2048 or ECDSA prime256v1"): a larger key signs cookies no distribution can verify.
const RSA_BITS: usize = 2048;

impl PrivateKey {
    /// Load a private key from PEM: PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or
    /// PKCS#8 (`PRIVATE KEY`, RSA or EC P-256). The type comes from the PEM itself.
    pub fn from_pem(pem: &str) -> Result<PrivateKey, SignError> {
        let bad = |reason: String| SignError::BadPrivateKey(reason);
        let block = key_block(pem).ok_or_else(|| bad("no PEM block found".into()))?;
        if block.encrypted {
            return Err(bad(
                "encrypted keys are not supported; decrypt it first (openssl pkcs8 -nocrypt)"
                    .into(),
            ));
        }
        match block.label {
            "RSA PRIVATE KEY" => der_of(&block)
                .map_err(|e| bad(format!("not a valid PKCS#1 RSA key ({e})")))
                .and_then(|der| PrivateKey::from_pkcs1_der(der.as_bytes())),
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(block.text)
                .map_err(|e| {
                    bad(format!(
                        "not a valid SEC1 P-256 key ({e}); CloudFront takes P-256 only"
                    ))
                })
                .map(|k| PrivateKey {
                    inner: PrivateInner::EcdsaP256(k.into()),
                }),
            "PRIVATE KEY" => PrivateKey::from_pkcs8(&block),
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(bad(
                "this is a public key; signing needs the private key".into(),
            )),
            other => Err(bad(format!("unsupported PEM type {other:?}"))),
        }
    }

    /// PKCS#8 (RFC 5208): RSA (rsaEncryption, whose `privateKey` is a PKCS#1 RSAPrivateKey)
    /// or EC P-256.
    fn from_pkcs8(block: &PemBlock<'_>) -> Result<PrivateKey, SignError> {
        let bad = |reason: String| SignError::BadPrivateKey(reason);
        let der = der_of(block).map_err(|e| bad(format!("not a valid PKCS#8 key ({e})")))?;
        let info = rsa::pkcs8::PrivateKeyInfo::from_der(der.as_bytes())
            .map_err(|e| bad(format!("not a valid PKCS#8 key ({e})")))?;
        if info.algorithm.oid == rsa::pkcs1::ALGORITHM_OID {
            return PrivateKey::from_pkcs1_der(info.private_key);
        }
        match p256::SecretKey::from_pkcs8_pem(block.text) {
            Ok(key) => Ok(PrivateKey {
                inner: PrivateInner::EcdsaP256(key.into()),
            }),
            Err(_) => Err(bad("PKCS#8 key is neither RSA nor EC P-256".into())),
        }
    }

    /// An RSA key from its PKCS#1 DER: aws-lc holds (and checks) the private key; the public
    /// half, for verifiers, is read from the same structure with no private-key arithmetic.
    fn from_pkcs1_der(der: &[u8]) -> Result<PrivateKey, SignError> {
        let bad = |e: String| SignError::BadPrivateKey(format!("not a valid PKCS#1 RSA key ({e})"));
        let signer = RsaSigner::from_pkcs1_der(der).map_err(bad)?;
        let bits = signer.bits() as usize;
        if bits != RSA_BITS {
            return Err(SignError::BadPrivateKey(format!(
                "RSA key has {bits} bits; CloudFront takes RSA-2048 or ECDSA P-256 keys only, \
                 so cookies signed with it would never be accepted"
            )));
        }
        let fields = rsa::pkcs1::RsaPrivateKey::from_der(der).map_err(|e| bad(e.to_string()))?;
        let public = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(fields.modulus.as_bytes()),
            rsa::BigUint::from_bytes_be(fields.public_exponent.as_bytes()),
        )
        .map_err(|e| bad(e.to_string()))?;
        Ok(PrivateKey {
            inner: PrivateInner::Rsa(Box::new(RsaSigningKeys { signer, public })),
        })
    }

    /// "RSA-2048" or "ECDSA-P256".
    pub fn kind(&self) -> String {
        match &self.inner {
            PrivateInner::Rsa(rsa) => format!("RSA-{}", rsa.public.n().bits()),
            PrivateInner::EcdsaP256(_) => "ECDSA-P256".to_owned(),
        }
    }

    /// Sign the raw policy bytes.
    pub fn sign(&self, message: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>, SignError> {
        let failed = |e: p256::ecdsa::Error| SignError::Signing(e.to_string());
        match (&self.inner, hash) {
            // aws-lc: constant-time and blinded; see the module comment on RUSTSEC-2023-0071.
            (PrivateInner::Rsa(rsa), HashAlgorithm::Sha1) => rsa
                .signer
                .sign(message, RsaHash::Sha1)
                .map_err(SignError::Signing),
            (PrivateInner::Rsa(rsa), HashAlgorithm::Sha256) => rsa
                .signer
                .sign(message, RsaHash::Sha256)
                .map_err(SignError::Signing),
            // RFC 6979 deterministic nonces: the same policy always gets the same signature.
            (PrivateInner::EcdsaP256(key), HashAlgorithm::Sha256) => {
                let signature: p256::ecdsa::Signature = key.try_sign(message).map_err(failed)?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            (PrivateInner::EcdsaP256(key), HashAlgorithm::Sha1) => {
                let signature: p256::ecdsa::Signature =
                    key.sign_prehash(&Sha1::digest(message)).map_err(failed)?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match &self.inner {
            PrivateInner::Rsa(rsa) => PublicKey::from_rsa(rsa.public.clone()),
            PrivateInner::EcdsaP256(key) => PublicKey {
                inner: PublicInner::EcdsaP256(*key.verifying_key()),
            },
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.kind())
    }
}

/// A verification key.
#[derive(Clone)]
pub struct PublicKey {
    inner: PublicInner,
}

#[derive(Clone)]
enum PublicInner {
    Rsa {
        sha1: rsa::pkcs1v15::VerifyingKey<Sha1>,
        sha256: rsa::pkcs1v15::VerifyingKey<Sha256>,
        bits: usize,
    },
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Load a public key from PEM: SPKI (`PUBLIC KEY`, RSA or EC P-256, what CloudFront's
    /// console takes) or PKCS#1 (`RSA PUBLIC KEY`). A private-key PEM also works: its public
    /// half is used.
    pub fn from_pem(pem: &str) -> Result<PublicKey, SignError> {
        let bad = |reason: String| SignError::BadPublicKey(reason);
        let block = key_block(pem).ok_or_else(|| bad("no PEM block found".into()))?;
        match block.label {
            "PUBLIC KEY" => {
                if let Ok(key) = rsa::RsaPublicKey::from_public_key_pem(block.text) {
                    Ok(PublicKey::from_rsa(key))
                } else if let Ok(key) = p256::PublicKey::from_public_key_pem(block.text) {
                    Ok(PublicKey {
                        inner: PublicInner::EcdsaP256(key.into()),
                    })
                } else {
                    Err(bad("SPKI key is neither RSA nor EC P-256".into()))
                }
            }
            "RSA PUBLIC KEY" => rsa::RsaPublicKey::from_pkcs1_pem(block.text)
                .map(PublicKey::from_rsa)
                .map_err(|e| bad(format!("not a valid PKCS#1 RSA public key ({e})"))),
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" => PrivateKey::from_pem(pem)
                .map(|k| k.public_key())
                .map_err(|e| bad(e.to_string())),
            other => Err(bad(format!("unsupported PEM type {other:?}"))),
        }
    }

    fn from_rsa(key: rsa::RsaPublicKey) -> PublicKey {
        let bits = key.n().bits();
        PublicKey {
            inner: PublicInner::Rsa {
                sha1: rsa::pkcs1v15::VerifyingKey::new(key.clone()),
                sha256: rsa::pkcs1v15::VerifyingKey::new(key),
                bits,
            },
        }
    }

    /// "RSA-2048" or "ECDSA-P256".
    pub fn kind(&self) -> String {
        match &self.inner {
            PublicInner::Rsa { bits, .. } => format!("RSA-{bits}"),
            PublicInner::EcdsaP256(_) => "ECDSA-P256".to_owned(),
        }
    }

    /// Whether `signature` is this key's signature of `message` with `hash`.
    pub fn verify(&self, message: &[u8], signature: &[u8], hash: HashAlgorithm) -> bool {
        match &self.inner {
            PublicInner::Rsa { sha1, sha256, .. } => {
                let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
                    return false;
                };
                match hash {
                    HashAlgorithm::Sha1 => {
                        rsa::signature::Verifier::verify(sha1, message, &signature).is_ok()
                    }
                    HashAlgorithm::Sha256 => {
                        rsa::signature::Verifier::verify(sha256, message, &signature).is_ok()
                    }
                }
            }
            PublicInner::EcdsaP256(key) => {
                let Ok(signature) = p256::ecdsa::Signature::from_der(signature) else {
                    return false;
                };
                match hash {
                    HashAlgorithm::Sha256 => key.verify(message, &signature).is_ok(),
                    HashAlgorithm::Sha1 => key
                        .verify_prehash(&Sha1::digest(message), &signature)
                        .is_ok(),
                }
            }
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.kind())
    }
}

/// CloudFront key-pair / public-key ids are upper-case letters and digits (`K2JCJMDEHXQW5F`,
/// legacy `APKA…`); restricting to ASCII alphanumerics keeps them safe in cookies and URLs.
fn check_key_pair_id(id: &str) -> Result<(), SignError> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SignError::BadKeyPairId(id.to_owned()));
    }
    Ok(())
}

/// Private keys by key-pair id, one of them active for signing. Rotation: add the new key,
/// publish its public key to the key group, make it active, and drop the old one once every
/// cookie signed with it has expired.
#[derive(Debug)]
pub struct KeySet {
    active: String,
    keys: BTreeMap<String, PrivateKey>,
}

impl KeySet {
    /// A set holding one key, which is active.
    pub fn new(key_pair_id: &str, key: PrivateKey) -> Result<KeySet, SignError> {
        check_key_pair_id(key_pair_id)?;
        let mut keys = BTreeMap::new();
        keys.insert(key_pair_id.to_owned(), key);
        Ok(KeySet {
            active: key_pair_id.to_owned(),
            keys,
        })
    }

    /// Add (or replace) a key without making it active.
    pub fn insert(&mut self, key_pair_id: &str, key: PrivateKey) -> Result<(), SignError> {
        check_key_pair_id(key_pair_id)?;
        self.keys.insert(key_pair_id.to_owned(), key);
        Ok(())
    }

    /// Sign with this key from now on.
    pub fn set_active(&mut self, key_pair_id: &str) -> Result<(), SignError> {
        if !self.keys.contains_key(key_pair_id) {
            return Err(SignError::UnknownKeyPairId(key_pair_id.to_owned()));
        }
        self.active = key_pair_id.to_owned();
        Ok(())
    }

    /// The active key-pair id and its key.
    pub fn active(&self) -> (&str, &PrivateKey) {
        // `active` is always a key of `keys`: set by `new` and checked by `set_active`.
        let key = &self.keys[&self.active];
        (&self.active, key)
    }

    /// Public halves of every key in the set, for a [`Verifier`](super::Verifier).
    pub fn public_keys(&self) -> PublicKeySet {
        PublicKeySet {
            keys: self
                .keys
                .iter()
                .map(|(id, k)| (id.clone(), k.public_key()))
                .collect(),
        }
    }
}

/// Public keys by key-pair id: what a verifier (or CloudFront's key group) trusts.
#[derive(Debug, Clone, Default)]
pub struct PublicKeySet {
    keys: BTreeMap<String, PublicKey>,
}

impl PublicKeySet {
    pub fn new() -> PublicKeySet {
        PublicKeySet::default()
    }

    pub fn insert(&mut self, key_pair_id: &str, key: PublicKey) -> Result<(), SignError> {
        check_key_pair_id(key_pair_id)?;
        self.keys.insert(key_pair_id.to_owned(), key);
        Ok(())
    }

    pub fn get(&self, key_pair_id: &str) -> Option<&PublicKey> {
        self.keys.get(key_pair_id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests;
