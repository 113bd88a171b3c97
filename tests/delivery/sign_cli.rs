//! `hlspipe sign-cookies`, `sign-url` and `verify` as a script would use them: output formats,
//! exit codes (0 allow / 1 deny or failure / 2 usage), and keys never echoed.

use crate::support::{self, key_file};
use serde_json::Value;
use std::process::Output;

fn hlspipe(args: &[&str]) -> Output {
    support::hlspipe().args(args).output().expect("run hlspipe")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned()
}

const PREFIX: &str = "https://cdn.example.com/hls/shows/ep1/";

fn cookie_header_from_set_cookie(output: &Output) -> String {
    stdout(output)
        .lines()
        .map(|line| {
            let value = line.strip_prefix("Set-Cookie: ").expect("Set-Cookie lines");
            value.split(';').next().unwrap().to_owned()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn sign_cookies_json_has_the_cookie_names_and_expires() {
    let out = hlspipe(&[
        "sign-cookies",
        "--prefix-url",
        PREFIX,
        "--key-pair-id",
        "K2CLI",
        "--private-key",
        &key_file("ec-p256.pkcs8.pem"),
        "--expires-at",
        "1900000000",
        "--hash",
        "sha256",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "CloudFront-Hash-Algorithm",
            "CloudFront-Key-Pair-Id",
            "CloudFront-Policy",
            "CloudFront-Signature",
            "expires"
        ]
    );
    assert_eq!(json["expires"], 1_900_000_000);
    assert_eq!(json["CloudFront-Key-Pair-Id"], "K2CLI");
}

#[test]
fn sign_cookies_then_verify_allows_the_title_and_denies_the_sibling() {
    let out = hlspipe(&[
        "sign-cookies",
        "--prefix-url",
        PREFIX,
        "--key-pair-id",
        "K2CLI",
        "--private-key",
        &key_file("rsa2048.pkcs1.pem"),
        "--expires-in",
        "3600",
        "--ip",
        "192.0.2.0/24",
        "--domain",
        "example.com",
        "--same-site",
        "none",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in stdout(&out).lines() {
        assert!(
            line.ends_with("; Path=/; Domain=example.com; Secure; HttpOnly; SameSite=None"),
            "{line}"
        );
    }
    let cookie = cookie_header_from_set_cookie(&out);
    let public = format!("K2CLI={}", key_file("rsa2048.pub.pem"));
    let verify = |url: &str, ip: &str| {
        hlspipe(&[
            "verify",
            "--url",
            url,
            "--cookie",
            &cookie,
            "--public-key",
            &public,
            "--ip",
            ip,
        ])
    };

    let allowed = verify(
        "https://cdn.example.com/hls/shows/ep1/v0/seg00001.m4s",
        "192.0.2.10",
    );
    assert_eq!(
        (allowed.status.code(), stdout(&allowed)),
        (Some(0), "allow".to_owned())
    );

    let sibling = verify(
        "https://cdn.example.com/hls/shows/ep10/master.m3u8",
        "192.0.2.10",
    );
    assert_eq!(sibling.status.code(), Some(1));
    assert!(
        stdout(&sibling).starts_with("deny: the policy resource"),
        "{}",
        stdout(&sibling)
    );

    let wrong_ip = verify(
        "https://cdn.example.com/hls/shows/ep1/master.m3u8",
        "198.51.100.1",
    );
    assert_eq!(wrong_ip.status.code(), Some(1));
    assert!(
        stdout(&wrong_ip).starts_with("deny: source IP 198.51.100.1"),
        "{}",
        stdout(&wrong_ip)
    );
}

#[test]
fn sign_url_then_verify_with_rotated_keys_and_a_clock() {
    let url = "https://cdn.example.com/hls/shows/ep1/master.m3u8?lang=en";
    let out = hlspipe(&[
        "sign-url",
        url,
        "--key-pair-id",
        "K2NEW",
        "--private-key",
        &key_file("rsa2048-second.pkcs1.pem"),
        "--expires-at",
        "1900000000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = stdout(&out);
    assert!(
        signed.starts_with(&format!("{url}&Expires=1900000000&Signature=")),
        "{signed}"
    );
    let keys = [
        format!("K2OLD={}", key_file("rsa2048.pub.pem")),
        format!("K2NEW={}", key_file("rsa2048-second.pub.pem")),
    ];
    let verify = |now: &str| {
        hlspipe(&[
            "verify",
            "--url",
            &signed,
            "--public-key",
            &keys[0],
            "--public-key",
            &keys[1],
            "--now",
            now,
        ])
    };
    assert_eq!(verify("1899999999").status.code(), Some(0));
    let expired = verify("1900000000");
    assert_eq!(expired.status.code(), Some(1));
    assert_eq!(
        stdout(&expired),
        "deny: expired: DateLessThan 1900000000 is not after now (1900000000)"
    );

    let custom = hlspipe(&[
        "sign-url",
        "https://cdn.example.com/hls/shows/ep1/master.m3u8",
        "--key-pair-id",
        "K2NEW",
        "--private-key",
        &key_file("rsa2048-second.pkcs1.pem"),
        "--expires-in",
        "60",
        "--policy-prefix",
        PREFIX,
    ]);
    assert!(stdout(&custom).contains("?Policy="), "{}", stdout(&custom));
}

#[test]
fn key_problems_are_one_clear_error_and_never_echo_the_key() {
    let pem = std::fs::read_to_string(key_file("rsa2048.pkcs1.pem")).unwrap();
    let secret_line = pem.lines().nth(3).unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.pem");
    let mut lines: Vec<&str> = pem.lines().collect();
    lines.remove(4);
    std::fs::write(&broken, lines.join("\n")).unwrap();
    for private_key in [
        broken.to_str().unwrap(),
        "/nonexistent/key.pem",
        &key_file("rsa2048.pub.pem"),
    ] {
        let out = hlspipe(&[
            "sign-cookies",
            "--prefix-url",
            PREFIX,
            "--key-pair-id",
            "K2CLI",
            "--private-key",
            private_key,
            "--expires-in",
            "60",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{private_key}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("hlspipe: "), "{stderr}");
        assert!(
            !stderr.contains(&secret_line) && out.stdout.is_empty(),
            "leaked: {stderr}"
        );
    }
}

#[test]
fn bad_prefixes_fail_and_usage_errors_exit_2() {
    for prefix in [
        "https://cdn.example.com/hls/*",
        "https://cdn.example.com/hls/../x/",
        "ftp://cdn.example.com/x/",
    ] {
        let out = hlspipe(&[
            "sign-cookies",
            "--prefix-url",
            prefix,
            "--key-pair-id",
            "K2CLI",
            "--private-key",
            &key_file("rsa2048.pkcs1.pem"),
            "--expires-in",
            "60",
        ]);
        assert_eq!(out.status.code(), Some(1), "{prefix}");
    }
    let both = hlspipe(&[
        "sign-cookies",
        "--prefix-url",
        PREFIX,
        "--key-pair-id",
        "K2CLI",
        "--private-key",
        &key_file("rsa2048.pkcs1.pem"),
        "--expires-in",
        "60",
        "--expires-at",
        "1900000000",
    ]);
    assert_eq!(both.status.code(), Some(2));
    let neither = hlspipe(&[
        "sign-cookies",
        "--key-pair-id",
        "K2CLI",
        "--private-key",
        &key_file("rsa2048.pkcs1.pem"),
    ]);
    assert_eq!(neither.status.code(), Some(2));
}

/// Regression (reliability issue, defect 7): RSA keys larger than 2048 bits were accepted,
/// though CloudFront takes only RSA-2048 and ECDSA P-256 public keys, so every cookie signed
/// with one would be refused at the edge. `sign-cookies`, `sign-url` and `serve` refuse them.
#[test]
fn rsa_keys_other_than_2048_bits_are_refused_regression_rsa_3072_and_4096_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rsa3072.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key = key.to_str().unwrap();
    for args in [
        vec![
            "sign-cookies",
            "--prefix-url",
            PREFIX,
            "--expires-at",
            "1900000000",
        ],
        vec![
            "sign-url",
            "https://cdn.example.com/hls/shows/ep1.hls/master.m3u8",
            "--expires-at",
            "1900000000",
        ],
        vec![
            "serve",
            "--no-auth",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "file:///nonexistent",
        ],
    ] {
        let mut args = args.clone();
        args.extend(["--key-pair-id", "K2CLI", "--private-key", key]);
        let out = hlspipe(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted a 3072-bit key");
        assert!(
            stderr.contains("3072 bits") && stderr.contains("RSA-2048"),
            "{args:?}: {stderr}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

/// Regression (reliability issue, defect 9): `serve --no-auth --listen 0.0.0.0:PORT` started,
/// handing cookies to anyone on the network, and reported `http://0.0.0.0:…` as the CDN base
/// URL. Both are refused before anything listens.
#[test]
fn serve_refuses_no_auth_off_loopback_and_an_unspecified_cdn_base_regression_no_auth_on_0000() {
    let common = ["--key-pair-id", "K2CLI", "--store", "file:///nonexistent"];
    let key = key_file("rsa2048.pkcs1.pem");
    let run = |extra: &[&str]| {
        let mut args = vec!["serve", "--private-key", &key];
        args.extend(common);
        args.extend(extra);
        let out = hlspipe(&args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = run(&["--no-auth", "--listen", "0.0.0.0:0"]);
    assert!(
        !ok && stderr.contains("--no-auth") && stderr.contains("--token"),
        "{stderr}"
    );
    let (ok, stderr) = run(&[
        "--token",
        "a-token-of-16-chars-or-more",
        "--listen",
        "0.0.0.0:0",
    ]);
    assert!(!ok && stderr.contains("--cdn-base-url"), "{stderr}");
}

/// Signing an already-expired policy gave no warning.
#[test]
fn signing_an_already_expired_policy_gives_a_warning() {
    let key = key_file("rsa2048.pkcs1.pem");
    let base = ["--key-pair-id", "K2CLI", "--private-key", &key];
    let cookies = |expiry: &[&str]| {
        let mut args = vec!["sign-cookies", "--prefix-url", PREFIX];
        args.extend(base);
        args.extend(expiry);
        hlspipe(&args)
    };
    let url = |expiry: &[&str]| {
        let mut args = vec![
            "sign-url",
            "https://cdn.example.com/hls/shows/ep1/master.m3u8",
        ];
        args.extend(base);
        args.extend(expiry);
        hlspipe(&args)
    };
    for out in [
        cookies(&["--expires-at", "1000"]),
        url(&["--expires-at", "1000"]),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stdout(&out).is_empty());
        assert!(
            stderr.contains("warning: this policy expired") && stderr.contains("DateLessThan 1000"),
            "{stderr}"
        );
    }
    for out in [
        cookies(&["--expires-in", "3600"]),
        url(&["--expires-in", "3600"]),
    ] {
        assert!(out.status.success());
        assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
    }
}
