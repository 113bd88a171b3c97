//! Policies: the JSON statement CloudFront checks, and the title prefix it covers.
//!
//! Shape (CloudFront Developer Guide, "Create a signed URL using a custom policy"):
//! `{"Statement":[{"Resource":"…","Condition":{"DateLessThan":{"AWS:EpochTime":N},
//! "IpAddress":{"AWS:SourceIp":"a.b.c.d/n"},"DateGreaterThan":{"AWS:EpochTime":N}}}]}`.
//! Key order is botocore's (`CloudFrontSigner.build_policy`): the signature covers the exact
//! bytes, so byte-identical output to the AWS signers needs the same order and compact form.
//! A canned policy is the same statement with only `DateLessThan`.

use super::error::SignError;
use serde_json::Value;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// A title's folder on the CDN, e.g. `https://cdn.example.com/hls/shows/ep1.hls/` (see `crate::title`).
///
/// Its resource is always `<prefix>/*`, ending in a slash before the star: `…/ep1*` would
/// also open `…/ep10/`. Parsing refuses anything that could widen the grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitlePrefix {
    /// Scheme and host lowercased, path as given, always ending in `/`.
    url: String,
}

impl TitlePrefix {
    /// Validate a title prefix URL. Refuses `*` and `?` (policy wildcards), `..` and `.`
    /// segments and encoded dots, query strings and fragments, empty path segments, spaces,
    /// control and non-ASCII characters, user info, schemes other than http(s), and a bare host
    /// (that would sign the whole distribution).
    pub fn parse(url: &str) -> Result<TitlePrefix, SignError> {
        let bad = |reason: &'static str| SignError::BadPrefix {
            prefix: url.to_owned(),
            reason,
        };
        if let Some(c) = url.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(bad(if c == ' ' {
                "spaces must be percent-encoded"
            } else {
                "only printable ASCII is allowed (percent-encode the rest)"
            }));
        }
        if url.contains('*') {
            return Err(bad("`*` is a policy wildcard and would widen the grant"));
        }
        if url.contains('?') {
            return Err(bad(
                "`?` (a query string or a one-character wildcard) is not allowed",
            ));
        }
        if url.contains('#') {
            return Err(bad("fragments are not allowed"));
        }
        if url.contains('"') || url.contains('\\') {
            return Err(bad("quotes and backslashes are not allowed"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected http:// or https://"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(bad("the scheme must be http or https"));
        }
        let (host, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        if host.contains('@') {
            return Err(bad("user info (`@`) is not allowed"));
        }
        let path = path.strip_suffix('/').unwrap_or(path);
        if path.is_empty() {
            return Err(bad("a title prefix needs a path below the host; refusing to sign the whole distribution"));
        }
        if path.to_ascii_lowercase().contains("%2e") {
            return Err(bad("percent-encoded dots are not allowed"));
        }
        // `path` starts with '/', so the first segment is empty by construction.
        for segment in path.split('/').skip(1) {
            if segment.is_empty() {
                return Err(bad("empty path segments (`//`) are not allowed"));
            }
            if segment == "." {
                return Err(bad("`.` segments are not allowed"));
            }
            // Only whole `..` segments are folded away by clients (RFC 3986 § 5.2.4);
            // `Wait... what` is an ordinary name.
            if segment == ".." {
                return Err(bad("`..` is not allowed"));
            }
        }
        Ok(TitlePrefix {
            url: format!("{scheme}://{}{path}/", host.to_ascii_lowercase()),
        })
    }

    /// The prefix, ending in `/`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The policy resource covering every object below the prefix: `<prefix>/*`.
    pub fn resource(&self) -> String {
        format!("{}*", self.url)
    }
}

impl fmt::Display for TitlePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// An IPv4 range for `AWS:SourceIp`. CloudFront's policy IP condition is IPv4 only (AWS advises
/// not to enable IPv6 on a distribution whose policies restrict by IP; DistributionConfig
/// `IsIPV6Enabled`), so an IPv6 viewer never matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    addr: Ipv4Addr,
    prefix_len: u8,
}

