//! Upload events for a bucket that sends none: the embedded default (`hlspipe dev`)
//! lists the input prefix every second and turns what changed into the same
//! records an S3 notification would carry, so the worker cannot tell the
//! difference.
//!
//! An object is reported once it has looked the same (size and modification time)
//! in two polls in a row, so a file still being copied into the folder is not
//! packaged half-written. If a slow copy is caught anyway, its completion changes
//! the size and it is reported again.

use crate::error::Result;
use crate::pipeline::event::{Job, Record, RecordKind};
use crate::store::{ObjectInfo, Store};
use std::collections::BTreeMap;

/// What an object looked like at one poll.
type Look = (u64, Option<u64>, String);

fn look(info: &ObjectInfo) -> Look {
    (info.size, info.last_modified, info.etag.clone())
}

/// Remembers what the input prefix held, poll to poll.
pub struct UploadWatcher {
    bucket: String,
    prefix: String,
    /// Objects already reported, as they were then.
    reported: BTreeMap<String, Look>,
    /// Objects seen changed at the last poll, waiting to look the same once more.
    settling: BTreeMap<String, Look>,
}

impl UploadWatcher {
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        UploadWatcher {
            bucket: bucket.into(),
            prefix: prefix.into(),
            reported: BTreeMap::new(),
            settling: BTreeMap::new(),
        }
    }

    /// Lists the prefix and returns the records for what changed since the last poll,
    /// in key order: `Created` for new or rewritten objects that have settled,
    /// `Removed` for objects that are gone.
    pub fn poll(&mut self, store: &dyn Store) -> Result<Vec<Record>> {
        let now: BTreeMap<String, Look> = store
            .list(&self.prefix)?
            .iter()
            .map(|i| (i.key.clone(), look(i)))
            .collect();
        let mut records = Vec::new();
        for (key, seen) in &now {
            if self.reported.get(key) == Some(seen) {
                self.settling.remove(key);
                continue;
            }
            if self.settling.get(key) == Some(seen) {
                self.settling.remove(key);
                self.reported.insert(key.clone(), seen.clone());
                records.push(self.record(RecordKind::Created, key, Some(seen)));
            } else {
                self.settling.insert(key.clone(), seen.clone());
            }
        }
        let gone: Vec<String> = self
            .reported
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            self.reported.remove(&key);
            records.push(self.record(RecordKind::Removed, &key, None));
        }
        self.settling.retain(|k, _| now.contains_key(k));
        Ok(records)
    }

    fn record(&self, kind: RecordKind, key: &str, seen: Option<&Look>) -> Record {
        Record {
            kind,
            job: Job {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                etag: seen.map(|s| s.2.clone()),
                size: seen.map(|s| s.0),
                sequencer: None,
            },
            message_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::object::{Body, Object};
    use crate::store::DirStore;

    fn put(store: &DirStore, key: &str, bytes: &[u8]) {
        let obj = Object {
            key: key.into(),
            content_type: "video/mp4",
            cache_control: "no-cache",
            body: Body::from_bytes(bytes.to_vec()),
        };
        store.put(key, &obj, &[]).unwrap();
    }

    fn kinds(records: &[Record]) -> Vec<(RecordKind, String)> {
        records
            .iter()
            .map(|r| (r.kind.clone(), r.job.key.clone()))
            .collect()
    }

    #[test]
    fn reports_settled_uploads_once_and_removals() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DirStore::new(tmp.path());
        let mut w = UploadWatcher::new("media", "uploads/");
        put(&store, "uploads/a.mp4", b"first");
        put(
            &store,
            "hls/a/master.m3u8",
            b"ignored: not under the prefix",
        );
        // First sighting: settling.
        assert!(w.poll(&store).unwrap().is_empty());
        // Unchanged: reported, with the ETag S3 would give (MD5 of the bytes).
        let r = w.poll(&store).unwrap();
        assert_eq!(
            kinds(&r),
            [(RecordKind::Created, "uploads/a.mp4".to_string())]
        );
        assert_eq!(
            r[0].job.etag.as_deref(),
            Some("8b04d5e3775d298e78455efc5ca404d5")
        );
        assert_eq!(r[0].job.bucket, "media");
        // Still unchanged: nothing new.
        assert!(w.poll(&store).unwrap().is_empty());
        // Rewritten: settles again, then reported again.
        put(&store, "uploads/a.mp4", b"second version");
        assert!(w.poll(&store).unwrap().is_empty());
        assert_eq!(w.poll(&store).unwrap().len(), 1);
        // Removed.
        store.delete("uploads/a.mp4").unwrap();
        let r = w.poll(&store).unwrap();
        assert_eq!(
            kinds(&r),
            [(RecordKind::Removed, "uploads/a.mp4".to_string())]
        );
        assert!(w.poll(&store).unwrap().is_empty());
    }

    #[test]
    fn a_file_still_growing_is_not_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DirStore::new(tmp.path());
        let mut w = UploadWatcher::new("media", "uploads/");
        put(&store, "uploads/b.mp4", b"part");
        assert!(w.poll(&store).unwrap().is_empty());
        put(&store, "uploads/b.mp4", b"part and more");
        assert!(
            w.poll(&store).unwrap().is_empty(),
            "changed since the last poll"
        );
        assert_eq!(w.poll(&store).unwrap().len(), 1);
    }
}
