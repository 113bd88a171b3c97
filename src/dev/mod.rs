//! The embedded default (`hlspipe dev`): what it needs besides the edge, the API and
//! the worker, which it only wires together. A development signing key kept in the
//! data folder, the list of titles for the player page, and the page itself.

pub mod lanes;
pub mod watch;

use crate::delivery::sign::PrivateKey;
use crate::error::{Error, Result};
use crate::pipeline::manifest::{JobProgress, Manifest, State, MANIFEST_KEY};
use crate::store::Store;
use crate::title::Title;
use std::path::Path;

/// The key-pair id the development key signs as. CloudFront ids are opaque strings;
/// this one says what it is wherever it shows up.
pub const DEV_KEY_PAIR_ID: &str = "HLSPIPEDEVKEY";

/// The player page served at `/`.
pub const PLAYER_PAGE: &str = include_str!("player.html");

/// A sample title packaged at first start, so there is something to watch at once
/// (`fixtures/media/h264_aac_faststart.mp4`: 10 s of test pattern and a tone).
pub const SAMPLE_MP4: &[u8] = include_bytes!("../../fixtures/media/h264_aac_faststart.mp4");

/// Loads the development signing key from `path`, or makes a new RSA-2048 key there
/// (mode 0600) the first time, so cookies stay valid across restarts.
pub fn dev_key(path: &Path) -> Result<PrivateKey> {
    let io = |e: std::io::Error| Error::Io {
        what: path.display().to_string(),
        source: e,
    };
    let key_err = |reason: String| Error::Key {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => return PrivateKey::from_pem(&pem).map_err(|e| key_err(e.to_string())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
        .map_err(|e| key_err(format!("generating: {e}")))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| key_err(format!("encoding: {e}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    write_private(path, pem.as_bytes()).map_err(io)?;
    PrivateKey::from_pem(&pem).map_err(|e| key_err(e.to_string()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// One title as the player page lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TitleSummary {
    /// The title (`My Show/ep1`): what the playback API takes, percent-encoded.
    pub title: String,
    /// The title percent-encoded for a URL path (`My%20Show/ep1`).
    pub encoded: String,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `WxH` of the largest video rendition, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Whether a version is playable (a master exists), whatever the latest job did.
    pub playable: bool,
    /// How far the running job is (`encoding`, `publishing`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<JobProgress>,
}

/// Every title under `output_prefix`, read from the manifests, sorted by title.
pub fn titles(store: &dyn Store, output_prefix: &str) -> Result<Vec<TitleSummary>> {
    let mut out = Vec::new();
    for info in store.list(output_prefix)? {
        let Some((title, MANIFEST_KEY)) = Title::from_key(output_prefix, &info.key) else {
            continue;
        };
        let dir = title.folder(output_prefix);
        // A manifest that cannot be read is listed as failed, not hidden.
        let manifest = store
            .get(&info.key)?
            .ok_or_else(|| Error::store_retryable(&info.key, "vanished while listing"))
            .and_then(|b| Manifest::parse(&b));
        let playable = store.head(&format!("{dir}master.m3u8"))?.is_some();
        out.push(match manifest {
            Ok(m) => TitleSummary {
                title: title.to_string(),
                encoded: title.encoded(),
                state: m.state,
                duration: m.duration,
                error: m.error,
                resolution: m
                    .renditions
                    .iter()
                    .filter_map(|r| r.resolution)
                    .max_by_key(|&(w, h)| u32::from(w) * u32::from(h))
                    .map(|(w, h)| format!("{w}x{h}")),
                playable,
                progress: m.progress,
            },
            Err(e) => TitleSummary {
                title: title.to_string(),
                encoded: title.encoded(),
                state: State::Failed,
                duration: None,
                error: Some(e.to_string()),
                resolution: None,
                playable,
                progress: None,
            },
        });
    }
    out.sort_by(|a, b| a.title.cmp(&b.title));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DirStore;

    #[test]
    fn a_title_being_published_is_listed_playable_with_its_progress() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("hls/talk.hls");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("manifest.json"),
            r#"{"state":"publishing","sources":[],"version":"v1","target_version":"v1","started_at":1,
                "progress":{"stage":"publishing","done":12,"total":60,"unit":"segments","at":2,"playable_seconds":12.0}}"#,
        )
        .unwrap();
        std::fs::write(folder.join("master.m3u8"), "#EXTM3U\n").unwrap();
        let listed = titles(&DirStore::new(dir.path()), "hls/").unwrap();
        assert_eq!(listed.len(), 1);
        let t = &listed[0];
        assert_eq!(
            (t.title.as_str(), t.state, t.playable),
            ("talk", State::Publishing, true)
        );
        let progress = t.progress.as_ref().unwrap();
        assert_eq!((progress.done, progress.total), (12.0, 60.0));
        assert_eq!(progress.playable_seconds, Some(12.0));
    }
}
