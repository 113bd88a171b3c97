//! Titles: the one naming rule (DESIGN.md "Titles: one rule, everywhere"). The worker, the
//! playback API, signing, the dev page and reprocess all go through [`Title`].
//!
//! A title is an upload's key below the input prefix, without its extension, in Unicode
//! NFC: `uploads/My Show/Épisode 1.MOV` → `My Show/Épisode 1`. Its objects live in a
//! *bundle*, a folder named after the title with [`BUNDLE_SUFFIX`] appended:
//!
//! ```text
//! uploads/show.mp4      → hls/show.hls/master.m3u8
//! uploads/show/ep1.mp4  → hls/show/ep1.hls/master.m3u8
//! ```
//!
//! The suffix is what keeps one title's cookies from opening another's. A signed policy
//! covers `<bundle>/*` (CloudFront's `*` matches `/` too), so a layout of plain folders
//! (`hls/show/` beside `hls/show/ep1/`) would let the cookie of `show` open `show/ep1`.
//! With bundles no title's folder is a prefix of another's: a title's keys start with
//! `hls/show.hls/` only if the title's first folder is `show.hls`, which is refused
//! ([`TitleError::BundleFolder`]). Both uploads play; nothing nests.
//!
//! On the CDN and in policies the bundle path is percent-encoded once, as UTF-8: every byte
//! outside `A-Z a-z 0-9 - . _ ~ /` as upper-case `%XX`. CloudFront compares a policy's
//! resource with the URL as the viewer sent it, byte for byte, so both must use this one
//! encoding; `*` and `?` in a title become `%2A` and `%3F` and can never act as wildcards.
//! Playlist URIs are relative, so players request exactly those bytes.
//!
//! ```
//! use hlspipe::title::Title;
//! let title = Title::new("My Show/Épisode 1")?;
//! assert_eq!(title.folder("hls/"), "hls/My Show/Épisode 1.hls/");
//! assert_eq!(title.url_folder("hls/"), "hls/My%20Show/%C3%89pisode%201.hls/");
//! assert!(Title::new("show.hls/ep1").is_err());
//! # Ok::<(), hlspipe::title::TitleError>(())
//! ```

use crate::percent::{self, Plus};
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// Appended to a title to name the folder of its objects (see the module docs).
pub const BUNDLE_SUFFIX: &str = ".hls";

/// The longest title, in bytes of UTF-8 after normalisation. With the output prefix, the
/// bundle suffix and `v/<version>/<rendition>/seg_NNNNN.m4s` it stays well inside S3's
/// 1,024-byte key limit.
pub const MAX_TITLE_BYTES: usize = 512;

/// The longest part of a title between slashes, in bytes: with the bundle suffix it still
/// fits the 255-byte file name limit of the folder store's file systems (ext4, XFS, APFS).
pub const MAX_SEGMENT_BYTES: usize = 250;

/// Why a name cannot be a title. Each message says what to rename.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TitleError {
    #[error("the title is empty")]
    Empty,
    #[error("the title '{0}' has an empty, '.' or '..' part (players and CDNs fold those away)")]
    BadSegment(String),
    #[error("the title '{0}' holds control characters")]
    Control(String),
    #[error("the title is {0} bytes long; at most {MAX_TITLE_BYTES} are allowed")]
    TooLong(usize),
    #[error("a part of the title is {0} bytes long; at most {MAX_SEGMENT_BYTES} between slashes")]
    SegmentTooLong(usize),
    #[error(
        "the title '{0}' has a folder ending in '{BUNDLE_SUFFIX}', the suffix of a title's own \
         folder on the CDN; rename the folder"
    )]
    BundleFolder(String),
    #[error("'{0}' is not a percent-encoded title: {1}")]
    Encoding(String, String),
}

/// A checked, NFC-normalised title (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Title(String);

