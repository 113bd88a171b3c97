//! Buckets as folders (`HLSPIPE_STORE=file://…`) for the worker and event tests, and
//! `hlspipe process-event` run on them.

use super::hlspipe_isolated;
use hlspipe::pipeline::event::{Job, Record, RecordKind};
use hlspipe::store::{DirStore, Store};
use std::path::{Path, PathBuf};
use std::process::Output;

pub const BUCKET: &str = "hlspipe-media";

/// A folder of buckets (`HLSPIPE_STORE=file://<root>`), with [`BUCKET`] in it.
pub struct Buckets {
    pub dir: tempfile::TempDir,
}

impl Buckets {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(BUCKET)).unwrap();
        Buckets { dir }
    }

    pub fn bucket(&self) -> PathBuf {
        self.dir.path().join(BUCKET)
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    pub fn store(&self) -> DirStore {
        DirStore::new(self.bucket())
    }

    /// Copies `file` to `key` and returns the store's ETag for it.
    pub fn put_file(&self, key: &str, file: &Path) -> String {
        let path = self.bucket().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(file, &path).unwrap();
        self.store().head(key).unwrap().unwrap().etag
    }

    pub fn put_bytes(&self, key: &str, bytes: &[u8]) -> String {
        let path = self.bucket().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        self.store().head(key).unwrap().unwrap().etag
    }

    pub fn exists(&self, key: &str) -> bool {
        self.bucket().join(key).is_file()
    }

    pub fn read(&self, key: &str) -> Vec<u8> {
        std::fs::read(self.bucket().join(key)).unwrap()
    }

    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.store()
            .list(prefix)
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    pub fn manifest(&self, title_prefix: &str) -> serde_json::Value {
        serde_json::from_slice(&self.read(&format!("{title_prefix}manifest.json"))).unwrap()
    }
}

/// Runs `hlspipe process-event EVENT [args]` on `event` (JSON text), with `env` as the only
/// `HLSPIPE_*` variables besides `HLSPIPE_STORE` (see [`hlspipe_isolated`]).
pub fn process_event(
    buckets: &Buckets,
    event: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let file = buckets.dir.path().join(format!(
        "event-{}.json",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::write(&file, event).unwrap();
    let mut cmd = hlspipe_isolated();
    cmd.arg("process-event").arg(&file);
    cmd.env("HLSPIPE_STORE", buckets.url());
    cmd.envs(env.iter().copied()).args(args);
    cmd.output().unwrap()
}

/// An event record for `key` in [`BUCKET`], as the event parser would make it.
pub fn record(kind: RecordKind, key: &str, etag: Option<&str>) -> Record {
    Record {
        reprocess: false,
        kind,
        job: Job {
            bucket: BUCKET.into(),
            key: key.into(),
            etag: etag.map(String::from),
            size: None,
            sequencer: None,
        },
        message_id: None,
    }
}
