//! Byte-for-byte agreement with AWS's own signers: botocore's `CloudFrontSigner` (PyPI, with
//! `cryptography` doing the RSA/ECDSA) and `@aws-sdk/cloudfront-signer` (npm). Our side runs
//! through the real `hlspipe` binary. The reference signers are installed on first use by
//! tests/sign/install.sh (idempotent), so these tests never skip.

use crate::support::{self, key_file, repo_root};
use hlspipe::delivery::sign::{decode_cloudfront_base64, PublicKey, PublicKeySet, Verifier};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Once;

const KEY_PAIR_ID: &str = "K2CROSSCHECK";

fn install_reference_signers() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let status = Command::new("sh")
            .arg(repo_root().join("tests/sign/install.sh"))
            .status()
            .expect("run tests/sign/install.sh");
        assert!(status.success(), "tests/sign/install.sh failed: {status}");
    });
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8 output")
        .trim_end()
        .to_owned()
}

fn botocore(args: &[&str]) -> String {
    install_reference_signers();
    run(
        Command::new(repo_root().join("tests/sign/.venv/bin/python3"))
            .arg(repo_root().join("tests/sign/botocore_sign.py"))
            .args(args),
    )
}

fn awssdk(args: &[&str]) -> String {
    install_reference_signers();
    run(Command::new("node")
        .arg(repo_root().join("tests/sign/awssdk_sign.mjs"))
        .args(args))
}

fn hlspipe(args: &[&str]) -> String {
    run(support::hlspipe().args(args))
}

/// Query parameters of a signed URL, by name.
fn query_params(url: &str) -> BTreeMap<String, String> {
    let (_, query) = url.split_once('?').expect("a query string");
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn json_str(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} missing in {value}"))
        .to_owned()
}

