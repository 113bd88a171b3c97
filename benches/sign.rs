//! Signing and verification throughput, to set beside `openssl speed rsa2048 ecdsap256` on the
//! same machine, and the cost of issuing cookies / verifying requests once cached.
//!
//! Run: `cargo bench --bench sign` (plain harness: prints one line per measurement).

use hlspipe::delivery::sign::{
    HashAlgorithm, KeySet, Policy, PrivateKey, Signer, TitlePrefix, Verifier,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUN_FOR: Duration = Duration::from_secs(2);

/// Calls `f` repeatedly for about RUN_FOR and returns (operations per second, µs per operation).
fn measure(mut f: impl FnMut(u64)) -> (f64, f64) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN_FOR {
        for _ in 0..16 {
            f(n);
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    (n as f64 / secs, secs * 1e6 / n as f64)
}

fn report(name: &str, (per_sec, micros): (f64, f64)) {
    println!("{name:<48} {per_sec:>12.0} /s {micros:>10.2} µs");
}

fn key(name: &str) -> PrivateKey {
    let pem = std::fs::read_to_string(format!(
        "{}/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture key");
    PrivateKey::from_pem(&pem).expect("fixture key loads")
}

fn main() {
    let prefix = TitlePrefix::parse("https://cdn.example.com/hls/shows/ep1/").expect("prefix");
    let policy = Policy::for_title(&prefix, 1_900_000_000).to_json();
    let message = policy.as_bytes();

    for (file, hash, label) in [
        ("rsa2048.pkcs1.pem", HashAlgorithm::Sha1, "RSA-2048 SHA-1"),
        (
            "rsa2048.pkcs1.pem",
            HashAlgorithm::Sha256,
            "RSA-2048 SHA-256",
        ),
        (
            "ec-p256.sec1.pem",
            HashAlgorithm::Sha256,
            "ECDSA P-256 SHA-256",
        ),
    ] {
        let private = key(file);
        let public = private.public_key();
        let signature = private.sign(message, hash).expect("sign");
        report(
            &format!("sign   {label} (uncached)"),
            measure(|_| {
                black_box(private.sign(black_box(message), hash).expect("sign"));
            }),
        );
        report(
            &format!("verify {label} (uncached)"),
            measure(|_| {
                assert!(public.verify(black_box(message), &signature, hash));
            }),
        );
    }

    let keys = KeySet::new("K2BENCH", key("rsa2048.pkcs1.pem")).expect("key set");
    let verifier = Verifier::new(keys.public_keys());
    let signer = Signer::new(keys, HashAlgorithm::Sha1);
    let title_policy = Policy::for_title(&prefix, 1_900_000_000);
    let cookies = signer.signed_cookies(&title_policy).expect("cookies");
    report(
        "signed_cookies, repeated (resource, expiry)",
        measure(|_| {
            black_box(
                signer
                    .signed_cookies(black_box(&title_policy))
                    .expect("cookies"),
            );
        }),
    );
    let header = cookies.cookie_header();
    let ip = "192.0.2.1".parse().expect("IP");
    report(
        "verify_request, cookies seen before",
        measure(|n| {
            let url = format!("https://cdn.example.com/hls/shows/ep1/v0/seg{n:05}.m4s");
            assert!(verifier
                .verify_request(&url, Some(&header), ip, 1_850_000_000)
                .is_allow());
        }),
    );
}
