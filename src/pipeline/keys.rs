//! What an input key is: a media file (a title of its own), a title manifest (several
//! files, one title), or not work, and why. Title manifests are described in
//! [`crate::pipeline::job`].

use crate::error::{Error, Result};
use crate::media::text::SideFileName;
use crate::pipeline::config::PipelineConfig;
use crate::title::Title;
use serde::{Deserialize, Serialize};

/// File name suffix of a title manifest (matched ignoring ASCII case).
pub const TITLE_MANIFEST_SUFFIX: &str = ".title.json";
pub(crate) const TITLE_MANIFEST_MAX_BYTES: u64 = 64 * 1024;
const TITLE_MANIFEST_MAX_INPUTS: usize = 16;
/// What a key under the input prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRole {
    /// A media file: a title of its own, unless a title manifest beside it names it.
    Media { title: Title },
    /// A title manifest (`<title>.title.json`).
    TitleManifest { title: Title },
    /// A subtitle side file (`<title>.<lang>[.forced|.sdh|.cc].srt|vtt`) of `title`: its
    /// upload or removal re-publishes the title, never removes it.
    Subtitles { title: Title },
    /// Not work, and why.
    Ignored(String),
}

/// Maps a store key to its role: `uploads/shows/ep1.mp4` → media of title `shows/ep1`.
pub fn classify_key(config: &PipelineConfig, key: &str) -> KeyRole {
    if key.starts_with(&config.output_prefix) {
        return KeyRole::Ignored(format!(
            "'{key}' is under the output prefix '{}': hlspipe's own output is never processed",
            config.output_prefix
        ));
    }
    let Some(rel) = key.strip_prefix(&config.input_prefix) else {
        return KeyRole::Ignored(format!(
            "'{key}' is outside the input prefix '{}'",
            config.input_prefix
        ));
    };
    // ASCII lower-casing keeps byte offsets, so the stem can be cut from `rel` itself.
    let lower = rel.to_ascii_lowercase();
    let (stem, manifest) = if lower.ends_with(TITLE_MANIFEST_SUFFIX) {
        (&rel[..rel.len() - TITLE_MANIFEST_SUFFIX.len()], true)
    } else if let Some(ext) = config
        .extensions
        .iter()
        .find(|e| lower.ends_with(e.as_str()))
    {
        (&rel[..rel.len() - ext.len()], false)
    } else if let Some(side) = SideFileName::parse(rel) {
        return match Title::new(&side.stem) {
            Ok(title) => KeyRole::Subtitles { title },
            Err(reason) => KeyRole::Ignored(format!("'{key}': {reason}")),
        };
    } else {
        return KeyRole::Ignored(format!(
            "'{key}' is not media (accepted: {}, subtitles '*.srt' '*.vtt' beside a video, \
             or a title manifest '*{TITLE_MANIFEST_SUFFIX}')",
            config.extensions.join(" ")
        ));
    };
    let title = match Title::new(stem) {
        Ok(title) => title,
        Err(reason) => return KeyRole::Ignored(format!("'{key}': {reason}")),
    };
    if manifest {
        KeyRole::TitleManifest { title }
    } else {
        KeyRole::Media { title }
    }
}

/// A title manifest (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TitleManifest {
    /// Keys relative to the input prefix, in ladder order (the first video is the
    /// reference for segment cuts).
    pub inputs: Vec<String>,
}

impl TitleManifest {
    /// Parses and checks a title manifest stored at `key`; returns the inputs' full keys.
    pub fn parse(config: &PipelineConfig, key: &str, bytes: &[u8]) -> Result<Vec<String>> {
        let err = |reason: String| Error::TitleManifest {
            key: key.to_string(),
            reason,
        };
        let m: TitleManifest = serde_json::from_slice(bytes)
            .map_err(|e| err(format!("not a title manifest ({{\"inputs\": [...]}}): {e}")))?;
        if m.inputs.is_empty() || m.inputs.len() > TITLE_MANIFEST_MAX_INPUTS {
            return Err(err(format!(
                "'inputs' must name 1 to {TITLE_MANIFEST_MAX_INPUTS} files, not {}",
                m.inputs.len()
            )));
        }
        let folder = parent(key);
        let mut keys: Vec<String> = Vec::with_capacity(m.inputs.len());
        for input in &m.inputs {
            let full = format!("{}{input}", config.input_prefix);
            match classify_key(config, &full) {
                KeyRole::Media { .. } => {}
                KeyRole::TitleManifest { .. } => {
                    return Err(err(format!("input '{input}' is a title manifest")))
                }
                KeyRole::Subtitles { .. } => {
                    return Err(err(format!(
                        "input '{input}' is a subtitle file; put it beside the title \
                         manifest as '<title>.<language>.srt'"
                    )))
                }
                KeyRole::Ignored(reason) => {
                    return Err(err(format!("input '{input}' cannot be used: {reason}")))
                }
            }
            if parent(&full) != folder {
                return Err(err(format!(
                    "input '{input}' is not in the title manifest's folder '{folder}'"
                )));
            }
            if keys.contains(&full) {
                return Err(err(format!("input '{input}' is named twice")));
            }
            keys.push(full);
        }
        Ok(keys)
    }
}