impl Title {
    /// Normalises `text` to NFC and checks it against the rule.
    pub fn new(text: &str) -> Result<Title, TitleError> {
        let title: String = text.nfc().collect();
        if title.is_empty() {
            return Err(TitleError::Empty);
        }
        if title.len() > MAX_TITLE_BYTES {
            return Err(TitleError::TooLong(title.len()));
        }
        if title.chars().any(char::is_control) {
            return Err(TitleError::Control(title.escape_debug().to_string()));
        }
        let segments: Vec<&str> = title.split('/').collect();
        if segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(TitleError::BadSegment(title));
        }
        if let Some(long) = segments.iter().find(|s| s.len() > MAX_SEGMENT_BYTES) {
            return Err(TitleError::SegmentTooLong(long.len()));
        }
        let folders = &segments[..segments.len() - 1];
        if folders.iter().any(|s| s.ends_with(BUNDLE_SUFFIX)) {
            return Err(TitleError::BundleFolder(title));
        }
        Ok(Title(title))
    }

    /// The title from a URL path segment run as a viewer or a client sent it
    /// (`My%20Show/%C3%89pisode%201`): percent-decoded (`+` is a `+`), then [`Title::new`].
    pub fn from_encoded(path: &str) -> Result<Title, TitleError> {
        let decoded = percent::decode(path, Plus::Literal)
            .map_err(|e| TitleError::Encoding(path.to_string(), e.to_string()))?;
        Title::new(&decoded)
    }

    /// The title's bundle below an output prefix, if `key` is an object in one:
    /// `hls/a/b.hls/manifest.json` → (`a/b`, `manifest.json`).
    pub fn from_key<'k>(output_prefix: &str, key: &'k str) -> Option<(Title, &'k str)> {
        let rel = key.strip_prefix(output_prefix)?;
        let marker = format!("{BUNDLE_SUFFIX}/");
        // The first folder ending in the suffix ends the title: no earlier folder may.
        let at = rel.find(&marker)?;
        let title = Title::new(&rel[..at]).ok()?;
        Some((title, &rel[at + marker.len()..]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The store key prefix of the title's objects: `<output_prefix><title>.hls/`.
    pub fn folder(&self, output_prefix: &str) -> String {
        format!("{output_prefix}{}{BUNDLE_SUFFIX}/", self.0)
    }

    /// The same folder as a URL path (without the leading `/`), percent-encoded.
    pub fn url_folder(&self, output_prefix: &str) -> String {
        percent::encode(&self.folder(output_prefix), percent::is_unreserved_or_slash)
    }

    /// The title itself percent-encoded, for API paths (`/v1/titles/<encoded>/playback`).
    pub fn encoded(&self) -> String {
        percent::encode(&self.0, percent::is_unreserved_or_slash)
    }
}

impl fmt::Display for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Title {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Title {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_unicode_is_a_title_in_nfc() {
        for name in [
            "My Trip/Day 1 – Beach",
            "a+b & c's #1 100%",
            "🎬/ünïcødé",
            "what?/star*",
            "Wait... what",
            "show.hls",
        ] {
            assert_eq!(Title::new(name).unwrap().as_str(), name);
        }
        // "é" as e + combining acute (what macOS file names hold) is the same title as "é".
        let nfd = "Cafe\u{301}";
        assert_eq!(Title::new(nfd).unwrap(), Title::new("Café").unwrap());
        assert_eq!(Title::new(nfd).unwrap().as_str(), "Caf\u{e9}");
    }

    #[test]
    fn refusals_name_the_reason() {
        assert_eq!(Title::new(""), Err(TitleError::Empty));
        for bad in ["/a", "a/", "a//b", ".", "..", "a/../b", "a/./b"] {
            assert!(
                matches!(Title::new(bad), Err(TitleError::BadSegment(_))),
                "{bad}"
            );
        }
        assert!(matches!(Title::new("a\nb"), Err(TitleError::Control(_))));
        assert!(matches!(Title::new("a\u{7f}"), Err(TitleError::Control(_))));
        assert_eq!(Title::new(&"x".repeat(513)), Err(TitleError::TooLong(513)));
        assert!(Title::new(&format!("{}/{}", "é".repeat(125), "é".repeat(125))).is_ok());
        // Regression (reliability issue, item 11): a 256-byte part was a 500 (the folder
        // store could not make the file name) instead of a refusal.
        assert_eq!(
            Title::new(&"x".repeat(256)),
            Err(TitleError::SegmentTooLong(256))
        );
        assert!(Title::new(&"x".repeat(250)).is_ok());
        assert!(matches!(
            Title::new("show.hls/ep1"),
            Err(TitleError::BundleFolder(_))
        ));
    }

    #[test]
    fn no_bundle_is_a_prefix_of_another_regression_show_cookie_opens_show_ep1() {
        let names = [
            "show",
            "show/ep1",
            "show/ep1/extra",
            "show.hls",
            "show.h",
            "sho",
            "showx/ep1",
        ];
        let folders: Vec<String> = names
            .iter()
            .map(|n| Title::new(n).unwrap().url_folder("hls/"))
            .collect();
        for (i, a) in folders.iter().enumerate() {
            for (j, b) in folders.iter().enumerate() {
                assert!(i == j || !b.starts_with(a.as_str()), "{a} opens {b}");
            }
        }
    }

    #[test]
    fn encoding_round_trips_and_never_leaves_a_wildcard() {
        let title = Title::new("My Trip/Day 1 – Beach?*+'&#%").unwrap();
        let url = title.url_folder("hls/");
        assert_eq!(
            url,
            "hls/My%20Trip/Day%201%20%E2%80%93%20Beach%3F%2A%2B%27%26%23%25.hls/"
        );
        assert!(!url.contains(['*', '?', ' ']));
        assert_eq!(Title::from_encoded(&title.encoded()).unwrap(), title);
        assert!(Title::from_encoded("a%2").is_err());
    }

    #[test]
    fn keys_map_back_to_titles() {
        let title = Title::new("a b/c").unwrap();
        let key = format!("{}v/0123/init.mp4", title.folder("hls/"));
        assert_eq!(
            Title::from_key("hls/", &key),
            Some((title, "v/0123/init.mp4"))
        );
        for name in ["show.hls", "a.hls x/ep", "ép 1/x"] {
            let title = Title::new(name).unwrap();
            let key = format!("{}manifest.json", title.folder("hls/"));
            assert_eq!(
                Title::from_key("hls/", &key),
                Some((title, "manifest.json"))
            );
        }
        assert_eq!(Title::from_key("hls/", "hls/plain/master.m3u8"), None);
        assert_eq!(Title::from_key("hls/", "other/a.hls/master.m3u8"), None);
    }
}
