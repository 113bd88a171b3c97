//! The titles the dev page lists: every title under the output prefix, read from its
//! manifest, and every upload the worker has not started on yet (`queued`).

use crate::error::{Error, Result};
use crate::media::model::TrackKind;
use crate::media::package::TrackOutcome;
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::job::side_file_prefix;
use crate::pipeline::keys::{classify_key, KeyRole};
use crate::pipeline::manifest::{
    read_manifest, JobProgress, Manifest, State, MANIFEST_KEY, MASTER_KEY,
};
use crate::store::Store;
use crate::title::Title;
use std::collections::BTreeMap;

/// Where a title is, as the page shows it: the manifest's state, or `queued` for an upload
/// no job has written a manifest for yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shown {
    Queued,
    Processing,
    Publishing,
    Complete,
    Failed,
}

impl From<State> for Shown {
    fn from(state: State) -> Shown {
        match state {
            State::Processing => Shown::Processing,
            State::Publishing => Shown::Publishing,
            State::Complete => Shown::Complete,
            State::Failed => Shown::Failed,
        }
    }
}

/// One rendition of the live version, as the page describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RenditionSummary {
    pub name: String,
    pub kind: TrackKind,
    pub codecs: String,
    /// Peak bit rate, bits/s.
    pub bandwidth: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// One title as the player page lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TitleSummary {
    /// The title (`My Show/ep1`): what the playback API takes, percent-encoded.
    pub title: String,
    /// The title percent-encoded for a URL path (`My%20Show/ep1`).
    pub encoded: String,
    pub state: Shown,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Why the last job failed, in the job's words.
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
    /// The uploads the title is made from (keys in the bucket).
    pub sources: Vec<String>,
    pub renditions: Vec<RenditionSummary>,
    /// Languages of the audio renditions (`und` when unknown), in the master's order.
    pub audio: Vec<String>,
    /// Languages of the subtitle renditions.
    pub subtitles: Vec<String>,
    /// Tracks of the inputs that did not become a rendition, and why (`input #2: skipped:
    /// …`).
    pub skipped_tracks: Vec<String>,
    /// Bytes the title's outputs take in the bucket (every version kept).
    pub bytes: u64,
}

/// Every title under the output prefix, from the manifests, and every upload under the input
/// prefix that has none yet (`queued`), sorted by title. Two listings, a page at a time.
pub fn titles(store: &dyn Store, config: &PipelineConfig) -> Result<Vec<TitleSummary>> {
    let out_prefix = config.output_prefix.as_str();
    let mut manifests = Vec::new();
    let mut bytes: BTreeMap<Title, u64> = BTreeMap::new();
    let mut masters = std::collections::BTreeSet::new();
    store.list_pages(out_prefix, &mut |page| {
        for info in page {
            let Some((title, rest)) = Title::from_key(out_prefix, &info.key) else {
                continue;
            };
            match rest {
                MANIFEST_KEY => manifests.push(info.key.clone()),
                MASTER_KEY => {
                    masters.insert(title.clone());
                }
                _ => {}
            }
            *bytes.entry(title).or_default() += info.size;
        }
        Ok(true)
    })?;
    let mut out = BTreeMap::new();
    for key in manifests {
        let Some((title, _)) = Title::from_key(out_prefix, &key) else {
            continue;
        };
        // A manifest that cannot be read is listed as failed, not hidden.
        let manifest = store
            .get(&key)?
            .ok_or_else(|| Error::store_retryable(&key, "vanished while listing"))
            .and_then(|b| Manifest::parse(&b));
        let mut summary = match manifest {
            Ok(m) => from_manifest(&title, m),
            Err(e) => TitleSummary {
                error: Some(e.to_string()),
                ..blank(&title, Shown::Failed)
            },
        };
        summary.playable = masters.contains(&title);
        summary.bytes = bytes.get(&title).copied().unwrap_or(0);
        out.insert(title, summary);
    }
    store.list_pages(&config.input_prefix, &mut |page| {
        for info in page {
            if let KeyRole::Media { title } | KeyRole::TitleManifest { title } =
                classify_key(config, &info.key)
            {
                out.entry(title.clone()).or_insert_with(|| TitleSummary {
                    sources: vec![info.key.clone()],
                    ..blank(&title, Shown::Queued)
                });
            }
        }
        Ok(true)
    })?;
    Ok(out.into_values().collect())
}

/// The upload keys `title` is made of: its manifest's sources or, before a job has written
/// one, the uploads that are this title (a listing of the title's own keys, not of the
/// catalogue).
pub fn uploads_of(
    store: &dyn Store,
    config: &PipelineConfig,
    title: &Title,
) -> Result<Vec<String>> {
    if let Some(m) = read_manifest(store, &title.folder(&config.output_prefix))? {
        if !m.sources.is_empty() {
            return Ok(m.sources.into_iter().map(|s| s.key).collect());
        }
    }
    let mut found = Vec::new();
    store.list_pages(&side_file_prefix(config, title), &mut |page| {
        found.extend(page.into_iter().map(|o| o.key).filter(|key| {
            matches!(
                classify_key(config, key),
                KeyRole::Media { title: t } | KeyRole::TitleManifest { title: t } if t == *title
            )
        }));
        Ok(true)
    })?;
    Ok(found)
}

