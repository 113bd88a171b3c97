//! The publish protocol, observed through the fake store, which records every put:
//! segments and init segments first, then media playlists, then the master flip;
//! a failed write stops the flip.

use crate::support::fixture;
use crate::support::store::FakeStore;
use hlspipe::media::package::{package, Input, Settings};
use hlspipe::media::source::{FileSource, Source};
use hlspipe::pipeline::publish::{publish, PublishOptions};
use hlspipe::store::DirStore;
use std::sync::Arc;

fn title() -> (hlspipe::media::package::PackagedTitle, Vec<Arc<dyn Source>>) {
    let path = fixture("two_audio_langs.mp4");
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

#[test]
fn segments_then_media_playlists_then_the_master() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FakeStore::new(DirStore::new(tmp.path()));
    let (title, sources) = title();
    let opts = PublishOptions {
        prefix: "hls/t/",
        concurrency: 4,
        progress: &|_| {},
        before_flip: None,
        deadline: None,
    };
    publish(&store, &title, &sources, &opts).unwrap();
    let puts = store.written();
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
        let store = FakeStore::new(DirStore::new(tmp.path())).failing_put(fail_at);
        let opts = PublishOptions {
            prefix: "",
            concurrency: 3,
            progress: &|_| {},
            before_flip: None,
            deadline: None,
        };
        let err = publish(&store, &title, &sources, &opts).unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(
            !tmp.path().join("master.m3u8").exists(),
            "master written after failure at put {fail_at}"
        );
    }
}
