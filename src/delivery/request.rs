//! What a `GET`/`HEAD` asks of an object, decided from the request's path and header bytes
//! alone: the store key a path names, `Range`, and the conditional fields. Pure, so the
//! fuzzing targets reach it without the server (`fuzz/fuzz_targets/edge_request.rs`); the edge
//! (`edge.rs`) takes the fields out of the request and acts on the [`Answer`].

use crate::percent::{self, Plus};
use crate::store::ObjectInfo;
use std::time::UNIX_EPOCH;

/// The store key for the part of the request path after the path prefix: percent-decoded,
/// without empty, `.` or `..` segments (a viewer must not reach outside the key prefix).
pub fn store_key(key_prefix: &str, rest: &str) -> Option<String> {
    // As S3 does for a CloudFront origin request: the path is the key, percent-decoded.
    let decoded = percent::decode(rest, Plus::Literal).ok()?;
    let ok = !decoded.is_empty()
        && !decoded.contains('\0')
        && decoded
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    ok.then(|| format!("{key_prefix}{decoded}"))
}

/// RFC 9110 § 13.1.2: `*`, or a list of entity tags compared weakly (a `W/` prefix ignored).
fn if_none_match_hits(header: &[u8], etag: &str) -> bool {
    let Ok(text) = std::str::from_utf8(header) else {
        return false;
    };
    text.split(',').map(str::trim).any(|tag| {
        if tag == "*" {
            return true;
        }
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .is_some_and(|t| t == etag)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Absent, not understood, or several ranges: the whole object, 200.
    Ignored,
    /// Half-open `[start, end)`, non-empty, inside the object.
    Single(u64, u64),
    Unsatisfiable,
}

/// RFC 9110 § 14.1.2 byte ranges: `bytes=a-b`, `bytes=a-`, `bytes=-n`. A header that does not
/// parse is ignored, as § 14.2 requires; several ranges are answered with the whole object.
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignored;
    };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignored;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.is_empty(), number(first), number(last)) {
        // Suffix: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Single(len.saturating_sub(n), len)
            }
        }
        (false, Some(start), last_pos) => {
            if !last.is_empty() && last_pos.is_none() {
                return RangeRequest::Ignored;
            }
            if let Some(last_pos) = last_pos {
                if last_pos < start {
                    return RangeRequest::Ignored;
                }
            }
            if start >= len {
                return RangeRequest::Unsatisfiable;
            }
            let end = last_pos.map_or(len, |l| l.saturating_add(1).min(len));
            RangeRequest::Single(start, end)
        }
        _ => RangeRequest::Ignored,
    }
}

/// The request headers that decide what is sent, taken out so that the decision can be made
/// on the blocking pool next to the store's HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub is_get: bool,
    pub if_none_match: Option<Vec<u8>>,
    pub if_modified_since: Option<Vec<u8>>,
    pub if_range: Option<Vec<u8>>,
    /// `None` also when the field was repeated: see [`one_field_line`] in the edge.
    pub range: Option<Vec<u8>>,
}

/// What to answer for an object that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    NotModified,
    Unsatisfiable,
    /// `[start, end)`; `partial` for 206.
    Send {
        partial: bool,
        start: u64,
        end: u64,
    },
}

