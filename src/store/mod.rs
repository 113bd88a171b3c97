//! Where objects go. One trait; a filesystem implementation (the embedded default:
//! a bucket is a folder) and an S3 implementation, both held to the same tests.
//!
//! The trait is synchronous: packaging is CPU-and-copy work that runs on plain
//! threads (`publish` writes with a bounded pool). An async backend (S3) drives its
//! client from those threads with a runtime handle; async callers run packaging in
//! `spawn_blocking`.

mod dir;
pub mod location;
mod readahead;
#[cfg(feature = "service")]
mod s3;

pub use dir::DirStore;
pub use readahead::{ReadAheadConfig, ReadAheadSource};
#[cfg(feature = "service")]
pub use s3::{
    ObjectHeaders, S3Client, S3Settings, S3Source, S3Store, DEFAULT_MAX_ATTEMPTS, MIN_PART_SIZE,
    SINGLE_PUT_MAX,
};

use crate::error::{Error, Result};
use crate::media::object::Object;
use crate::media::source::Source;
use std::sync::Arc;

/// Keys in a page of [`Store::list_pages`]: S3's most per ListObjectsV2 call.
pub const LIST_PAGE: usize = 1000;

/// What a HEAD or a listing says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The store's entity tag, without quotes. For a single-part upload S3's is the
    /// MD5 of the bytes in hex; the directory store computes the same.
    pub etag: String,
    /// Unix seconds of the last write, when the store knows it.
    pub last_modified: Option<u64>,
    /// Content-Type and Cache-Control stored with the object (S3), or derived from
    /// the key where the store keeps no metadata (a directory).
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
}

/// One object of a [`Store::list_for_watch`] listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// Changes whenever the object does, as cheaply as the store can tell: S3's ETag; for a
    /// folder, size, modification time (to the nanosecond) and inode, without reading a byte.
    pub fingerprint: String,
    /// The ETag when the store has it without reading the object (S3 lists it; a folder has
    /// it when it hashed this very version before), `None` otherwise.
    pub etag: Option<String>,
}

/// A listing that goes on past entries it cannot read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<Listed>,
    /// Entries left out, with why: a key, or a folder's prefix ending in `/` (nothing under
    /// it could be listed).
    pub skipped: Vec<(String, String)>,
}

/// What a conditional write ([`Store::put_if`]) requires of the object it replaces: S3's
/// "conditional writes" (PutObject with `If-None-Match: *` or `If-Match: <ETag>`; 412
/// Precondition Failed when the condition does not hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition<'a> {
    /// No object at the key (`If-None-Match: *`).
    Absent,
    /// The object at the key has this ETag, unquoted (`If-Match`).
    Etag(&'a str),
}

impl Precondition<'_> {
    /// The condition as the HTTP header that carries it, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Precondition::Absent => "If-None-Match: *".into(),
            Precondition::Etag(etag) => format!("If-Match: \"{etag}\""),
        }
    }
}

/// A small object's bytes with the ETag of exactly those bytes (one GET: never the ETag of
/// a newer object beside the bytes of an older one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub bytes: Vec<u8>,
    pub etag: String,
}

/// An object store. Keys are `/`-separated and relative to the store's root.
pub trait Store: Send + Sync {
    /// Writes `obj` at `key` with its content type and cache control, atomically: a
    /// reader sees the old object or the whole new one, never a part. Source ranges
    /// in the body are read from `sources`.
    fn put(&self, key: &str, obj: &Object, sources: &[Arc<dyn Source>]) -> Result<()>;

    /// Writes like [`Store::put`], only if the object at `key` is as `condition` requires,
    /// checked and written as one step (no other writer lands in between); returns the new
    /// object's ETag. When the condition does not hold: [`Error::PreconditionFailed`], and
    /// nothing is written. For small objects (at most [`SINGLE_PUT_MAX`] bytes).
    fn put_if(
        &self,
        key: &str,
        obj: &Object,
        sources: &[Arc<dyn Source>],
        condition: Precondition<'_>,
    ) -> Result<String>;

    /// Reads a whole (small) object; `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Reads a whole (small) object with its ETag, for a later [`Store::put_if`].
    fn get_versioned(&self, key: &str) -> Result<Option<Versioned>>;

