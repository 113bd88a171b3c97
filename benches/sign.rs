//! Signing and verification throughput, to set beside `openssl speed rsa2048 ecdsap256` on the
//! same machine, and the cost of issuing cookies / verifying requests once cached.
//!
//! Run: `cargo bench --bench sign` (plain harness: prints one line per measurement), or
//! `bash benches/sign.sh`, which also runs `openssl speed` and prints the ratios.
//!
//! The `rsa crate` lines sign with the pure-Rust `rsa` crate, blinded, as hlspipe did before
//! RSA moved to aws-lc (src/delivery/sign/awslc_rsa.rs): the before and after, side by side.

use hlspipe::delivery::sign::{
    HashAlgorithm, KeySet, Policy, PrivateKey, Signer, TitlePrefix, Verifier,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUN_FOR: Duration = Duration::from_secs(2);

/// This process's user + system CPU time in seconds, from /proc/self/stat (fields 14 and 15,
/// in USER_HZ = 100 ticks: 0.5 % of a 2 s run). `openssl speed` divides by CPU user time too
/// (its default; `-elapsed` for wall time), so on a shared machine the two stay comparable.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("stat number");
    (ticks(11) + ticks(12)) / 100.0
}

/// Calls `f` repeatedly for about RUN_FOR and returns (operations per CPU second, CPU µs per
/// operation, wall µs per operation).
fn measure(mut f: impl FnMut(u64)) -> (f64, f64, f64) {
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let mut n = 0u64;
    while start.elapsed() < RUN_FOR {
        for _ in 0..16 {
            f(n);
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    (n as f64 / cpu, cpu * 1e6 / n as f64, secs * 1e6 / n as f64)
}

fn report(name: &str, (per_sec, cpu_micros, wall_micros): (f64, f64, f64)) {
    println!("{name:<48} {per_sec:>12.0} /s {cpu_micros:>10.2} µs CPU {wall_micros:>10.2} µs wall");
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

    for file in ["rsa2048.pkcs1.pem", "rsa2048.pkcs8.pem", "ec-p256.sec1.pem"] {
        let pem = std::fs::read_to_string(format!(
            "{}/fixtures/keys/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture key");
        report(
            &format!("load   {file}"),
            measure(|_| {
                black_box(PrivateKey::from_pem(black_box(&pem)).expect("key loads"));
            }),
        );
    }

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
        ("ec-p256.sec1.pem", HashAlgorithm::Sha1, "ECDSA P-256 SHA-1"),
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

    old_rsa_crate(message);

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

/// The previous RSA signer: the `rsa` crate, blinded (`sign_with_rng`).
fn old_rsa_crate(message: &[u8]) {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::signature::RandomizedSigner;
    let pem = std::fs::read_to_string(format!(
        "{}/fixtures/keys/rsa2048.pkcs1.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture key");
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).expect("fixture key loads");
    let sha1 = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key.clone());
    let sha256 = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    let mut rng = rand_core::OsRng;
    report(
        "sign   RSA-2048 SHA-1 (rsa crate, before)",
        measure(|_| {
            black_box(sha1.sign_with_rng(&mut rng, black_box(message)));
        }),
    );
    report(
        "sign   RSA-2048 SHA-256 (rsa crate, before)",
        measure(|_| {
            black_box(sha256.sign_with_rng(&mut rng, black_box(message)));
        }),
    );
}