impl Conditions {
    pub fn decide(&self, info: &ObjectInfo) -> Answer {
        // RFC 9110 § 13.2.2: If-None-Match is evaluated before Range; for GET and HEAD a match
        // is 304 Not Modified with the validators and caching headers.
        // If-Modified-Since counts only without If-None-Match (§ 13.1.3): not modified when the
        // object is no newer than the date given.
        match &self.if_none_match {
            Some(inm) => {
                if if_none_match_hits(inm, &info.etag) {
                    return Answer::NotModified;
                }
            }
            None => {
                let since = self
                    .if_modified_since
                    .as_deref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| httpdate::parse_http_date(v).ok())
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs());
                if let (Some(since), Some(modified)) = (since, info.last_modified) {
                    if modified <= since {
                        return Answer::NotModified;
                    }
                }
            }
        }
        let len = info.size;
        let whole = Answer::Send {
            partial: false,
            start: 0,
            end: len,
        };
        // Range applies to GET only (RFC 9110 § 14.2), and, with If-Range, only while the
        // representation is the one the client names by its strong entity tag (§ 13.1.5; a
        // date is not trusted: ours have second precision).
        if !self.is_get {
            return whole;
        }
        if let Some(if_range) = &self.if_range {
            let holds = if_range
                .strip_prefix(b"\"")
                .and_then(|t| t.strip_suffix(b"\""))
                .is_some_and(|t| t == info.etag.as_bytes());
            if !holds {
                return whole;
            }
        }
        match self
            .range
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|v| parse_range(v, len))
        {
            None | Some(RangeRequest::Ignored) => whole,
            Some(RangeRequest::Unsatisfiable) => Answer::Unsatisfiable,
            Some(RangeRequest::Single(start, end)) => Answer::Send {
                partial: true,
                start,
                end,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-99", 1000), Single(0, 100));
        assert_eq!(parse_range("bytes=900-", 1000), Single(900, 1000));
        assert_eq!(parse_range("bytes=-100", 1000), Single(900, 1000));
        assert_eq!(parse_range("bytes=-5000", 1000), Single(0, 1000));
        assert_eq!(parse_range("bytes=990-5000", 1000), Single(990, 1000));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Ignored);
        assert_eq!(parse_range("bytes=5-1", 1000), Ignored);
        assert_eq!(parse_range("items=0-1", 1000), Ignored);
        assert_eq!(parse_range("bytes=a-b", 1000), Ignored);
        assert_eq!(parse_range("bytes=+1-2", 1000), Ignored);
        assert_eq!(
            parse_range("bytes=0-18446744073709551615", 10),
            Single(0, 10)
        );
    }

    fn object(etag: &str, size: u64, last_modified: u64) -> ObjectInfo {
        ObjectInfo {
            key: "k".into(),
            size,
            etag: etag.into(),
            last_modified: Some(last_modified),
            content_type: None,
            cache_control: None,
        }
    }

    fn conditions(headers: &[(&str, &str)], is_get: bool) -> Conditions {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes().to_vec())
        };
        Conditions {
            is_get,
            if_none_match: get("if-none-match"),
            if_modified_since: get("if-modified-since"),
            if_range: get("if-range"),
            range: get("range"),
        }
    }

    #[test]
    fn decisions() {
        let info = object("abc", 1000, 784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let whole = Answer::Send {
            partial: false,
            start: 0,
            end: 1000,
        };
        let part = Answer::Send {
            partial: true,
            start: 0,
            end: 10,
        };
        let decide = |h: &[(&str, &str)], get| conditions(h, get).decide(&info);
        assert_eq!(decide(&[], true), whole);
        assert_eq!(decide(&[("range", "bytes=0-9")], true), part);
        assert_eq!(
            decide(&[("range", "bytes=0-9")], false),
            whole,
            "HEAD ignores Range"
        );
        assert_eq!(
            decide(&[("range", "bytes=0-9"), ("if-range", "\"abc\"")], true),
            part
        );
        assert_eq!(
            decide(&[("range", "bytes=0-9"), ("if-range", "\"abd\"")], true),
            whole
        );
        assert_eq!(
            decide(&[("range", "bytes=0-9"), ("if-range", "W/\"abc\"")], true),
            whole,
            "If-Range needs a strong match"
        );
        assert_eq!(
            decide(&[("range", "bytes=5000-")], true),
            Answer::Unsatisfiable
        );
        assert_eq!(
            decide(&[("if-none-match", "\"abc\"")], false),
            Answer::NotModified
        );
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let earlier = "Sun, 06 Nov 1994 08:49:36 GMT";
        assert_eq!(
            decide(&[("if-modified-since", date)], true),
            Answer::NotModified
        );
        assert_eq!(decide(&[("if-modified-since", earlier)], true), whole);
        assert_eq!(decide(&[("if-modified-since", "yesterday")], true), whole);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            decide(
                &[("if-none-match", "\"x\""), ("if-modified-since", date)],
                true
            ),
            whole
        );
    }

    #[test]
    fn entity_tags() {
        assert!(if_none_match_hits(b"\"abc\"", "abc"));
        assert!(if_none_match_hits(b"W/\"abc\"", "abc"));
        assert!(if_none_match_hits(b"\"x\", \"abc\"", "abc"));
        assert!(if_none_match_hits(b"*", "abc"));
        assert!(!if_none_match_hits(b"abc", "abc"));
        assert!(!if_none_match_hits(b"\"abd\"", "abc"));
    }

    #[test]
    fn keys_stay_under_the_prefix() {
        assert_eq!(
            store_key("hls/", "shows/ep1/master.m3u8").as_deref(),
            Some("hls/shows/ep1/master.m3u8")
        );
        assert_eq!(store_key("hls/", "a%20b/x").as_deref(), Some("hls/a b/x"));
        for bad in [
            "../x",
            "a/../../x",
            "a/%2e%2e/x",
            "a//x",
            "",
            "a/",
            "./a",
            "a%00",
            "%zz",
        ] {
            assert_eq!(store_key("hls/", bad), None, "{bad}");
        }
    }
}