fn blank(title: &Title, state: Shown) -> TitleSummary {
    TitleSummary {
        title: title.to_string(),
        encoded: title.encoded(),
        state,
        duration: None,
        error: None,
        resolution: None,
        playable: false,
        progress: None,
        sources: Vec::new(),
        renditions: Vec::new(),
        audio: Vec::new(),
        subtitles: Vec::new(),
        skipped_tracks: Vec::new(),
        bytes: 0,
    }
}

fn from_manifest(title: &Title, m: Manifest) -> TitleSummary {
    let languages = |kind: TrackKind| -> Vec<String> {
        m.renditions
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.language.clone().unwrap_or_else(|| "und".into()))
            .collect()
    };
    let skipped_tracks = m
        .tracks
        .iter()
        .filter_map(|t| match &t.outcome {
            TrackOutcome::Skipped { reason } => Some(format!(
                "{} track {}{}: {reason}",
                t.input,
                t.track,
                t.codec
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            )),
            _ => None,
        })
        .collect();
    TitleSummary {
        duration: m.duration,
        error: m.error.clone(),
        resolution: m
            .renditions
            .iter()
            .filter_map(|r| r.resolution)
            .max_by_key(|&(w, h)| u32::from(w) * u32::from(h))
            .map(|(w, h)| format!("{w}x{h}")),
        progress: m.progress.clone(),
        sources: m.sources.iter().map(|s| s.key.clone()).collect(),
        audio: languages(TrackKind::Audio),
        subtitles: languages(TrackKind::Subtitles),
        renditions: m
            .renditions
            .iter()
            .map(|r| RenditionSummary {
                name: r.name.clone(),
                kind: r.kind,
                codecs: r.codecs.clone(),
                bandwidth: r.bandwidth,
                resolution: r.resolution.map(|(w, h)| format!("{w}x{h}")),
                language: r.language.clone(),
            })
            .collect(),
        skipped_tracks,
        ..blank(title, m.state.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DirStore;

    fn config() -> PipelineConfig {
        PipelineConfig::default().validate().unwrap()
    }

    #[test]
    fn a_title_being_published_is_listed_playable_with_its_progress() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("hls/talk.hls");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("manifest.json"),
            r#"{"state":"publishing","sources":[{"key":"uploads/talk.mp4","size":9}],"version":"v1","target_version":"v1","started_at":1,
                "progress":{"stage":"publishing","done":12,"total":60,"unit":"segments","at":2,"playable_seconds":12.0}}"#,
        )
        .unwrap();
        std::fs::write(folder.join("master.m3u8"), "#EXTM3U\n").unwrap();
        let listed = titles(&DirStore::new(dir.path()), &config()).unwrap();
        assert_eq!(listed.len(), 1);
        let t = &listed[0];
        assert_eq!(
            (t.title.as_str(), t.state, t.playable),
            ("talk", Shown::Publishing, true)
        );
        let progress = t.progress.as_ref().unwrap();
        assert_eq!((progress.done, progress.total), (12.0, 60.0));
        assert_eq!(progress.playable_seconds, Some(12.0));
        assert_eq!(t.sources, ["uploads/talk.mp4"]);
        let on_disk = std::fs::metadata(folder.join("manifest.json"))
            .unwrap()
            .len()
            + 8;
        assert_eq!(t.bytes, on_disk);
    }

    /// An upload without a manifest is queued; one with a manifest is not listed twice; a
    /// file the worker would not take is not listed.
    #[test]
    fn uploads_not_started_are_queued() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = dir.path().join("uploads/My Show");
        std::fs::create_dir_all(&uploads).unwrap();
        std::fs::write(uploads.join("Épisode 1.mp4"), b"x").unwrap();
        std::fs::write(uploads.join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("uploads/done.mp4"), b"x").unwrap();
        let folder = dir.path().join("hls/done.hls");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("manifest.json"),
            r#"{"state":"failed","sources":[{"key":"uploads/done.mp4","size":1}],"error":"not an MP4","started_at":1}"#,
        )
        .unwrap();
        let listed = titles(&DirStore::new(dir.path()), &config()).unwrap();
        let shown: Vec<(&str, Shown)> =
            listed.iter().map(|t| (t.title.as_str(), t.state)).collect();
        assert_eq!(
            shown,
            [
                ("My Show/Épisode 1", Shown::Queued),
                ("done", Shown::Failed)
            ]
        );
        assert_eq!(listed[1].error.as_deref(), Some("not an MP4"));
        let store = DirStore::new(dir.path());
        let of = |t: &str| uploads_of(&store, &config(), &Title::new(t).unwrap()).unwrap();
        assert_eq!(of("My Show/Épisode 1"), ["uploads/My Show/Épisode 1.mp4"]);
        assert_eq!(of("done"), ["uploads/done.mp4"]);
        assert!(of("My Show/notes").is_empty());
        assert_eq!(listed[0].encoded, "My%20Show/%C3%89pisode%201");
    }
}
