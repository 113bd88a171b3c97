//! The aws-lc RSA path against the `rsa` crate that signed before: PKCS#1 v1.5 is
//! deterministic, so both must produce the same bytes, and the verifier must accept them. And
//! malformed keys: errors, never panics.

use super::*;
use base64::Engine as _;
use rsa::pkcs1::der::Encode;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::signature::SignatureEncoding;
use std::sync::Arc;

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("fixture key")
}

/// Messages of many lengths and contents, the same on every run.
fn messages() -> Vec<Vec<u8>> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = vec![
        Vec::new(),
        br#"{"Statement":[{"Resource":"https://cdn.example.com/hls/a.hls/*","Condition":{"DateLessThan":{"AWS:EpochTime":1900000000}}}]}"#.to_vec(),
    ];
    for len in [1usize, 55, 56, 63, 64, 65, 300, 4096] {
        let bytes = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        out.push(bytes);
    }
    out
}

/// What the `rsa` crate (the old signer) produces for the same key, message and hash.
fn old_signature(pem: &str, message: &[u8], hash: HashAlgorithm) -> Vec<u8> {
    let key = if pem.contains("BEGIN RSA PRIVATE KEY") {
        <rsa::RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_pem(pem)
    } else {
        Ok(rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("PKCS#8 fixture"))
    }
    .expect("fixture");
    match hash {
        HashAlgorithm::Sha1 => rsa::pkcs1v15::SigningKey::<Sha1>::new(key)
            .sign(message)
            .to_vec(),
        HashAlgorithm::Sha256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
            .sign(message)
            .to_vec(),
    }
}

#[test]
fn aws_lc_rsa_signatures_equal_the_rsa_crate_and_verify() {
    for file in [
        "rsa2048.pkcs1.pem",
        "rsa2048.pkcs8.pem",
        "rsa2048-second.pkcs1.pem",
    ] {
        let pem = fixture(file);
        let key = PrivateKey::from_pem(&pem).expect("fixture loads");
        assert_eq!(key.kind(), "RSA-2048");
        let public = key.public_key();
        for message in messages() {
            for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
                let ours = key.sign(&message, hash).expect("sign");
                assert_eq!(ours.len(), 256, "{file} {hash:?}");
                assert_eq!(
                    ours,
                    old_signature(&pem, &message, hash),
                    "{file} {hash:?} {}",
                    message.len()
                );
                assert!(public.verify(&message, &ours, hash), "{file} {hash:?}");
                let other = match hash {
                    HashAlgorithm::Sha1 => HashAlgorithm::Sha256,
                    HashAlgorithm::Sha256 => HashAlgorithm::Sha1,
                };
                assert!(
                    !public.verify(&message, &ours, other),
                    "{file} {hash:?} under {other:?}"
                );
            }
        }
    }
}

#[test]
fn public_half_matches_the_public_key_file() {
    let message = b"policy";
    let key = PrivateKey::from_pem(&fixture("rsa2048.pkcs1.pem")).expect("fixture");
    let published = PublicKey::from_pem(&fixture("rsa2048.pub.pem")).expect("fixture");
    let signature = key.sign(message, HashAlgorithm::Sha1).expect("sign");
    assert!(published.verify(message, &signature, HashAlgorithm::Sha1));
    let second = PublicKey::from_pem(&fixture("rsa2048-second.pub.pem")).expect("fixture");
    assert!(!second.verify(message, &signature, HashAlgorithm::Sha1));
}

#[test]
fn one_key_signs_from_many_threads() {
    let key = Arc::new(PrivateKey::from_pem(&fixture("rsa2048.pkcs1.pem")).expect("fixture"));
    let expected = key.sign(b"same policy", HashAlgorithm::Sha1).expect("sign");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let key = Arc::clone(&key);
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| key.sign(b"same policy", HashAlgorithm::Sha1).expect("sign"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        for signature in thread.join().expect("thread") {
            assert_eq!(signature, expected);
        }
    }
}

fn pkcs1_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn fixture_der() -> Vec<u8> {
    let (_, der) = SecretDocument::from_pem(&fixture("rsa2048.pkcs1.pem")).expect("fixture");
    der.as_bytes().to_vec()
}

#[test]
fn every_corrupted_or_truncated_key_is_an_error_or_a_working_key() {
    let der = fixture_der();
    let message = b"policy";
    let mut refused = 0;
    let mut candidates: Vec<Vec<u8>> = (0..der.len()).map(|n| der[..n].to_vec()).collect();
    for i in 0..der.len() {
        let mut flipped = der.clone();
        flipped[i] ^= 0x41;
        candidates.push(flipped);
    }
    for candidate in &candidates {
        match PrivateKey::from_pem(&pkcs1_pem(candidate)) {
            Err(SignError::BadPrivateKey(_)) => refused += 1,
            Err(other) => panic!("unexpected error kind {other:?}"),
            // Only a change that leaves the key consistent can load (e.g. in the DER's
            // length octets it cannot); whatever loads must sign verifiably.
            Ok(key) => {
                let signature = key.sign(message, HashAlgorithm::Sha1).expect("sign");
                assert!(key
                    .public_key()
                    .verify(message, &signature, HashAlgorithm::Sha1));
            }
        }
    }
    // Every truncation and every flipped byte of the key numbers is caught (RSA_check_key).
    assert!(
        refused >= candidates.len() - 8,
        "{refused} of {}",
        candidates.len()
    );
}

#[test]
fn inconsistent_and_wrong_size_keys_are_refused() {
    let first = fixture_der();
    let (_, second) =
        SecretDocument::from_pem(&fixture("rsa2048-second.pkcs1.pem")).expect("fixture");
    let a = rsa::pkcs1::RsaPrivateKey::from_der(&first).expect("fixture");
    let b = rsa::pkcs1::RsaPrivateKey::from_der(second.as_bytes()).expect("fixture");
    // The first key's modulus with the second key's private exponent.
    let mixed = rsa::pkcs1::RsaPrivateKey {
        private_exponent: b.private_exponent,
        ..a
    };
    let err = PrivateKey::from_pem(&pkcs1_pem(&mixed.to_der().expect("encode")))
        .expect_err("inconsistent key");
    assert!(err.to_string().contains("PKCS#1"), "{err}");

    let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).expect("generate");
    let pem = small.to_pkcs1_pem(LineEnding::LF).expect("encode");
    let err = PrivateKey::from_pem(&pem).expect_err("1024-bit key");
    assert!(err.to_string().contains("has 1024 bits"), "{err}");

    // A PKCS#8 wrapper around garbage, and a PKCS#8 RSA key whose inner key is garbage.
    for text in [
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
        "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n".to_owned(),
        "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----\n".to_owned(),
    ] {
        assert!(
            matches!(
                PrivateKey::from_pem(&text),
                Err(SignError::BadPrivateKey(_))
            ),
            "{text}"
        );
    }
}
