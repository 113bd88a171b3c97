//! Subtitle side files through the job on the S3 store (a real S3 server on 127.0.0.1):
//! the side file's upload publishes its title again with a WebVTT rendition, its removal
//! publishes it without, and the title stays.

use crate::support::fixture;
use crate::support::s3::S3Server;
use hlspipe::media::object::{Body, Object};
use hlspipe::media::source::{FileSource, Source};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::pipeline::event::{Job, Record, RecordKind};
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::store::Store;
use std::sync::Arc;

const BUCKET: &str = "t-subtitles";

fn record(kind: RecordKind, key: &str, etag: Option<String>) -> Record {
    Record {
        reprocess: false,
        kind,
        job: Job {
            bucket: BUCKET.into(),
            key: key.into(),
            etag,
            size: None,
            sequencer: None,
        },
        message_id: None,
    }
}

fn put(store: &dyn Store, key: &str, body: Body, sources: &[Arc<dyn Source>]) -> String {
    let obj = Object {
        key: key.into(),
        content_type: "application/octet-stream",
        cache_control: "no-cache",
        body,
    };
    store.put(key, &obj, sources).unwrap();
    store.head(key).unwrap().unwrap().etag
}

#[test]
fn side_file_upload_and_removal_republish_the_title_on_s3() {
    let server = S3Server::shared();
    let store: Arc<dyn Store> = server.bucket(BUCKET);
    let config = PipelineConfig::default();
    let pipeline = crate::support::pipeline(&config);
    let video: Arc<dyn Source> =
        Arc::new(FileSource::open(&fixture("tiny_faststart.mp4")).unwrap());
    let mut body = Body::default();
    body.push_source(0, 0, video.len());
    let etag = put(store.as_ref(), "uploads/ep1.mp4", body, &[video]);
    let first = pipeline.handle_record(
        &store,
        &record(RecordKind::Created, "uploads/ep1.mp4", Some(etag)),
    );
    assert!(matches!(first, Outcome::Processed { .. }), "{first:?}");

    let srt = Body::from_bytes(b"00:00:00,100 --> 00:00:00,900\nHi\n".to_vec());
    let key = "uploads/ep1.en.sdh.srt";
    let etag = put(store.as_ref(), key, srt, &[]);
    let with = pipeline.handle_record(&store, &record(RecordKind::Created, key, Some(etag)));
    assert!(matches!(with, Outcome::Processed { .. }), "{with:?}");
    let master = String::from_utf8(store.get("hls/ep1.hls/master.m3u8").unwrap().unwrap()).unwrap();
    assert!(
        master.contains("LANGUAGE=\"en\",NAME=\"English (SDH)\",AUTOSELECT=YES,CHARACTERISTICS="),
        "{master}"
    );
    let uri = master
        .lines()
        .find(|l| l.contains("TYPE=SUBTITLES"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .unwrap();
    let segment = uri.replace("index.m3u8", "seg_00001.vtt");
    let vtt = store
        .get(&format!("hls/ep1.hls/{segment}"))
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&vtt).ends_with("00:00:00.100 --> 00:00:00.900\nHi\n\n"));

    store.delete(key).unwrap();
    let without = pipeline.handle_record(&store, &record(RecordKind::Removed, key, None));
    assert!(matches!(without, Outcome::Processed { .. }), "{without:?}");
    let master = String::from_utf8(store.get("hls/ep1.hls/master.m3u8").unwrap().unwrap()).unwrap();
    assert!(!master.contains("SUBTITLES"), "{master}");
}
