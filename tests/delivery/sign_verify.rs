//! The verifier answers as CloudFront would: cookies and signed URLs made by our signer are
//! allowed exactly where their policy says, and denied with the right reason everywhere else.

use crate::support::key_file;
use hlspipe::delivery::sign::{
    decode_cloudfront_base64, encode_cloudfront_base64, CookieAttributes, Decision, DenyReason,
    HashAlgorithm, IpRange, KeySet, Policy, PrivateKey, PublicKey, PublicKeySet, SameSite,
    SignError, SignedCookies, Signer, TitlePrefix, Verifier,
};
use std::net::IpAddr;

const EXPIRES: u64 = 1_900_000_000;
const NOW: u64 = 1_850_000_000;
const EP1: &str = "https://cdn.example.com/hls/shows/ep1/";

fn pem(name: &str) -> String {
    std::fs::read_to_string(key_file(name)).expect("fixture key")
}

fn private(name: &str) -> PrivateKey {
    PrivateKey::from_pem(&pem(name)).expect("fixture key loads")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("IP")
}

/// (signer, verifier) over one key.
fn pair(key_file: &str, hash: HashAlgorithm) -> (Signer, Verifier) {
    let keys = KeySet::new("K2ACTIVE", private(key_file)).unwrap();
    let verifier = Verifier::new(keys.public_keys());
    (Signer::new(keys, hash), verifier)
}

fn title_cookies(signer: &Signer) -> SignedCookies {
    signer
        .signed_cookies(&Policy::for_title(
            &TitlePrefix::parse(EP1).unwrap(),
            EXPIRES,
        ))
        .unwrap()
}

fn deny_reason(decision: Decision) -> DenyReason {
    match decision {
        Decision::Deny(reason) => reason,
        Decision::Allow(grant) => panic!("expected deny, got allow {grant:?}"),
    }
}

const ALL_KINDS: [(&str, HashAlgorithm); 5] = [
    ("rsa2048.pkcs1.pem", HashAlgorithm::Sha1),
    ("rsa2048.pkcs8.pem", HashAlgorithm::Sha256),
    ("ec-p256.sec1.pem", HashAlgorithm::Sha256),
    ("ec-p256.pkcs8.pem", HashAlgorithm::Sha256),
    ("ec-p256.sec1.pem", HashAlgorithm::Sha1),
];

#[test]
fn title_cookies_allow_the_playlists_and_segments_of_that_title() {
    for (key_file, hash) in ALL_KINDS {
        let (signer, verifier) = pair(key_file, hash);
        let cookie = title_cookies(&signer).cookie_header();
        for url in [
            "https://cdn.example.com/hls/shows/ep1/master.m3u8",
            "https://cdn.example.com/hls/shows/ep1/v0/index.m3u8",
            "https://cdn.example.com/hls/shows/ep1/v0/init.mp4",
            "https://cdn.example.com/hls/shows/ep1/v0/seg00042.m4s",
            "https://cdn.example.com/hls/shows/ep1/v0/seg00042.m4s?cmcd=br%3D800",
        ] {
            let decision = verifier.verify_request(url, Some(&cookie), ip("203.0.113.5"), NOW);
            assert!(decision.is_allow(), "{key_file} {hash:?} {url}: {decision}");
        }
    }
}

#[test]
fn sibling_title_is_denied_regression_ep1_cookie_opens_ep10() {
    let (signer, verifier) = pair("rsa2048.pkcs1.pem", HashAlgorithm::Sha1);
    let cookie = title_cookies(&signer).cookie_header();
    for url in [
        "https://cdn.example.com/hls/shows/ep10/master.m3u8",
        "https://cdn.example.com/hls/shows/ep1",
        "https://cdn.example.com/hls/shows/ep2/master.m3u8",
        "https://cdn.example.com/hls/shows/master.m3u8",
        "http://cdn.example.com/hls/shows/ep1/master.m3u8",
        "https://other.example.com/hls/shows/ep1/master.m3u8",
    ] {
        let reason =
            deny_reason(verifier.verify_request(url, Some(&cookie), ip("203.0.113.5"), NOW));
        assert!(
            matches!(reason, DenyReason::ResourceMismatch { .. }),
            "{url}: {reason}"
        );
    }
}