const POLICIES: [&str; 3] = [
    r#"{"Statement":[{"Resource":"https://cdn.example.com/hls/shows/ep1/*","Condition":{"DateLessThan":{"AWS:EpochTime":1900000000}}}]}"#,
    r#"{"Statement":[{"Resource":"https://cdn.example.com/hls/shows/ep1/*","Condition":{"DateLessThan":{"AWS:EpochTime":1900000000},"IpAddress":{"AWS:SourceIp":"192.0.2.0/24"},"DateGreaterThan":{"AWS:EpochTime":1800000000}}}]}"#,
    r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/hls/s%20p/ep?/*.m4s","Condition":{"DateLessThan":{"AWS:EpochTime":4102444800}}}]}"#,
];

/// The same policy with whitespace added between every token, as a hand-written policy file
/// would have it (key order kept; strings untouched, since whitespace inside one is part of
/// the resource). `hlspipe sign-cookies --policy` must remove all of it again.
fn pretty(policy: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    for c in policy.chars() {
        match (in_string, c) {
            (false, '{') => out.push_str("{\n    "),
            (false, ',') => out.push_str(",\n  "),
            (false, ':') => out.push_str(" : "),
            (false, '}') => out.push_str("\n}"),
            _ => out.push(c),
        }
        if c == '"' {
            in_string = !in_string;
        }
    }
    out + "\r\n"
}

#[test]
fn rsa_cookies_are_byte_identical_to_botocore_and_aws_sdk() {
    let dir = tempfile::tempdir().expect("tempdir");
    for key_name in ["rsa2048.pkcs1.pem", "rsa2048.pkcs8.pem"] {
        let key_path = key_file(key_name);
        let key_path = key_path.as_str();
        for hash in ["sha1", "sha256"] {
            for (i, policy) in POLICIES.iter().enumerate() {
                let compact = dir.path().join(format!("compact{i}.json"));
                std::fs::write(&compact, policy).expect("write policy");
                let spaced = dir.path().join(format!("pretty{i}.json"));
                std::fs::write(&spaced, pretty(policy)).expect("write policy");
                let (compact, spaced) = (compact.to_str().unwrap(), spaced.to_str().unwrap());
                let context = format!("{key_name} {hash} policy {i}");

                let ours: Value = serde_json::from_str(&hlspipe(&[
                    "sign-cookies",
                    "--policy",
                    spaced,
                    "--key-pair-id",
                    KEY_PAIR_ID,
                    "--private-key",
                    key_path,
                    "--hash",
                    hash,
                    "--format",
                    "json",
                ]))
                .expect("our JSON");
                let boto = query_params(&botocore(&[
                    "policy-url",
                    key_path,
                    KEY_PAIR_ID,
                    compact,
                    "https://cdn.example.com/x",
                    hash,
                ]));
                let sdk: Value = serde_json::from_str(&awssdk(&[
                    "cookies",
                    key_path,
                    KEY_PAIR_ID,
                    compact,
                    hash,
                ]))
                .expect("SDK JSON");

                let our_policy = json_str(&ours, "CloudFront-Policy");
                let our_signature = json_str(&ours, "CloudFront-Signature");
                assert_eq!(
                    decode_cloudfront_base64(&our_policy).unwrap(),
                    policy.as_bytes(),
                    "{context}"
                );
                assert_eq!(our_policy, boto["Policy"], "{context}: policy vs botocore");
                assert_eq!(
                    our_signature, boto["Signature"],
                    "{context}: signature vs botocore"
                );
                assert_eq!(
                    our_policy,
                    json_str(&sdk, "CloudFront-Policy"),
                    "{context}: policy vs SDK"
                );
                assert_eq!(
                    our_signature,
                    json_str(&sdk, "CloudFront-Signature"),
                    "{context}: signature vs SDK"
                );
                assert_eq!(json_str(&ours, "CloudFront-Key-Pair-Id"), KEY_PAIR_ID);
                if hash == "sha256" {
                    assert_eq!(json_str(&ours, "CloudFront-Hash-Algorithm"), "SHA256");
                    assert_eq!(json_str(&sdk, "CloudFront-Hash-Algorithm"), "SHA256");
                } else {
                    assert!(ours.get("CloudFront-Hash-Algorithm").is_none(), "{context}");
                }
            }
        }
    }
}

#[test]
fn built_policies_equal_botocores_build_policy() {
    let key_path = key_file("rsa2048.pkcs1.pem");
    let key_path = key_path.as_str();
    let cases: [(&[&str], [&str; 4]); 3] = [
        (
            &[],
            [
                "https://cdn.example.com/hls/shows/ep1/*",
                "1900000000",
                "-",
                "-",
            ],
        ),
        (
            &["--ip", "192.0.2.7"],
            [
                "https://cdn.example.com/hls/shows/ep1/*",
                "1900000000",
                "192.0.2.7",
                "-",
            ],
        ),
        (
            &["--ip", "198.51.100.0/24", "--not-before", "1800000000"],
            [
                "https://cdn.example.com/hls/shows/ep1/*",
                "1900000000",
                "198.51.100.0/24",
                "1800000000",
            ],
        ),
    ];
    for (extra, boto_args) in cases {
        let mut args = vec![
            "sign-cookies",
            "--prefix-url",
            "https://cdn.example.com/hls/shows/ep1",
            "--expires-at",
            "1900000000",
            "--key-pair-id",
            KEY_PAIR_ID,
            "--private-key",
            key_path,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let ours: Value = serde_json::from_str(&hlspipe(&args)).expect("our JSON");
        let our_policy = decode_cloudfront_base64(&json_str(&ours, "CloudFront-Policy")).unwrap();
        let mut boto = vec!["build-policy"];
        boto.extend_from_slice(&boto_args);
        assert_eq!(
            String::from_utf8(our_policy).unwrap(),
            botocore(&boto),
            "{extra:?}"
        );
    }
}

#[test]
fn canned_signed_urls_equal_botocores_and_the_sdks_signature() {
    let key_path = key_file("rsa2048.pkcs8.pem");
    let key_path = key_path.as_str();
    for url in [
        "https://cdn.example.com/hls/shows/ep1/master.m3u8",
        "https://cdn.example.com/hls/a.m3u8?v=2&lang=en",
    ] {
        for hash in ["sha1", "sha256"] {
            let ours = hlspipe(&[
                "sign-url",
                url,
                "--key-pair-id",
                KEY_PAIR_ID,
                "--private-key",
                key_path,
                "--expires-at",
                "1900000000",
                "--hash",
                hash,
            ]);
            let boto = botocore(&["canned-url", key_path, KEY_PAIR_ID, url, "1900000000", hash]);
            // botocore knows nothing of Hash-Algorithm; everything before it is the same bytes.
            let expected = if hash == "sha256" {
                format!("{boto}&Hash-Algorithm=SHA256")
            } else {
                boto
            };
            assert_eq!(ours, expected, "{url} {hash}");

            let sdk = query_params(&awssdk(&[
                "canned-url",
                key_path,
                KEY_PAIR_ID,
                url,
                "1900000000",
                hash,
            ]));
            let ours = query_params(&ours);
            for name in ["Expires", "Signature", "Key-Pair-Id"] {
                assert_eq!(ours[name], sdk[name], "{url} {hash} {name} vs SDK");
            }
        }
    }
}

#[test]
fn ecdsa_signatures_from_botocore_and_the_sdk_verify_and_policies_match() {
    // ECDSA signatures are randomised in OpenSSL (which both references use), so they cannot be
    // compared as bytes: the policy bytes must match and each side must accept the other's
    // signatures. Several rounds so that high-S signatures come up too.
    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = key_file("ec-p256.pkcs8.pem");
    let key_path = key_path.as_str();
    let mut keys = PublicKeySet::new();
    keys.insert(
        KEY_PAIR_ID,
        PublicKey::from_pem(&std::fs::read_to_string(key_file("ec-p256.pub.pem")).unwrap())
            .unwrap(),
    )
    .unwrap();
    let verifier = Verifier::new(keys);
    let policy = POLICIES[0];
    let policy_file = dir.path().join("policy.json");
    std::fs::write(&policy_file, policy).unwrap();
    let policy_file = policy_file.to_str().unwrap();
    let url = "https://cdn.example.com/hls/shows/ep1/v0/seg00001.m4s";
    let ip = "192.0.2.1".parse().unwrap();

    for hash in ["sha256", "sha1"] {
        let ours: Value = serde_json::from_str(&hlspipe(&[
            "sign-cookies",
            "--policy",
            policy_file,
            "--key-pair-id",
            KEY_PAIR_ID,
            "--private-key",
            key_path,
            "--hash",
            hash,
            "--format",
            "json",
        ]))
        .unwrap();
        for round in 0..4 {
            let sdk: Value = serde_json::from_str(&awssdk(&[
                "cookies",
                key_path,
                KEY_PAIR_ID,
                policy_file,
                hash,
            ]))
            .unwrap();
            assert_eq!(
                json_str(&sdk, "CloudFront-Policy"),
                json_str(&ours, "CloudFront-Policy")
            );
            let mut cookie = format!(
                "CloudFront-Policy={}; CloudFront-Signature={}; CloudFront-Key-Pair-Id={KEY_PAIR_ID}",
                json_str(&sdk, "CloudFront-Policy"),
                json_str(&sdk, "CloudFront-Signature")
            );
            if hash == "sha256" {
                cookie.push_str("; CloudFront-Hash-Algorithm=SHA256");
            }
            let decision = verifier.verify_request(url, Some(&cookie), ip, 1_850_000_000);
            assert!(decision.is_allow(), "SDK {hash} round {round}: {decision}");

            let boto = botocore(&["policy-url", key_path, KEY_PAIR_ID, policy_file, url, hash]);
            assert_eq!(
                query_params(&boto)["Policy"],
                json_str(&ours, "CloudFront-Policy")
            );
            let signed = if hash == "sha256" {
                format!("{boto}&Hash-Algorithm=SHA256")
            } else {
                boto
            };
            let decision = verifier.verify_request(&signed, None, ip, 1_850_000_000);
            assert!(
                decision.is_allow(),
                "botocore {hash} round {round}: {decision}"
            );
        }
    }
}

/// DESIGN.md "Titles": a title named as people name files is signed over its encoded bundle
/// (`…/My%20Trip/…%F0%9F%8E%AC.hls/*`). Our policy is the one botocore builds for that
/// resource, its RSA signature is byte-identical to botocore's and the SDK's, and the
/// CloudFront-style check accepts the SDK's cookies on the title's encoded URLs only: not on
/// the decoded spelling (CloudFront compares bytes as sent), nor on a title nested below it.
#[test]
fn a_title_with_spaces_symbols_and_emoji_signs_and_verifies_like_cloudfront() {
    use hlspipe::title::Title;
    let title = Title::new("My Trip/Day 1 – Beach + friends & 'fun' #1 100% Café 🎬?*").unwrap();
    let prefix = format!("https://cdn.example.com/{}", title.url_folder("hls/"));
    let resource = format!("{prefix}*");
    assert!(
        !resource[..resource.len() - 1].contains(['*', '?', ' ']),
        "{resource}"
    );
    let key_path = key_file("rsa2048.pkcs1.pem");
    let key_path = key_path.as_str();

    let ours: Value = serde_json::from_str(&hlspipe(&[
        "sign-cookies",
        "--prefix-url",
        &prefix,
        "--expires-at",
        "1900000000",
        "--key-pair-id",
        KEY_PAIR_ID,
        "--private-key",
        key_path,
        "--format",
        "json",
    ]))
    .expect("our JSON");
    let policy =
        String::from_utf8(decode_cloudfront_base64(&json_str(&ours, "CloudFront-Policy")).unwrap())
            .unwrap();
    assert_eq!(
        policy,
        botocore(&["build-policy", &resource, "1900000000", "-", "-"])
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let policy_file = dir.path().join("policy.json");
    std::fs::write(&policy_file, &policy).unwrap();
    let policy_file = policy_file.to_str().unwrap();
    let sdk: Value = serde_json::from_str(&awssdk(&[
        "cookies",
        key_path,
        KEY_PAIR_ID,
        policy_file,
        "sha1",
    ]))
    .expect("SDK JSON");
    let boto = query_params(&botocore(&[
        "policy-url",
        key_path,
        KEY_PAIR_ID,
        policy_file,
        "https://cdn.example.com/x",
        "sha1",
    ]));
    let signature = json_str(&ours, "CloudFront-Signature");
    assert_eq!(signature, json_str(&sdk, "CloudFront-Signature"));
    assert_eq!(signature, boto["Signature"]);

    let mut keys = PublicKeySet::new();
    keys.insert(
        KEY_PAIR_ID,
        PublicKey::from_pem(&std::fs::read_to_string(key_file("rsa2048.pub.pem")).unwrap())
            .unwrap(),
    )
    .unwrap();
    let verifier = Verifier::new(keys);
    let cookie = format!(
        "CloudFront-Policy={}; CloudFront-Signature={}; CloudFront-Key-Pair-Id={KEY_PAIR_ID}",
        json_str(&sdk, "CloudFront-Policy"),
        json_str(&sdk, "CloudFront-Signature")
    );
    let ip = "192.0.2.1".parse().unwrap();
    let at = |url: &str| verifier.verify_request(url, Some(&cookie), ip, 1_850_000_000);
    let master = format!("{prefix}master.m3u8");
    assert!(at(&master).is_allow(), "{master}: {}", at(&master));
    assert!(at(&format!("{prefix}v/0123456789ab/video_240p/seg_00001.m4s")).is_allow());
    let decoded = format!(
        "https://cdn.example.com/{}master.m3u8",
        title.folder("hls/")
    );
    assert!(!at(&decoded).is_allow(), "{decoded}");
    let nested = Title::new(&format!("{title}/extra")).unwrap();
    let nested = format!(
        "https://cdn.example.com/{}master.m3u8",
        nested.url_folder("hls/")
    );
    assert!(!at(&nested).is_allow(), "{nested}");
}