impl IpRange {
    /// Parse `a.b.c.d/n` or a bare `a.b.c.d`, which becomes `/32` as botocore does.
    pub fn parse(text: &str) -> Result<IpRange, SignError> {
        let bad = |reason: &'static str| SignError::BadIpRange {
            value: text.to_owned(),
            reason,
        };
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: Ipv4Addr = match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4,
            Ok(IpAddr::V6(_)) => return Err(bad("CloudFront policies take IPv4 ranges only")),
            Err(_) => return Err(bad("not an IPv4 address")),
        };
        let prefix_len = match len {
            None => 32,
            Some(len) => match len.parse::<u8>() {
                Ok(n) if n <= 32 && !len.starts_with('+') => n,
                _ => return Err(bad("the prefix length must be 0 to 32")),
            },
        };
        Ok(IpRange { addr, prefix_len })
    }

    /// Whether `ip` is inside the range. IPv6 addresses never are, except IPv4-mapped ones
    /// (`::ffff:a.b.c.d`), which are the IPv4 viewer seen through a dual-stack socket.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => return false,
            },
        };
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        u32::from(v4) & mask == u32::from(self.addr) & mask
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// One policy statement. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    /// The URL pattern (`*`, `?` wildcards). `None` only in policies parsed from elsewhere:
    /// CloudFront then applies the policy to every URL of the distribution.
    pub resource: Option<String>,
    /// Requests are allowed strictly before this time.
    pub date_less_than: u64,
    /// Requests are allowed at or after this time.
    pub date_greater_than: Option<u64>,
    pub ip_address: Option<IpRange>,
}

impl Policy {
    /// A policy for one resource pattern, valid until `date_less_than`.
    pub fn new(resource: &str, date_less_than: u64) -> Result<Policy, SignError> {
        check_resource(resource)?;
        Ok(Policy {
            resource: Some(resource.to_owned()),
            date_less_than,
            date_greater_than: None,
            ip_address: None,
        })
    }

    /// The policy for a title's signed cookies: resource `<prefix>/*`.
    pub fn for_title(prefix: &TitlePrefix, date_less_than: u64) -> Policy {
        Policy {
            resource: Some(prefix.resource()),
            date_less_than,
            date_greater_than: None,
            ip_address: None,
        }
    }

    /// Not valid before `not_before`. Refuses a window that is empty.
    pub fn with_not_before(mut self, not_before: u64) -> Result<Policy, SignError> {
        if not_before >= self.date_less_than {
            return Err(SignError::EmptyWindow {
                not_before,
                expires: self.date_less_than,
            });
        }
        self.date_greater_than = Some(not_before);
        Ok(self)
    }

    /// Only for viewers in `range`.
    pub fn with_source_ip(mut self, range: IpRange) -> Policy {
        self.ip_address = Some(range);
        self
    }

    /// Whether a canned policy (URL parameter `Expires`) can express this policy: no start
    /// time, no IP range, and a resource that is a plain URL.
    pub fn is_canned(&self) -> bool {
        self.date_greater_than.is_none()
            && self.ip_address.is_none()
            && self.resource.as_deref().is_some_and(|r| !r.contains('*'))
    }

