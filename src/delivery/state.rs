//! What the playback API knows of a title: its `manifest.json`, read through the store and
//! kept for a few seconds. A title that just completed is playable within that time, an
//! unknown title's 404 is remembered as briefly (a player retrying in a loop costs one read
//! per title per period, not one per request), and a store outage is never cached.

use crate::pipeline::manifest::{Manifest, MANIFEST_KEY};
use crate::store::Store;
use crate::title::Title;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Titles remembered before the oldest entries are dropped.
const CACHE_LIMIT: usize = 8192;

/// Why a title's state could not be read (not: that it has none).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading {key}: {source}")]
    Store {
        key: String,
        source: crate::error::Error,
    },
    #[error("{key} is unreadable: {source}")]
    Unreadable {
        key: String,
        source: crate::error::Error,
    },
}

/// `manifest.json` of titles under one output prefix, cached for `ttl` seconds.
pub struct TitleStates {
    store: Arc<dyn Store>,
    output_prefix: String,
    ttl: u64,
    cache: Mutex<HashMap<Title, Cached>>,
}

/// When a title's state was read, and what it was (`None`: no such title).
type Cached = (u64, Option<Arc<Manifest>>);

impl TitleStates {
    pub fn new(store: Arc<dyn Store>, output_prefix: &str, ttl: u64) -> TitleStates {
        TitleStates {
            store,
            output_prefix: output_prefix.to_owned(),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The title's manifest (`None`: no such title) as of at most `ttl` seconds before `now`.
    /// Blocking: call it on the blocking pool.
    pub fn get(&self, title: &Title, now: u64) -> Result<Option<Arc<Manifest>>, StateError> {
        if let Some(hit) = self.cached(title, now) {
            return Ok(hit);
        }
        let key = format!("{}{MANIFEST_KEY}", title.folder(&self.output_prefix));
        let bytes = self.store.get(&key).map_err(|source| StateError::Store {
            key: key.clone(),
            source,
        })?;
        let manifest = match bytes {
            Some(b) => Some(Arc::new(
                Manifest::parse(&b).map_err(|source| StateError::Unreadable { key, source })?,
            )),
            None => None,
        };
        self.remember(title, now, manifest.clone());
        Ok(manifest)
    }

    fn cached(&self, title: &Title, now: u64) -> Option<Option<Arc<Manifest>>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (at, manifest) = cache.get(title)?;
        (now < at.saturating_add(self.ttl)).then(|| manifest.clone())
    }

    fn remember(&self, title: &Title, now: u64, manifest: Option<Arc<Manifest>>) {
        if self.ttl == 0 {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_LIMIT {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| now < at.saturating_add(ttl));
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
        }
        cache.insert(title.clone(), (now, manifest));
    }
}

/// What a viewer may be given for a title, from its manifest (DESIGN.md "Object layout"):
/// playable whenever the master names a live version, whatever the latest job is doing.
pub fn playable(manifest: &Manifest) -> bool {
    manifest.version.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DirStore;

    fn manifest(state: &str, version: Option<&str>) -> Vec<u8> {
        let mut m = serde_json::json!({"state": state, "sources": [], "started_at": 1});
        if let Some(v) = version {
            m["version"] = v.into();
        }
        serde_json::to_vec(&m).unwrap()
    }

    #[test]
    fn states_are_cached_for_the_ttl_including_unknown_titles() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(DirStore::new(dir.path()));
        let states = TitleStates::new(store, "hls/", 2);
        let title = Title::new("show").unwrap();
        assert!(states.get(&title, 100).unwrap().is_none());
        let path = dir
            .path()
            .join(format!("{}manifest.json", title.folder("hls/")));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, manifest("complete", Some("abc"))).unwrap();
        // The 404 is remembered for the ttl, then the new manifest is read.
        assert!(states.get(&title, 101).unwrap().is_none());
        let m = states.get(&title, 102).unwrap().unwrap();
        assert!(playable(&m));
        std::fs::write(&path, manifest("processing", Some("abc"))).unwrap();
        assert_eq!(states.get(&title, 103).unwrap().unwrap().state, m.state);
        let later = states.get(&title, 104).unwrap().unwrap();
        assert!(
            playable(&later),
            "a live version stays playable while re-processed"
        );
    }

    #[test]
    fn nothing_live_is_not_playable() {
        let m = Manifest::parse(&manifest("processing", None)).unwrap();
        assert!(!playable(&m));
    }
}
