//! CloudFront's policy `Resource` matching: `*` matches zero or more characters, `?` matches
//! exactly one, everything else matches itself, case-sensitively, against the whole URL
//! including its query string (CloudFront Developer Guide, "Create a signed URL using a custom
//! policy", values for Resource).
//!
//! URLs on the wire are ASCII (RFC 3986 percent-encodes everything else), so matching works on
//! bytes: a `?` stands for one byte.

/// Whether `url` matches the policy resource `pattern`.
///
/// Runs in O(pattern × url) at worst and never allocates: it keeps only the position of the
/// last `*` and retries from there, which is enough because a later `*` can absorb anything an
/// earlier one could.
pub fn matches(pattern: &str, url: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), url.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    // (index of the last `*` in the pattern, index in the url where it started absorbing)
    let mut last_star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                last_star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match last_star {
                Some((star, absorbed_from)) => {
                    pi = star + 1;
                    ti = absorbed_from + 1;
                    last_star = Some((star, absorbed_from + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn table() {
        let ep1 = "https://cdn.example.com/hls/shows/ep1/*";
        let cases: &[(&str, &str, bool)] = &[
            (
                ep1,
                "https://cdn.example.com/hls/shows/ep1/master.m3u8",
                true,
            ),
            (
                ep1,
                "https://cdn.example.com/hls/shows/ep1/v0/seg00001.m4s",
                true,
            ),
            (ep1, "https://cdn.example.com/hls/shows/ep1/", true),
            (
                ep1,
                "https://cdn.example.com/hls/shows/ep1/a.m3u8?x=1&y=2",
                true,
            ),
            (
                ep1,
                "https://cdn.example.com/hls/shows/ep10/master.m3u8",
                false,
            ),
            (ep1, "https://cdn.example.com/hls/shows/ep1", false),
            (
                ep1,
                "http://cdn.example.com/hls/shows/ep1/master.m3u8",
                false,
            ),
            (
                ep1,
                "https://cdn.example.com/HLS/shows/ep1/master.m3u8",
                false,
            ),
            (
                ep1,
                "https://cdn.example.com.evil.net/hls/shows/ep1/x",
                false,
            ),
            // `…/ep1*` is the bug TitlePrefix exists to prevent: it also opens ep10.
            (
                "https://cdn.example.com/hls/shows/ep1*",
                "https://cdn.example.com/hls/shows/ep10/x",
                true,
            ),
            (
                "https://cdn.example.com/a?c",
                "https://cdn.example.com/abc",
                true,
            ),
            (
                "https://cdn.example.com/a?c",
                "https://cdn.example.com/ac",
                false,
            ),
            (
                "https://cdn.example.com/a?c",
                "https://cdn.example.com/abbc",
                false,
            ),
            ("https://*.example.com/*", "https://cdn.example.com/x", true),
            ("https://*.example.com/*", "https://example.com/x", false),
            ("*", "", true),
            ("*", "anything?at=all", true),
            ("", "", true),
            ("", "x", false),
            ("?", "", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("a**c", "ac", true),
            ("*.m4s", "https://h/x/seg.m4s", true),
            ("*.m4s", "https://h/x/seg.m4s?x", false),
            ("*.m4s*", "https://h/x/seg.m4s?x", true),
            ("exact", "exact", true),
            ("exact", "Exact", false),
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ];
        for &(pattern, url, expected) in cases {
            assert_eq!(
                matches(pattern, url),
                expected,
                "pattern {pattern:?} url {url:?}"
            );
        }
    }
}