    /// The compact JSON that gets signed, in botocore's key order.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str("{\"Statement\":[{");
        if let Some(resource) = &self.resource {
            out.push_str("\"Resource\":");
            // Resources are checked to be printable ASCII, where serde_json's escaping (only
            // `"` and `\`) equals Python's json.dumps and JavaScript's JSON.stringify.
            out.push_str(&Value::from(resource.as_str()).to_string());
            out.push(',');
        }
        out.push_str("\"Condition\":{\"DateLessThan\":{\"AWS:EpochTime\":");
        out.push_str(&self.date_less_than.to_string());
        out.push('}');
        if let Some(range) = &self.ip_address {
            out.push_str(",\"IpAddress\":{\"AWS:SourceIp\":\"");
            out.push_str(&range.to_string());
            out.push_str("\"}");
        }
        if let Some(not_before) = self.date_greater_than {
            out.push_str(",\"DateGreaterThan\":{\"AWS:EpochTime\":");
            out.push_str(&not_before.to_string());
            out.push('}');
        }
        out.push_str("}}]}");
        out
    }

    /// Parse policy JSON as CloudFront accepts it: one statement, only the documented keys,
    /// integer epoch seconds. Unknown keys are refused rather than ignored, so a misspelt
    /// condition can never silently widen access.
    pub fn parse_json(text: &[u8]) -> Result<Policy, SignError> {
        let bad = |reason: String| SignError::BadPolicy(reason);
        let root: Value =
            serde_json::from_slice(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let root = root
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        only_keys(root, &["Statement"], "the policy")?;
        let statements = root
            .get("Statement")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("`Statement` must be an array".into()))?;
        let [statement] = statements.as_slice() else {
            return Err(bad(format!(
                "expected exactly one statement, found {}",
                statements.len()
            )));
        };
        let statement = statement
            .as_object()
            .ok_or_else(|| bad("the statement is not an object".into()))?;
        only_keys(statement, &["Resource", "Condition"], "the statement")?;
        let resource = match statement.get("Resource") {
            None => None,
            Some(Value::String(r)) => Some(r.clone()),
            Some(_) => return Err(bad("`Resource` must be a string".into())),
        };
        let condition = statement
            .get("Condition")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("`Condition` is missing or not an object".into()))?;
        only_keys(
            condition,
            &["DateLessThan", "IpAddress", "DateGreaterThan"],
            "`Condition`",
        )?;
        let epoch = |name: &str| -> Result<Option<u64>, SignError> {
            let Some(value) = condition.get(name) else {
                return Ok(None);
            };
            let inner = value
                .as_object()
                .ok_or_else(|| bad(format!("`{name}` must be an object")))?;
            only_keys(inner, &["AWS:EpochTime"], name)?;
            inner
                .get("AWS:EpochTime")
                .and_then(Value::as_u64)
                .map(Some)
                .ok_or_else(|| {
                    bad(format!(
                        "`{name}.AWS:EpochTime` must be a non-negative integer"
                    ))
                })
        };
        let date_less_than =
            epoch("DateLessThan")?.ok_or_else(|| bad("`DateLessThan` is required".into()))?;
        let date_greater_than = epoch("DateGreaterThan")?;
        let ip_address = match condition.get("IpAddress") {
            None => None,
            Some(value) => {
                let inner = value
                    .as_object()
                    .ok_or_else(|| bad("`IpAddress` must be an object".into()))?;
                only_keys(inner, &["AWS:SourceIp"], "IpAddress")?;
                let text = inner
                    .get("AWS:SourceIp")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("`IpAddress.AWS:SourceIp` must be a string".into()))?;
                Some(IpRange::parse(text)?)
            }
        };
        Ok(Policy {
            resource,
            date_less_than,
            date_greater_than,
            ip_address,
        })
    }
}

fn only_keys(
    object: &serde_json::Map<String, Value>,
    allowed: &[&str],
    what: &str,
) -> Result<(), SignError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(SignError::BadPolicy(format!(
            "unknown key {key:?} in {what}"
        ))),
        None => Ok(()),
    }
}

fn check_resource(resource: &str) -> Result<(), SignError> {
    let bad = |reason: &'static str| SignError::BadResource {
        resource: resource.to_owned(),
        reason,
    };
    if resource.is_empty() {
        return Err(bad("empty"));
    }
    if !resource.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad(
            "only printable ASCII is allowed (percent-encode the rest)",
        ));
    }
    if resource.contains('"') || resource.contains('\\') {
        return Err(bad("quotes and backslashes are not allowed"));
    }
    Ok(())
}

