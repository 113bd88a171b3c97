//! The publish protocol, observed through a store that records every call:
//! segments and init segments first, then media playlists, then the master flip;
//! a failed write stops the flip.

use hlspipe::media::object::Object;
use hlspipe::media::package::{package, Input, Settings};
use hlspipe::media::source::{FileSource, Source};
use hlspipe::pipeline::publish::{publish, PublishOptions};
use hlspipe::store::{DirStore, ObjectInfo, Store};
use hlspipe::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Records the keys written, and fails the `fail_at`-th put (1-based) if set.
struct Recording {
    inner: DirStore,
    puts: Mutex<Vec<String>>,
    count: AtomicUsize,
    fail_at: Option<usize>,
}

impl Store for Recording {
    fn put(&self, key: &str, obj: &Object, sources: &[Arc<dyn Source>]) -> Result<()> {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == self.fail_at {
            return Err(Error::store_retryable(key, "injected failure"));
        }
        self.inner.put(key, obj, sources)?;
        self.puts.lock().unwrap().push(key.to_string());
        Ok(())
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn read_range(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_range(key, offset, buf)
    }
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.inner.head(key)
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
}

fn title() -> (hlspipe::media::package::PackagedTitle, Vec<Arc<dyn Source>>) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/media/two_audio_langs.mp4");
    let source: Arc<dyn Source> = Arc::new(FileSource::open(&path).unwrap());
    let title = package(
        &[Input {
            source: Arc::clone(&source),
            etag: None,
        }],
        &Settings::default(),
    )
    .unwrap();
    (title, vec![source])
}

fn recording(dir: &std::path::Path, fail_at: Option<usize>) -> Recording {
    Recording {
        inner: DirStore::new(dir),
        puts: Mutex::new(Vec::new()),
        count: AtomicUsize::new(0),
        fail_at,
    }
}

#[test]
fn segments_then_media_playlists_then_the_master() {
    let tmp = tempfile::tempdir().unwrap();
    let store = recording(tmp.path(), None);
    let (title, sources) = title();
    let opts = PublishOptions {
        prefix: "hls/t/",
        concurrency: 4,
        progress: &|_| {},
        before_flip: None,
    };
    publish(&store, &title, &sources, &opts).unwrap();
    let puts = store.puts.into_inner().unwrap();
    let kind = |k: &str| {
        if k == "hls/t/master.m3u8" {
            2
        } else if k.ends_with(".m3u8") {
            1
        } else {
            0
        }
    };
    let kinds: Vec<u8> = puts.iter().map(|k| kind(k)).collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(kinds, sorted, "publish order broken: {puts:#?}");
    assert_eq!(puts.last().map(String::as_str), Some("hls/t/master.m3u8"));
    // video + 2 audio: 3 media playlists and one I-frame playlist.
    assert_eq!(kinds.iter().filter(|&&k| k == 1).count(), 4);
    let expected = title.media.len() + title.playlists.len() + 1;
    assert_eq!(puts.len(), expected);
}

#[test]
fn a_failed_write_never_flips_the_master() {
    let (title, sources) = title();
    let total = title.media.len() + title.playlists.len() + 1;
    for fail_at in [1, total / 2, total - 1, total] {
        let tmp = tempfile::tempdir().unwrap();
        let store = recording(tmp.path(), Some(fail_at));
        let opts = PublishOptions {
            prefix: "",
            concurrency: 3,
            progress: &|_| {},
            before_flip: None,
        };
        let err = publish(&store, &title, &sources, &opts).unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(
            !tmp.path().join("master.m3u8").exists(),
            "master written after failure at put {fail_at}"
        );
    }
}