#[test]
fn time_window_is_checked_at_its_edges() {
    let (signer, verifier) = pair("ec-p256.sec1.pem", HashAlgorithm::Sha256);
    let policy = Policy::for_title(&TitlePrefix::parse(EP1).unwrap(), EXPIRES)
        .with_not_before(1_800_000_000)
        .unwrap();
    let cookie = signer.signed_cookies(&policy).unwrap().cookie_header();
    let url = "https://cdn.example.com/hls/shows/ep1/master.m3u8";
    let at = |now| verifier.verify_request(url, Some(&cookie), ip("192.0.2.1"), now);
    assert!(at(1_800_000_000).is_allow(), "DateGreaterThan is inclusive");
    assert!(at(EXPIRES - 1).is_allow());
    assert_eq!(
        deny_reason(at(EXPIRES)),
        DenyReason::Expired {
            expires: EXPIRES,
            now: EXPIRES
        }
    );
    assert_eq!(
        deny_reason(at(EXPIRES + 3600)),
        DenyReason::Expired {
            expires: EXPIRES,
            now: EXPIRES + 3600
        }
    );
    assert_eq!(
        deny_reason(at(1_799_999_999)),
        DenyReason::NotYetValid {
            not_before: 1_800_000_000,
            now: 1_799_999_999
        }
    );
}

#[test]
fn source_ip_must_be_in_the_policy_range() {
    let (signer, verifier) = pair("rsa2048.pkcs8.pem", HashAlgorithm::Sha1);
    let policy = Policy::for_title(&TitlePrefix::parse(EP1).unwrap(), EXPIRES)
        .with_source_ip(IpRange::parse("192.0.2.0/24").unwrap());
    let cookie = signer.signed_cookies(&policy).unwrap().cookie_header();
    let url = "https://cdn.example.com/hls/shows/ep1/master.m3u8";
    assert!(verifier
        .verify_request(url, Some(&cookie), ip("192.0.2.77"), NOW)
        .is_allow());
    assert!(verifier
        .verify_request(url, Some(&cookie), ip("::ffff:192.0.2.77"), NOW)
        .is_allow());
    for wrong in ["192.0.3.1", "10.0.0.1", "2001:db8::1"] {
        let reason = deny_reason(verifier.verify_request(url, Some(&cookie), ip(wrong), NOW));
        assert!(
            matches!(reason, DenyReason::SourceIpNotAllowed { .. }),
            "{wrong}: {reason}"
        );
    }
}