/// Remove the whitespace between JSON tokens of policy text, as AWS instructs before signing
/// ("remove all white space, including tabs and newline characters"), and never inside a
/// string: `"…/hls/My Show/*"` stays the resource it says. A backslash escapes the next
/// character inside a string (RFC 8259 § 7), so `\"` does not end it.
pub fn strip_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_policy_json_in_botocores_order() {
        let prefix = TitlePrefix::parse("https://cdn.example.com/hls/shows/ep1/").unwrap();
        let policy = Policy::for_title(&prefix, 1_893_456_000)
            .with_source_ip(IpRange::parse("192.0.2.0/24").unwrap())
            .with_not_before(1_800_000_000)
            .unwrap();
        assert_eq!(
            policy.to_json(),
            r#"{"Statement":[{"Resource":"https://cdn.example.com/hls/shows/ep1/*","Condition":{"DateLessThan":{"AWS:EpochTime":1893456000},"IpAddress":{"AWS:SourceIp":"192.0.2.0/24"},"DateGreaterThan":{"AWS:EpochTime":1800000000}}}]}"#
        );
        assert_eq!(
            Policy::parse_json(policy.to_json().as_bytes()).unwrap(),
            policy
        );
    }

    #[test]
    fn design_doc_example() {
        let prefix = TitlePrefix::parse("https://cdn.example.com/hls/shows/ep1").unwrap();
        assert_eq!(
            Policy::for_title(&prefix, 1_893_456_000).to_json(),
            r#"{"Statement":[{"Resource":"https://cdn.example.com/hls/shows/ep1/*","Condition":{"DateLessThan":{"AWS:EpochTime":1893456000}}}]}"#
        );
    }

    #[test]
    fn prefix_never_ends_in_bare_star_regression_ep1_opens_ep10() {
        for given in [
            "https://cdn.example.com/hls/shows/ep1",
            "https://cdn.example.com/hls/shows/ep1/",
        ] {
            let prefix = TitlePrefix::parse(given).unwrap();
            assert_eq!(prefix.resource(), "https://cdn.example.com/hls/shows/ep1/*");
            assert!(!crate::delivery::sign::wildcard::matches(
                &prefix.resource(),
                "https://cdn.example.com/hls/shows/ep10/x.m4s"
            ));
        }
    }

    #[test]
    fn prefix_rejections() {
        for bad in [
            "https://cdn.example.com/hls/*",
            "https://cdn.example.com/hls/ep?/",
            "https://cdn.example.com/hls/ep1/?v=2",
            "https://cdn.example.com/hls/../secret/",
            "https://cdn.example.com/hls/ep1/..",
            "https://cdn.example.com/hls/%2e%2e/secret/",
            "https://cdn.example.com/hls/./ep1/",
            "https://cdn.example.com/hls//ep1/",
            "https://cdn.example.com/hls/ep1#x",
            "https://cdn.example.com/hls/my ep/",
            "https://cdn.example.com/hls/épisode/",
            "ftp://cdn.example.com/hls/ep1/",
            "file:///etc/ep1/",
            "cdn.example.com/hls/ep1/",
            "https://cdn.example.com",
            "https://cdn.example.com/",
            "https://user@cdn.example.com/hls/ep1/",
            "https:///hls/ep1/",
        ] {
            assert!(TitlePrefix::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn prefix_lowercases_scheme_and_host_only() {
        let prefix = TitlePrefix::parse("HTTPS://CDN.Example.com/HLS/Ep1").unwrap();
        assert_eq!(prefix.as_str(), "https://cdn.example.com/HLS/Ep1/");
    }

    #[test]
    fn ip_ranges() {
        assert_eq!(
            IpRange::parse("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        let net = IpRange::parse("192.0.2.0/24").unwrap();
        assert!(net.contains("192.0.2.200".parse().unwrap()));
        assert!(net.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(!net.contains("2001:db8::1".parse().unwrap()));
        assert!(IpRange::parse("0.0.0.0/0")
            .unwrap()
            .contains("203.0.113.9".parse().unwrap()));
        for bad in [
            "192.0.2.0/33",
            "192.0.2.0/",
            "2001:db8::/32",
            "300.1.1.1",
            "192.0.2.0/+8",
            "",
        ] {
            assert!(IpRange::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn parse_refuses_what_cloudfront_would_not_take() {
        for bad in [
            r#"{"Statement":[]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1}}},{"Resource":"y","Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1.5}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":"1"}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1},"DateLesThan":{"AWS:EpochTime":9}}}]}"#,
            r#"{"Statement":[{"Resource":"x","Effect":"Allow","Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#,
            r#"not json"#,
        ] {
            assert!(
                Policy::parse_json(bad.as_bytes()).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn strip_whitespace_removes_all_of_it() {
        assert_eq!(strip_whitespace("{ \"a\" :\n\t1 }\r\n"), "{\"a\":1}");
    }

    /// Regression (reliability issue, defect 8): whitespace inside strings was stripped too,
    /// so a policy for `…/hls/My Show/*` was signed for `…/hls/MyShow/*`.
    #[test]
    fn strip_whitespace_keeps_strings_regression_policy_file_resource_changed() {
        let text = "{ \"Resource\" : \"https://cdn/hls/My Show\\\" x/*\" ,\n \"b\": \"\\\\\" }";
        assert_eq!(
            strip_whitespace(text),
            "{\"Resource\":\"https://cdn/hls/My Show\\\" x/*\",\"b\":\"\\\\\"}"
        );
    }
}