    /// Reads `buf.len()` bytes at `offset` of an object (a ranged GET). Reading
    /// past the end is an error.
    fn read_range(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Size and ETag of an object; `None` when there is none.
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>>;

    /// Removes an object; removing a missing object is not an error.
    fn delete(&self, key: &str) -> Result<()>;

    /// Every object under `prefix`, sorted by key (all pages).
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;

    /// Every object under `prefix`, sorted by key, a page at a time: `page` gets each page
    /// as it arrives and returns whether to go on. S3 lists 1,000 keys a page and follows
    /// each page's continuation token (ListObjectsV2), so a catalogue of any size is
    /// listed in the memory of one page and its work can start before the listing ends.
    /// A store without pages of its own lists whole and hands that out in pages.
    fn list_pages(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(Vec<ObjectInfo>) -> Result<bool>,
    ) -> Result<()> {
        let all = self.list(prefix)?;
        for chunk in all.chunks(LIST_PAGE) {
            if !page(chunk.to_vec())? {
                break;
            }
        }
        Ok(())
    }

    /// The folders directly under `prefix` (which ends in `/`, or is empty), each ending in
    /// `/`, sorted: S3's common prefixes of a listing with the delimiter `/`, which never
    /// lists what the folders hold.
    fn folders(&self, prefix: &str) -> Result<Vec<String>> {
        let mut folders: Vec<String> = Vec::new();
        self.list_pages(prefix, &mut |page| {
            for info in page {
                if let Some((folder, _)) = info.key[prefix.len()..].split_once('/') {
                    let folder = format!("{prefix}{folder}/");
                    if folders.last() != Some(&folder) {
                        folders.push(folder);
                    }
                }
            }
            Ok(true)
        })?;
        folders.dedup();
        Ok(folders)
    }

    /// Every object under `prefix`, sorted by key, for a watcher polling for changes: never
    /// reads an object's bytes, and leaves out (in [`Listing::skipped`]) entries it cannot
    /// read instead of failing. An error means nothing could be listed.
    fn list_for_watch(&self, prefix: &str) -> Result<Listing> {
        let objects = self
            .list(prefix)?
            .into_iter()
            .map(|info| Listed {
                key: info.key,
                size: info.size,
                fingerprint: info.etag.clone(),
                etag: Some(info.etag),
            })
            .collect();
        Ok(Listing {
            objects,
            skipped: Vec::new(),
        })
    }

    /// This store's own way to read the object `key` whose HEAD was `info`, when it has
    /// one better than a [`Store::read_range`] per read: S3 reads large blocks through a
    /// cache, each ranged GET pinned to `info.etag` with `If-Match`; a folder hands out
    /// the open file (read with `pread`, copied with `copy_file_range`). `None`:
    /// [`open_source`] reads through `read_range`.
    fn source_for(&self, key: &str, info: &ObjectInfo) -> Result<Option<Arc<dyn Source>>> {
        let _ = (key, info);
        Ok(None)
    }
}

/// Every object under `prefix`, its pages gathered: [`Store::list`] for a store whose
/// [`Store::list_pages`] is its own.
pub fn collect_pages(store: &dyn Store, prefix: &str) -> Result<Vec<ObjectInfo>> {
    let mut all = Vec::new();
    store.list_pages(prefix, &mut |page| {
        all.extend(page);
        Ok(true)
    })?;
    Ok(all)
}

/// Opens `key` of `store` for the demuxer and the segment writers, with its HEAD (size
/// and ETag); `None` when there is no such object.
pub fn open_source(
    store: &Arc<dyn Store>,
    key: &str,
) -> Result<Option<(Arc<dyn Source>, ObjectInfo)>> {
    let Some(info) = store.head(key)? else {
        return Ok(None);
    };
    let source = match store.source_for(key, &info)? {
        Some(source) => source,
        None => Arc::new(StoreSource {
            store: Arc::clone(store),
            key: key.to_string(),
            len: info.size,
        }),
    };
    Ok(Some((source, info)))
}

/// Opens the store of a bucket that an event names: what the event surfaces (the Lambda
/// function, the queue consumer, `process-event`, `reprocess`) are generic over.
pub trait StoreFactory: Send + Sync {
    fn store_for(&self, bucket: &str) -> Result<Arc<dyn Store>>;
}

impl<F> StoreFactory for F
where
    F: Fn(&str) -> Result<Arc<dyn Store>> + Send + Sync,
{
    fn store_for(&self, bucket: &str) -> Result<Arc<dyn Store>> {
        self(bucket)
    }
}

/// S3 buckets (or folders, in `file://` mode), as `HLSPIPE_STORE` selects.
#[cfg(feature = "service")]
impl StoreFactory for location::Stores {
    fn store_for(&self, bucket: &str) -> Result<Arc<dyn Store>> {
        self.bucket(bucket)
    }
}

/// An object of a store as a [`Source`], read with one [`Store::read_range`] per read:
/// what [`open_source`] gives for a store without a [`Store::source_for`] of its own.
pub struct StoreSource {
    store: Arc<dyn Store>,
    key: String,
    len: u64,
}

impl Source for StoreSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.store
            .read_range(&self.key, offset, buf)
            .map_err(Error::into_io)
    }

    fn name(&self) -> &str {
        &self.key
    }
}
