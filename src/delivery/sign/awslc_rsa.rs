//! RSASSA-PKCS1-v1_5 signing through aws-lc (`aws-lc-sys`): the crate's only FFI to a C
//! library, kept to this one small safe wrapper.
//!
//! Why not the pure-Rust `rsa` crate, which signed before: its private-key operation is about a
//! tenth of OpenSSL's speed, and `rsa` 0.9 carries RUSTSEC-2023-0071 ("Marvin", a timing side
//! channel in its non-constant-time modular exponentiation; no fixed release), which the old
//! code could only mitigate by blinding. aws-lc's RSA is constant-time (fixed-window Montgomery
//! exponentiation on fixed-width numbers) and blinded as well, at OpenSSL's speed.
//!
//! Why `aws-lc-sys` and not `aws-lc-rs`: aws-lc-rs signs PKCS#1 v1.5 only with SHA-256/384/512
//! (SHA-1 is verify-only there), and CloudFront's default hash is SHA-1 (Developer Guide, "Use
//! SHA-256 and ECDSA": the signature is SHA-1 unless `Hash-Algorithm=SHA256` is given). So both
//! hashes go through `RSA_sign` here, one code path. Build-time cost: none; aws-lc-sys is
//! already compiled for rustls (`aws_lc_rs` feature), and the dependency is declared with the
//! same version and features, so Cargo builds the one copy it already had.
//!
//! Invariants that make the `unsafe` blocks below sound:
//! - `RsaSigner.rsa` is a non-null `RSA*` returned by `RSA_private_key_from_bytes`, owned by
//!   exactly one `RsaSigner` (never cloned, never handed out), and freed exactly once, in `Drop`.
//! - Every pointer passed to aws-lc points into a live Rust slice or local for the whole call,
//!   with the length passed alongside; aws-lc does not keep any of them after returning.
//! - `RSA_sign` writes at most `RSA_size(rsa)` bytes, and the output buffer has exactly that
//!   many; the length it reports is checked against the buffer before it is used.
//! - aws-lc's `rsa.h` documents `RSA_sign`, `RSA_size` and `RSA_bits` as non-mutating "for
//!   thread-safety purposes" (safe to call concurrently on one key); the only mutating call,
//!   `RSA_free`, runs in `Drop`, when no other reference exists. Hence `Send` and `Sync`.

use aws_lc_sys as ffi;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use std::ffi::CStr;
use std::os::raw::c_uint;
use std::ptr::NonNull;

/// The hash inside a PKCS#1 v1.5 signature (its DigestInfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RsaHash {
    Sha1,
    Sha256,
}

/// An RSA private key held by aws-lc, parsed once and used for every signature.
pub(super) struct RsaSigner {
    rsa: NonNull<ffi::RSA>,
}

// SAFETY: see the module comment: the key is never mutated after parsing except by `RSA_free`
// in `Drop`, and the functions called through `&self` are documented safe to call concurrently.
unsafe impl Send for RsaSigner {}
// SAFETY: as for `Send`.
unsafe impl Sync for RsaSigner {}

impl RsaSigner {
    /// Parse a DER `RSAPrivateKey` (PKCS#1, RFC 8017 § A.1.2). aws-lc also runs
    /// `RSA_check_key` on it, so inconsistent components (a d that does not invert e, primes
    /// whose product is not n) are refused here rather than producing bad signatures later.
    pub(super) fn from_pkcs1_der(der: &[u8]) -> Result<RsaSigner, String> {
        // SAFETY: `der` is a live slice of `der.len()` bytes; aws-lc only reads it during the
        // call and copies what it keeps. The result is a new RSA object (ours) or null.
        let raw = unsafe { ffi::RSA_private_key_from_bytes(der.as_ptr(), der.len()) };
        match NonNull::new(raw) {
            Some(rsa) => Ok(RsaSigner { rsa }),
            None => Err(take_error()),
        }
    }

    /// The modulus size in bits.
    pub(super) fn bits(&self) -> u32 {
        // SAFETY: `self.rsa` is a live key (module invariants); RSA_bits only reads it.
        unsafe { ffi::RSA_bits(self.rsa.as_ptr()) }
    }

    /// Sign `message` (hashed here with `hash`, so an unhashed input can never reach
    /// `RSA_sign`). PKCS#1 v1.5 is deterministic: the same key and message give the same bytes.
    pub(super) fn sign(&self, message: &[u8], hash: RsaHash) -> Result<Vec<u8>, String> {
        match hash {
            RsaHash::Sha1 => self.sign_digest(ffi::NID_sha1, &Sha1::digest(message)),
            RsaHash::Sha256 => self.sign_digest(ffi::NID_sha256, &Sha256::digest(message)),
        }
    }

    fn sign_digest(&self, nid: i32, digest: &[u8]) -> Result<Vec<u8>, String> {
        // SAFETY: `self.rsa` is a live key; RSA_size only reads it.
        let size = unsafe { ffi::RSA_size(self.rsa.as_ptr()) } as usize;
        let mut out = vec![0u8; size];
        let mut written: c_uint = 0;
        // SAFETY: `digest` is a live slice of `digest.len()` bytes and is the output of the hash
        // that `nid` names (`sign` pairs them); `out` has RSA_size(rsa) bytes, the most RSA_sign
        // writes; `written` is a live local; `self.rsa` is a live key, and RSA_sign is
        // non-mutating for thread-safety purposes (rsa.h), so a shared `&self` is enough.
        let ok = unsafe {
            ffi::RSA_sign(
                nid,
                digest.as_ptr(),
                digest.len(),
                out.as_mut_ptr(),
                &mut written,
                self.rsa.as_ptr(),
            )
        };
        if ok != 1 {
            return Err(take_error());
        }
        let written = written as usize;
        if written > out.len() {
            return Err(format!(
                "aws-lc reported {written} signature bytes for a {size}-byte key"
            ));
        }
        out.truncate(written);
        Ok(out)
    }
}

impl Drop for RsaSigner {
    fn drop(&mut self) {
        // SAFETY: `self.rsa` came from RSA_private_key_from_bytes, is owned by this value
        // alone, and is freed only here (once). RSA_free also zeroes the key's numbers.
        unsafe { ffi::RSA_free(self.rsa.as_ptr()) }
    }
}

/// The reason for the oldest error on this thread's aws-lc error queue, then an empty queue
/// (so a failure here never shows up later as someone else's error, e.g. in rustls).
fn take_error() -> String {
    // SAFETY: ERR_get_error pops from this thread's queue and needs no arguments.
    let code = unsafe { ffi::ERR_get_error() };
    // SAFETY: ERR_reason_error_string returns null or a pointer to a static NUL-terminated
    // string that lives as long as the program; we only read it.
    let reason = unsafe { ffi::ERR_reason_error_string(code) };
    let text = if reason.is_null() {
        format!("aws-lc error {code:#x}")
    } else {
        // SAFETY: non-null, static and NUL-terminated (above).
        unsafe { CStr::from_ptr(reason) }
            .to_string_lossy()
            .into_owned()
    };
    // SAFETY: clears this thread's queue; no arguments.
    unsafe { ffi::ERR_clear_error() };
    text
}