/// Replace one cookie's value in a Cookie header.
fn with_cookie(header: &str, name: &str, value: &str) -> String {
    header
        .split("; ")
        .map(|item| {
            if item.starts_with(&format!("{name}=")) {
                format!("{name}={value}")
            } else {
                item.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn tampered_policy_or_signature_is_denied_even_after_the_genuine_one_was_cached() {
    for (key_file, hash) in ALL_KINDS {
        let (signer, verifier) = pair(key_file, hash);
        let cookies = title_cookies(&signer);
        let header = cookies.cookie_header();
        let url = "https://cdn.example.com/hls/shows/ep10/master.m3u8";
        let own = "https://cdn.example.com/hls/shows/ep1/master.m3u8";
        // Warm the cache with the genuine cookies.
        assert!(verifier
            .verify_request(own, Some(&header), ip("192.0.2.1"), NOW)
            .is_allow());

        // Widen the resource to the whole show and keep the signature.
        let policy = String::from_utf8(decode_cloudfront_base64(&cookies.policy).unwrap()).unwrap();
        let widened = policy.replace("/ep1/*", "/*");
        let forged = with_cookie(
            &header,
            "CloudFront-Policy",
            &encode_cloudfront_base64(widened.as_bytes()),
        );
        assert_eq!(
            deny_reason(verifier.verify_request(url, Some(&forged), ip("192.0.2.1"), NOW)),
            DenyReason::BadSignature,
            "{key_file} {hash:?}"
        );

        // Flip one bit of the signature.
        let mut signature = decode_cloudfront_base64(&cookies.signature).unwrap();
        let last = signature.len() - 1;
        signature[last / 2] ^= 0x01;
        let forged = with_cookie(
            &header,
            "CloudFront-Signature",
            &encode_cloudfront_base64(&signature),
        );
        assert_eq!(
            deny_reason(verifier.verify_request(own, Some(&forged), ip("192.0.2.1"), NOW)),
            DenyReason::BadSignature,
            "{key_file} {hash:?}"
        );

        // Claim the other hash algorithm for the same bytes.
        let (other, forged) = match hash {
            HashAlgorithm::Sha1 => (
                "SHA256",
                format!("{header}; CloudFront-Hash-Algorithm=SHA256"),
            ),
            HashAlgorithm::Sha256 => (
                "SHA1",
                with_cookie(&header, "CloudFront-Hash-Algorithm", "SHA1"),
            ),
        };
        assert_eq!(
            deny_reason(verifier.verify_request(own, Some(&forged), ip("192.0.2.1"), NOW)),
            DenyReason::BadSignature,
            "{key_file} {hash:?} as {other}"
        );
    }
}

#[test]
fn unknown_key_pair_id_and_unknown_hash_are_denied() {
    let (signer, verifier) = pair("rsa2048.pkcs1.pem", HashAlgorithm::Sha1);
    let header = title_cookies(&signer).cookie_header();
    let url = "https://cdn.example.com/hls/shows/ep1/master.m3u8";
    let forged = with_cookie(&header, "CloudFront-Key-Pair-Id", "K2SOMEONEELSE");
    assert_eq!(
        deny_reason(verifier.verify_request(url, Some(&forged), ip("192.0.2.1"), NOW)),
        DenyReason::UnknownKeyPairId("K2SOMEONEELSE".into())
    );
    let forged = format!("{header}; CloudFront-Hash-Algorithm=MD5");
    assert_eq!(
        deny_reason(verifier.verify_request(url, Some(&forged), ip("192.0.2.1"), NOW)),
        DenyReason::UnsupportedHashAlgorithm("MD5".into())
    );
}

#[test]
fn missing_and_malformed_credentials_are_named() {
    let (signer, verifier) = pair("rsa2048.pkcs1.pem", HashAlgorithm::Sha1);
    let cookies = title_cookies(&signer);
    let url = "https://cdn.example.com/hls/shows/ep1/master.m3u8";
    let check = |header: Option<&str>| {
        deny_reason(verifier.verify_request(url, header, ip("192.0.2.1"), NOW))
    };
    assert_eq!(check(None), DenyReason::NoCredentials);
    assert_eq!(check(Some("session=1")), DenyReason::NoCredentials);
    let without_signature = format!(
        "CloudFront-Policy={}; CloudFront-Key-Pair-Id=K2ACTIVE",
        cookies.policy
    );
    assert_eq!(
        check(Some(&without_signature)),
        DenyReason::Missing("CloudFront-Signature")
    );
    let bad_base64 = with_cookie(&cookies.cookie_header(), "CloudFront-Policy", "%%%");
    assert!(matches!(
        check(Some(&bad_base64)),
        DenyReason::Malformed {
            field: "CloudFront-Policy",
            ..
        }
    ));
}

#[test]
fn key_rotation_signs_with_the_active_key_and_verifies_any_in_the_set() {
    let mut keys = KeySet::new("K2OLD", private("rsa2048.pkcs1.pem")).unwrap();
    let old_signer_cookies = {
        let keys = KeySet::new("K2OLD", private("rsa2048.pkcs1.pem")).unwrap();
        title_cookies(&Signer::new(keys, HashAlgorithm::Sha1))
    };
    keys.insert("K2NEW", private("rsa2048-second.pkcs1.pem"))
        .unwrap();
    keys.set_active("K2NEW").unwrap();
    assert!(matches!(
        keys.set_active("K2NOPE"),
        Err(SignError::UnknownKeyPairId(_))
    ));
    let verifier = Verifier::new(keys.public_keys());
    let signer = Signer::new(keys, HashAlgorithm::Sha1);
    let new_cookies = title_cookies(&signer);
    assert_eq!(new_cookies.key_pair_id, "K2NEW");
    let url = "https://cdn.example.com/hls/shows/ep1/master.m3u8";
    for cookies in [&old_signer_cookies, &new_cookies] {
        let decision =
            verifier.verify_request(url, Some(&cookies.cookie_header()), ip("192.0.2.1"), NOW);
        assert!(decision.is_allow(), "{}: {decision}", cookies.key_pair_id);
    }
    // The old key's signature presented under the new id is not accepted.
    let swapped = with_cookie(
        &old_signer_cookies.cookie_header(),
        "CloudFront-Key-Pair-Id",
        "K2NEW",
    );
    assert_eq!(
        deny_reason(verifier.verify_request(url, Some(&swapped), ip("192.0.2.1"), NOW)),
        DenyReason::BadSignature
    );
}

#[test]
fn canned_signed_urls_cover_exactly_one_url_and_keep_its_query() {
    for (key_file, hash) in ALL_KINDS {
        let (signer, verifier) = pair(key_file, hash);
        let url = "https://cdn.example.com/hls/shows/ep1/master.m3u8?lang=en";
        let signed = signer.signed_url_canned(url, EXPIRES).unwrap();
        assert!(signed.starts_with("https://cdn.example.com/hls/shows/ep1/master.m3u8?lang=en&Expires=1900000000&Signature="));
        assert_eq!(
            signed.contains("&Hash-Algorithm=SHA256"),
            hash == HashAlgorithm::Sha256
        );
        let decision = verifier.verify_request(&signed, None, ip("192.0.2.1"), NOW);
        assert!(decision.is_allow(), "{key_file} {hash:?}: {decision}");
        // Another object, or the same one with a different query, is not covered.
        let other = signed.replace("master.m3u8", "other.m3u8");
        assert_eq!(
            deny_reason(verifier.verify_request(&other, None, ip("192.0.2.1"), NOW)),
            DenyReason::BadSignature
        );
        let requery = signed.replace("lang=en", "lang=fr");
        assert_eq!(
            deny_reason(verifier.verify_request(&requery, None, ip("192.0.2.1"), NOW)),
            DenyReason::BadSignature
        );
        assert!(matches!(
            deny_reason(verifier.verify_request(&signed, None, ip("192.0.2.1"), EXPIRES)),
            DenyReason::Expired { .. }
        ));
    }
}

#[test]
fn custom_signed_urls_cover_the_title_prefix() {
    let (signer, verifier) = pair("rsa2048.pkcs1.pem", HashAlgorithm::Sha1);
    let policy = Policy::for_title(&TitlePrefix::parse(EP1).unwrap(), EXPIRES);
    let signed = signer
        .signed_url_custom("https://cdn.example.com/hls/shows/ep1/master.m3u8", &policy)
        .unwrap();
    let query = signed.split_once('?').unwrap().1;
    assert!(
        query.starts_with("Policy=")
            && query.contains("&Signature=")
            && query.ends_with("&Key-Pair-Id=K2ACTIVE")
    );
    assert!(verifier
        .verify_request(&signed, None, ip("192.0.2.1"), NOW)
        .is_allow());
    // The same credentials on a segment URL of the title: still allowed.
    let segment = format!("https://cdn.example.com/hls/shows/ep1/v0/seg1.m4s?{query}");
    assert!(verifier
        .verify_request(&segment, None, ip("192.0.2.1"), NOW)
        .is_allow());
    let sibling = format!("https://cdn.example.com/hls/shows/ep10/v0/seg1.m4s?{query}");
    assert!(matches!(
        deny_reason(verifier.verify_request(&sibling, None, ip("192.0.2.1"), NOW)),
        DenyReason::ResourceMismatch { .. }
    ));
}

#[test]
fn a_signed_url_is_judged_by_its_own_parameters_not_by_cookies() {
    let (signer, verifier) = pair("rsa2048.pkcs1.pem", HashAlgorithm::Sha1);
    let good_cookie = title_cookies(&signer).cookie_header();
    let url = "https://cdn.example.com/hls/shows/ep1/master.m3u8?Expires=1900000000&Signature=AAAA&Key-Pair-Id=K2ACTIVE";
    assert_eq!(
        deny_reason(verifier.verify_request(url, Some(&good_cookie), ip("192.0.2.1"), NOW)),
        DenyReason::BadSignature
    );
}

#[test]
fn urls_that_cannot_be_signed_are_refused() {
    let (signer, _) = pair("rsa2048.pkcs1.pem", HashAlgorithm::Sha1);
    for url in [
        "https://h/a.m3u8?Signature=1",
        "https://h/a.m3u8#t",
        "s3://bucket/a.m3u8",
        "https://h/a b",
    ] {
        assert!(
            matches!(
                signer.signed_url_canned(url, EXPIRES),
                Err(SignError::BadUrl { .. })
            ),
            "{url}"
        );
    }
}

#[test]
fn set_cookie_values_carry_the_required_attributes() {
    let (signer, _) = pair("ec-p256.sec1.pem", HashAlgorithm::Sha256);
    let cookies = title_cookies(&signer);
    let headers = cookies.set_cookie_headers(&CookieAttributes::new());
    let names: Vec<&str> = headers
        .iter()
        .map(|h| h.split_once('=').unwrap().0)
        .collect();
    assert_eq!(
        names,
        [
            "CloudFront-Policy",
            "CloudFront-Signature",
            "CloudFront-Key-Pair-Id",
            "CloudFront-Hash-Algorithm"
        ]
    );
    for header in &headers {
        assert!(
            header.ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax"),
            "{header}"
        );
        assert!(
            !header.contains("Expires") && !header.contains("Max-Age"),
            "session cookie by default: {header}"
        );
    }
    let attributes = CookieAttributes::new()
        .domain("Example.com")
        .unwrap()
        .same_site(SameSite::None)
        .max_age(3600);
    assert_eq!(
        cookies.set_cookie_headers(&attributes)[2],
        "CloudFront-Key-Pair-Id=K2ACTIVE; Path=/; Domain=example.com; Secure; HttpOnly; SameSite=None; Max-Age=3600"
    );
    assert!(CookieAttributes::new()
        .domain("example.com; HttpOnly=no")
        .is_err());

    let (sha1_signer, _) = pair("rsa2048.pkcs1.pem", HashAlgorithm::Sha1);
    assert_eq!(
        title_cookies(&sha1_signer).pairs().len(),
        3,
        "no hash cookie for SHA-1"
    );
}

#[test]
fn pkcs1_and_pkcs8_pems_of_one_key_sign_identically() {
    let policy = Policy::for_title(&TitlePrefix::parse(EP1).unwrap(), EXPIRES).to_json();
    for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
        let a = private("rsa2048.pkcs1.pem")
            .sign(policy.as_bytes(), hash)
            .unwrap();
        let b = private("rsa2048.pkcs8.pem")
            .sign(policy.as_bytes(), hash)
            .unwrap();
        assert_eq!(a, b, "{hash:?}");
        let public = PublicKey::from_pem(&pem("rsa2048.pub.pem")).unwrap();
        assert!(public.verify(policy.as_bytes(), &a, hash));
    }
    let a = private("ec-p256.sec1.pem")
        .sign(policy.as_bytes(), HashAlgorithm::Sha256)
        .unwrap();
    let b = private("ec-p256.pkcs8.pem")
        .sign(policy.as_bytes(), HashAlgorithm::Sha256)
        .unwrap();
    assert_eq!(a, b, "RFC 6979 nonces make ECDSA deterministic too");
    assert_eq!(a[0], 0x30, "DER SEQUENCE");
}

#[test]
fn bad_keys_give_one_clear_error_without_key_material() {
    let rsa_pem = pem("rsa2048.pkcs1.pem");
    let body_line = rsa_pem.lines().nth(1).unwrap().to_owned();
    let truncated = rsa_pem.lines().take(5).collect::<Vec<_>>().join("\n")
        + "\n-----END RSA PRIVATE KEY-----\n";
    let cases = [
        ("", "no PEM block"),
        ("not a key", "no PEM block"),
        (truncated.as_str(), "PKCS#1"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "unsupported PEM type",
        ),
    ];
    for (text, expected) in cases {
        let err = PrivateKey::from_pem(text).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
        assert!(
            !err.contains(&body_line[..20]),
            "error leaks key material: {err}"
        );
    }
    let err = PrivateKey::from_pem(&pem("rsa2048.pub.pem"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("public key"), "{err}");
    let debug = format!("{:?}", private("rsa2048.pkcs1.pem"));
    assert_eq!(debug, "PrivateKey(RSA-2048)");
    // EC PARAMETERS before the key, as `openssl ecparam -genkey` writes it.
    let with_params = format!(
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
        pem("ec-p256.sec1.pem")
    );
    assert_eq!(
        PrivateKey::from_pem(&with_params).unwrap().kind(),
        "ECDSA-P256"
    );
}

#[test]
fn verifier_keys_load_from_public_and_private_pems() {
    let mut keys = PublicKeySet::new();
    keys.insert("K2A", PublicKey::from_pem(&pem("ec-p256.pub.pem")).unwrap())
        .unwrap();
    keys.insert(
        "K2B",
        PublicKey::from_pem(&pem("rsa2048.pkcs8.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys
        .insert(
            "K2 bad",
            PublicKey::from_pem(&pem("ec-p256.pub.pem")).unwrap()
        )
        .is_err());
}

#[test]
fn issuing_the_same_cookies_again_is_served_from_the_cache() {
    let (signer, _) = pair("rsa2048.pkcs1.pem", HashAlgorithm::Sha1);
    let first = title_cookies(&signer);
    let again = title_cookies(&signer);
    assert!(
        std::sync::Arc::ptr_eq(&first.signature, &again.signature),
        "same allocation: a cache hit"
    );
}

#[test]
fn wildcard_resources_match_the_whole_url_including_the_query() {
    let (signer, verifier) = pair("rsa2048.pkcs1.pem", HashAlgorithm::Sha1);
    let table: &[(&str, &str, bool)] = &[
        (
            "https://cdn.example.com/hls/*/v0/*.m4s",
            "https://cdn.example.com/hls/ep1/v0/seg1.m4s",
            true,
        ),
        (
            "https://cdn.example.com/hls/*/v0/*.m4s",
            "https://cdn.example.com/hls/ep1/v0/seg1.m4s?x=1",
            false,
        ),
        (
            "https://cdn.example.com/hls/*/v0/*.m4s*",
            "https://cdn.example.com/hls/ep1/v0/seg1.m4s?x=1",
            true,
        ),
        (
            "https://cdn.example.com/hls/ep?/*",
            "https://cdn.example.com/hls/ep1/master.m3u8",
            true,
        ),
        (
            "https://cdn.example.com/hls/ep?/*",
            "https://cdn.example.com/hls/ep10/master.m3u8",
            false,
        ),
        (
            "https://cdn.example.com/a.m3u8?v=?",
            "https://cdn.example.com/a.m3u8?v=2",
            true,
        ),
        (
            "https://cdn.example.com/a.m3u8?v=?",
            "https://cdn.example.com/a.m3u8?v=22",
            false,
        ),
        (
            "https://cdn.example.com/a.m3u8",
            "https://cdn.example.com/a.m3u8?v=2",
            false,
        ),
        (
            "https://*/hls/ep1/*",
            "https://cdn.example.com/hls/ep1/x",
            true,
        ),
        (
            "https://*/hls/ep1/*",
            "https://cdn.example.com/HLS/ep1/x",
            false,
        ),
    ];
    for &(resource, url, allowed) in table {
        let policy = format!(
            r#"{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{EXPIRES}}}}}}}]}}"#
        );
        let cookie = signer
            .signed_cookies_for_policy_text(&policy)
            .unwrap()
            .cookie_header();
        let decision = verifier.verify_request(url, Some(&cookie), ip("192.0.2.1"), NOW);
        assert_eq!(
            decision.is_allow(),
            allowed,
            "{resource} vs {url}: {decision}"
        );
    }
}
