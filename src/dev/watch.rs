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
use crate::logs::escape_name;
use crate::pipeline::event::{Job, Record, RecordKind};
use crate::store::{Listed, Store};
use std::collections::BTreeMap;

/// Remembers what the input prefix held, poll to poll.
///
/// The listing never reads an upload's bytes ([`Store::list_for_watch`]): objects are told
/// apart by the store's fingerprint (size, modification time and inode for a folder), and the
/// ETag is left to the worker, which hashes each version of a file once, off this path, so a
/// large upload cannot hold back the listing of a small one.
pub struct UploadWatcher {
    bucket: String,
    prefix: String,
    /// Objects already reported, as they were then.
    reported: BTreeMap<String, Listed>,
    /// Fingerprints of objects seen changed at the last poll, waiting to look the same once more.
    settling: BTreeMap<String, String>,
    /// Entries the last listing skipped, with why (logged when they first fail).
    skipped: BTreeMap<String, String>,
}

impl UploadWatcher {
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        UploadWatcher {
            bucket: bucket.into(),
            prefix: prefix.into(),
            reported: BTreeMap::new(),
            settling: BTreeMap::new(),
            skipped: BTreeMap::new(),
        }
    }

    /// Lists the prefix and returns the records for what changed since the last poll,
    /// in key order: `Created` for new or rewritten objects that have settled,
    /// `Removed` for objects that are gone.
    ///
    /// An entry the store cannot read is skipped (and logged once); an object under it that
    /// was reported before is neither removed nor reported again. When nothing can be listed
    /// the error is returned and the watcher keeps its state: the next poll that works reports
    /// exactly what changed in between, deletions included.
    pub fn poll(&mut self, store: &dyn Store) -> Result<Vec<Record>> {
        let listing = store.list_for_watch(&self.prefix)?;
        self.note_skipped(listing.skipped);
        let now: BTreeMap<&str, &Listed> = listing
            .objects
            .iter()
            .map(|l| (l.key.as_str(), l))
            .collect();
        let mut records = Vec::new();
        for (key, seen) in &now {
            if self.reported.get(*key).map(|r| &r.fingerprint) == Some(&seen.fingerprint) {
                self.settling.remove(*key);
                continue;
            }
            if self.settling.get(*key) == Some(&seen.fingerprint) {
                self.settling.remove(*key);
                self.reported.insert(key.to_string(), (*seen).clone());
                records.push(self.record(RecordKind::Created, key, Some(seen)));
            } else {
                self.settling
                    .insert(key.to_string(), seen.fingerprint.clone());
            }
        }
        let gone: Vec<String> = self
            .reported
            .keys()
            .filter(|k| !now.contains_key(k.as_str()) && !self.is_skipped(k))
            .cloned()
            .collect();
        for key in gone {
            self.reported.remove(&key);
            records.push(self.record(RecordKind::Removed, &key, None));
        }
        self.settling.retain(|k, _| now.contains_key(k.as_str()));
        Ok(records)
    }

    /// Entries the last listing skipped: a key, or a folder's prefix ending in `/`.
    pub fn skipped(&self) -> impl Iterator<Item = (&str, &str)> {
        self.skipped
            .iter()
            .map(|(k, why)| (k.as_str(), why.as_str()))
    }

    fn is_skipped(&self, key: &str) -> bool {
        self.skipped
            .keys()
            .any(|s| s == key || (s.ends_with('/') && key.starts_with(s.as_str())))
    }

    fn note_skipped(&mut self, skipped: Vec<(String, String)>) {
        let now: BTreeMap<String, String> = skipped.into_iter().collect();
        for (key, why) in &now {
            if self.skipped.get(key) != Some(why) {
                tracing::warn!("uploads: skipping {}: {why}", escape_name(key));
            }
        }
        self.skipped = now;
    }

    fn record(&self, kind: RecordKind, key: &str, seen: Option<&Listed>) -> Record {
        Record {
            reprocess: false,
            kind,
            job: Job {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                etag: seen.and_then(|s| s.etag.clone()),
                size: seen.map(|s| s.size),
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
    use crate::media::source::Source;
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
        // The watcher never reads the bytes: the worker hashes them (once).
        assert_eq!(r[0].job.etag, None);
        assert_eq!(r[0].job.size, Some(5));
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

    /// One listing error stops the dev upload watcher for good (a self-referencing symlink
    /// in `uploads/`): the entry is skipped and named, the rest is watched as before.
    #[test]
    fn one_listing_error_stops_the_dev_upload_watcher_self_referencing_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DirStore::new(tmp.path());
        put(&store, "uploads/a.mp4", b"first");
        let uploads = tmp.path().join("uploads");
        std::os::unix::fs::symlink("loop.mp4", uploads.join("loop.mp4")).unwrap();
        std::fs::create_dir(uploads.join("sub")).unwrap();
        std::os::unix::fs::symlink("..", uploads.join("sub/up")).unwrap();
        let mut w = UploadWatcher::new("media", "uploads/");
        assert!(w.poll(&store).unwrap().is_empty());
        let r = w.poll(&store).unwrap();
        assert_eq!(
            kinds(&r),
            [(RecordKind::Created, "uploads/a.mp4".to_string())]
        );
        let skipped: Vec<&str> = w.skipped().map(|(k, _)| k).collect();
        assert_eq!(skipped, ["uploads/loop.mp4"]);
        put(&store, "uploads/b.mp4", b"second");
        assert!(w.poll(&store).unwrap().is_empty());
        assert_eq!(
            kinds(&w.poll(&store).unwrap()),
            [(RecordKind::Created, "uploads/b.mp4".to_string())]
        );
    }

    /// A store whose listings fail while `failing` is set.
    struct Flaky {
        inner: DirStore,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Store for Flaky {
        fn put(&self, key: &str, obj: &Object, s: &[std::sync::Arc<dyn Source>]) -> Result<()> {
            self.inner.put(key, obj, s)
        }
        fn put_if(
            &self,
            key: &str,
            obj: &Object,
            s: &[std::sync::Arc<dyn Source>],
            condition: crate::store::Precondition<'_>,
        ) -> Result<String> {
            self.inner.put_if(key, obj, s, condition)
        }
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
            self.inner.get(key)
        }
        fn get_versioned(&self, key: &str) -> Result<Option<crate::store::Versioned>> {
            self.inner.get_versioned(key)
        }
        fn read_range(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
            self.inner.read_range(key, offset, buf)
        }
        fn head(&self, key: &str) -> Result<Option<crate::store::ObjectInfo>> {
            self.inner.head(key)
        }
        fn delete(&self, key: &str) -> Result<()> {
            self.inner.delete(key)
        }
        fn list(&self, prefix: &str) -> Result<Vec<crate::store::ObjectInfo>> {
            self.inner.list(prefix)
        }
        fn list_for_watch(&self, prefix: &str) -> Result<crate::store::Listing> {
            if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(crate::error::Error::store_retryable(prefix, "EIO"));
            }
            self.inner.list_for_watch(prefix)
        }
    }

    /// When the watcher recovered it re-ran every upload and never applied deletions made
    /// in the meantime: a failed listing now changes nothing, and the next one that works
    /// reports exactly what changed.
    #[test]
    fn one_listing_error_stops_the_dev_upload_watcher_deletions_apply_after_recovery() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Flaky {
            inner: DirStore::new(tmp.path()),
            failing: false.into(),
        };
        put(&store.inner, "uploads/a.mp4", b"a");
        put(&store.inner, "uploads/b.mp4", b"b");
        let mut w = UploadWatcher::new("media", "uploads/");
        assert!(w.poll(&store).unwrap().is_empty());
        assert_eq!(w.poll(&store).unwrap().len(), 2);
        store
            .failing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(w.poll(&store).is_err());
        store.inner.delete("uploads/b.mp4").unwrap();
        assert!(w.poll(&store).is_err());
        store
            .failing
            .store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            kinds(&w.poll(&store).unwrap()),
            [(RecordKind::Removed, "uploads/b.mp4".to_string())]
        );
        assert!(w.poll(&store).unwrap().is_empty());
    }

    /// An entry that cannot be read is neither removed nor reported again.
    #[test]
    fn a_skipped_entry_is_not_taken_for_a_deletion() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DirStore::new(tmp.path());
        put(&store, "uploads/c.mp4", b"c");
        let mut w = UploadWatcher::new("media", "uploads/");
        w.poll(&store).unwrap();
        assert_eq!(w.poll(&store).unwrap().len(), 1);
        // Replaced by a link to itself: unreadable, not gone.
        let path = tmp.path().join("uploads/c.mp4");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("c.mp4", &path).unwrap();
        assert!(w.poll(&store).unwrap().is_empty());
        assert_eq!(w.skipped().count(), 1);
    }

    /// The dev watcher hashes large uploads inline: a 5 GB (sparse) upload is listed and
    /// reported from its metadata alone, without an ETag (the worker computes it, once).
    #[test]
    fn dev_watcher_hashes_large_uploads_inline_the_listing_reads_no_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DirStore::new(tmp.path());
        std::fs::create_dir(tmp.path().join("uploads")).unwrap();
        let big = std::fs::File::create(tmp.path().join("uploads/big.mp4")).unwrap();
        big.set_len(5 << 30).unwrap();
        put(&store, "uploads/small.mp4", b"small");
        let mut w = UploadWatcher::new("media", "uploads/");
        assert!(w.poll(&store).unwrap().is_empty());
        let r = w.poll(&store).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].job.key, "uploads/big.mp4");
        assert_eq!(
            (r[0].job.size, r[0].job.etag.as_ref()),
            (Some(5 << 30), None)
        );
    }
}
