//! `openssl dgst -sha1|-sha256 -verify` accepts our signatures (RSA PKCS#1 v1.5 and DER ECDSA),
//! the check AWS's own "create a signature with OpenSSL" recipe relies on.

use crate::support::key_file;
use hlspipe::delivery::sign::{HashAlgorithm, PrivateKey, Signer};
use std::path::Path;
use std::process::Command;

fn openssl_verifies(public_pem: &str, hash: &str, message: &Path, signature: &Path) -> bool {
    let output = Command::new("openssl")
        .args([
            "dgst",
            &format!("-{hash}"),
            "-verify",
            public_pem,
            "-signature",
        ])
        .arg(signature)
        .arg(message)
        .output()
        .expect("run openssl (Debian package openssl)");
    String::from_utf8_lossy(&output.stdout).contains("Verified OK") && output.status.success()
}

#[test]
fn openssl_dgst_verify_accepts_our_signatures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = r#"{"Statement":[{"Resource":"https://cdn.example.com/hls/shows/ep1/*","Condition":{"DateLessThan":{"AWS:EpochTime":1900000000}}}]}"#;
    let message = dir.path().join("policy.json");
    std::fs::write(&message, policy).unwrap();
    let cases = [
        ("rsa2048.pkcs1.pem", "rsa2048.pub.pem"),
        ("rsa2048.pkcs8.pem", "rsa2048.pub.pem"),
        ("ec-p256.sec1.pem", "ec-p256.pub.pem"),
        ("ec-p256.pkcs8.pem", "ec-p256.pub.pem"),
    ];
    for (private_file, public_file) in cases {
        let key = PrivateKey::from_pem(&std::fs::read_to_string(key_file(private_file)).unwrap())
            .unwrap();
        for (hash, name) in [
            (HashAlgorithm::Sha1, "sha1"),
            (HashAlgorithm::Sha256, "sha256"),
        ] {
            let signature = key.sign(policy.as_bytes(), hash).unwrap();
            let signature_file = dir.path().join(format!("{private_file}.{name}.sig"));
            std::fs::write(&signature_file, &signature).unwrap();
            assert!(
                openssl_verifies(&key_file(public_file), name, &message, &signature_file),
                "{private_file} {name}"
            );
            // And openssl is not simply saying yes: the other hash must fail.
            let other = if name == "sha1" { "sha256" } else { "sha1" };
            assert!(
                !openssl_verifies(&key_file(public_file), other, &message, &signature_file),
                "{private_file} {other}"
            );
        }
    }
}

#[test]
fn openssl_accepts_the_signature_inside_our_cookies() {
    // The signature as it travels: CloudFront base64 in CloudFront-Signature, decoded back.
    let dir = tempfile::tempdir().expect("tempdir");
    let key =
        PrivateKey::from_pem(&std::fs::read_to_string(key_file("rsa2048.pkcs1.pem")).unwrap())
            .unwrap();
    let signer = Signer::new(
        hlspipe::delivery::sign::KeySet::new("K2OPENSSL", key).unwrap(),
        HashAlgorithm::Sha1,
    );
    let prefix =
        hlspipe::delivery::sign::TitlePrefix::parse("https://cdn.example.com/hls/shows/ep1/")
            .unwrap();
    let cookies = signer
        .signed_cookies(&hlspipe::delivery::sign::Policy::for_title(
            &prefix,
            1_900_000_000,
        ))
        .unwrap();
    let message = dir.path().join("policy");
    std::fs::write(
        &message,
        hlspipe::delivery::sign::decode_cloudfront_base64(&cookies.policy).unwrap(),
    )
    .unwrap();
    let signature = dir.path().join("signature");
    std::fs::write(
        &signature,
        hlspipe::delivery::sign::decode_cloudfront_base64(&cookies.signature).unwrap(),
    )
    .unwrap();
    assert!(openssl_verifies(
        &key_file("rsa2048.pub.pem"),
        "sha1",
        &message,
        &signature
    ));
}