/// `a/b/c.mp4` → `a/b/`; `c.mp4` → ``.
pub(crate) fn parent(key: &str) -> &str {
    match key.rfind('/') {
        Some(i) => &key[..=i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PipelineConfig {
        PipelineConfig::default()
    }

    #[test]
    fn keys_map_to_titles() {
        let c = config();
        assert_eq!(
            classify_key(&c, "uploads/shows/ep1.mp4"),
            KeyRole::Media {
                title: Title::new("shows/ep1").unwrap()
            }
        );
        assert_eq!(
            classify_key(&c, "uploads/Shows/Épisode 1.MOV"),
            KeyRole::Media {
                title: Title::new("Shows/Épisode 1").unwrap()
            }
        );
        // `?` and `*` are percent-encoded on the CDN and in policies: ordinary characters.
        assert_eq!(
            classify_key(&c, "uploads/what?*.mp4"),
            KeyRole::Media {
                title: Title::new("what?*").unwrap()
            }
        );
        assert_eq!(
            classify_key(&c, "uploads/shows/ep1.Title.JSON"),
            KeyRole::TitleManifest {
                title: Title::new("shows/ep1").unwrap()
            }
        );
        for key in [
            "hls/shows/ep1/master.m3u8",
            "hls/shows/ep1.mp4",
            "other/ep1.mp4",
            "uploads/notes.txt",
            "uploads/shows/",
            "uploads/.mp4",
            "uploads/a//b.mp4",
            "uploads/a/../b.mp4",
            "uploads/show.hls/ep1.mp4",
        ] {
            assert!(
                matches!(classify_key(&c, key), KeyRole::Ignored(_)),
                "{key}"
            );
        }
    }

    #[test]
    fn side_files_belong_to_the_video_beside_them() {
        let c = config();
        for (key, title) in [
            ("uploads/shows/ep1.en.srt", "shows/ep1"),
            ("uploads/shows/ep1.pt-BR.forced.VTT", "shows/ep1"),
            ("uploads/My.Show.en.vtt", "My.Show"),
            ("uploads/ep1.srt", "ep1"),
        ] {
            assert_eq!(
                classify_key(&c, key),
                KeyRole::Subtitles {
                    title: Title::new(title).unwrap()
                },
                "{key}"
            );
        }
        for key in [
            "uploads/.en.srt",
            "uploads/a//b.en.srt",
            "hls/t/v/1/subs_en/seg_00001.vtt",
        ] {
            assert!(
                matches!(classify_key(&c, key), KeyRole::Ignored(_)),
                "{key}"
            );
        }
    }

    #[test]
    fn title_manifest_rules() {
        let c = config();
        let key = "uploads/shows/ep1.title.json";
        let ok = TitleManifest::parse(
            &c,
            key,
            br#"{"inputs": ["shows/ep1_1080.mp4", "shows/ep1_720.mp4"]}"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            ["uploads/shows/ep1_1080.mp4", "uploads/shows/ep1_720.mp4"]
        );
        for bad in [
            r#"{"inputs": []}"#,
            r#"{"inputs": ["shows/a.mp4"], "extra": 1}"#,
            r#"{"inputs": ["other/a.mp4"]}"#,
            r#"{"inputs": ["shows/a.txt"]}"#,
            r#"{"inputs": ["shows/a.mp4", "shows/a.mp4"]}"#,
            r#"{"inputs": ["shows/b.title.json"]}"#,
            r#"["shows/a.mp4"]"#,
        ] {
            let err = TitleManifest::parse(&c, key, bad.as_bytes()).unwrap_err();
            assert!(!err.is_retryable(), "{bad}");
        }
    }
}
