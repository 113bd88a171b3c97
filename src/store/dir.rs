//! A directory as an object store.

use super::{collect_pages, Listed, Listing, ObjectInfo, Precondition, Store, Versioned};
use crate::error::{Error, Result};
use crate::logs::escape_name;
use crate::media::object::{self, Body, Object, Piece};
use crate::media::source::{FileSource, Source};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct DirStore {
    root: PathBuf,
    /// ETags already computed, by path, valid while size and mtime are unchanged:
    /// hashing a segment on every HEAD would cost the edge a full read per request.
    etags: Mutex<HashMap<PathBuf, (u64, SystemTime, String)>>,
}

/// Most ETags remembered; the cache is emptied when full.
const ETAG_CACHE_ENTRIES: usize = 65_536;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStore {
            root: root.into(),
            etags: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a key to a path, refusing anything that could leave the root.
    fn path(&self, key: &str) -> Result<PathBuf> {
        let rel = Path::new(key);
        let ok = !key.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !ok {
            return Err(Error::store_permanent(
                key,
                "key must be a relative path without '..'",
            ));
        }
        Ok(self.root.join(rel))
    }
}

impl DirStore {
    /// The ETag of this version of the file if it was hashed before; never reads it.
    fn cached_etag(&self, path: &Path, len: u64, mtime: SystemTime) -> Option<String> {
        let cache = self.etags.lock().ok()?;
        let (l, m, etag) = cache.get(path)?;
        (*l == len && *m == mtime).then(|| etag.clone())
    }

    fn etag(&self, path: &Path, len: u64, mtime: SystemTime) -> std::io::Result<String> {
        if let Some(etag) = self.cached_etag(path, len, mtime) {
            return Ok(etag);
        }
        let etag = file_etag(path)?;
        if let Ok(mut cache) = self.etags.lock() {
            if cache.len() >= ETAG_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(path.to_path_buf(), (len, mtime, etag.clone()));
        }
        Ok(etag)
    }
}

/// A file system error: retryable (a full disk, a permission fixed by an operator); a
/// missing file is answered as `None` before it gets here.
fn store_err(key: &str, e: impl std::fmt::Display) -> Error {
    Error::store_retryable(key, e.to_string())
}

impl Store for DirStore {
    fn put(&self, key: &str, obj: &Object, sources: &[Arc<dyn Source>]) -> Result<()> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| store_err(key, e))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("object"),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = write_file(&tmp, obj, sources)
            .and_then(|()| fs::rename(&tmp, &path).map_err(|e| store_err(key, e)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Checked and written under an exclusive `flock` of a lock file beside the object
    /// (`.<name>.lock`, never removed: removing it would let two writers hold locks on two
    /// different files). The lock holds across processes and is released by the kernel
    /// when its holder dies, so a killed worker never leaves a key locked. The ETag compared
    /// is the MD5 of the bytes on disk now, never the cached one.
    fn put_if(
        &self,
        key: &str,
        obj: &Object,
        sources: &[Arc<dyn Source>],
        condition: Precondition<'_>,
    ) -> Result<String> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| store_err(key, e))?;
        let _lock = lock_key(dir, &path).map_err(|e| store_err(key, e))?;
        let current = match fs::read(&path) {
            Ok(bytes) => Some(md5_hex(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(store_err(key, e)),
        };
        let holds = match (condition, current.as_deref()) {
            (Precondition::Absent, None) => true,
            (Precondition::Etag(want), Some(have)) => want == have,
            _ => false,
        };
        if !holds {
            return Err(Error::PreconditionFailed {
                key: key.to_string(),
                condition: condition.describe(),
            });
        }
        self.put(key, obj, sources)?;
        let written = fs::read(&path).map_err(|e| store_err(key, e))?;
        Ok(md5_hex(&written))
    }

    fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.get(key)?.map(|bytes| Versioned {
            etag: md5_hex(&bytes),
            bytes,
        }))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match fs::read(self.path(key)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(store_err(key, e)),
        }
    }

    fn read_range(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let file = File::open(self.path(key)?).map_err(|e| store_err(key, e))?;
        file.read_exact_at(buf, offset).map_err(|e| Error::Io {
            what: key.to_string(),
            source: e,
        })
    }

    /// The open file. Objects are replaced by rename, so an open file keeps the bytes it
    /// had while a newer upload lands; one that no longer has the size and modification
    /// time HEAD saw was replaced in between.
    fn source_for(&self, key: &str, info: &ObjectInfo) -> Result<Option<Arc<dyn Source>>> {
        let file = FileSource::open(&self.path(key)?)?.with_name(key);
        let mtime = file
            .as_file()
            .and_then(|f| f.metadata().ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        if file.len() != info.size || (mtime.is_some() && mtime != info.last_modified) {
            return Err(Error::SourceChanged {
                key: key.to_string(),
            });
        }
        Ok(Some(Arc::new(file)))
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let path = self.path(key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => {
                let mtime = m.modified().unwrap_or(UNIX_EPOCH);
                Ok(Some(ObjectInfo {
                    key: key.to_string(),
                    size: m.len(),
                    etag: self
                        .etag(&path, m.len(), mtime)
                        .map_err(|e| store_err(key, e))?,
                    last_modified: mtime.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs()),
                    content_type: Some(object::content_type_for_key(key).to_string()),
                    cache_control: Some(object::cache_control_for_key(key).to_string()),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(store_err(key, e)),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        match fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(store_err(key, e)),
        }
    }

    /// An entry that can never be read as an object (a link that points at itself, a folder
    /// or file without permission, a name that is not UTF-8) is left out with a warning, as
    /// S3 would never list it; any other error fails the listing.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        collect_pages(self, prefix)
    }

    /// The sub-folders of the prefix's folder, read from it alone (never what they hold).
    fn folders(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = match prefix.trim_end_matches('/') {
            "" => self.root.clone(),
            folder => self.path(folder)?,
        };
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(store_err(prefix, e)),
        };
        let mut folders = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !name.starts_with('.') && entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(format!("{prefix}{name}/"));
            }
        }
        folders.sort();
        Ok(folders)
    }

    /// The keys are walked first (names only), then each page's objects are read
    /// (their HEAD: size, time and ETag) as it is handed out.
    fn list_pages(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(Vec<ObjectInfo>) -> Result<bool>,
    ) -> Result<()> {
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        walk(&self.root, &self.root, &mut keys, &mut skipped).map_err(|e| store_err(prefix, e))?;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        let mut result = Ok(());
        for chunk in keys.chunks(super::LIST_PAGE) {
            let mut out = Vec::with_capacity(chunk.len());
            for key in chunk {
                match fs::metadata(self.root.join(key)) {
                    Err(e) if unreadable_entry(&e) => skipped.push((key.clone(), e.to_string())),
                    _ => out.extend(self.head(key)?),
                }
            }
            match page(out) {
                Ok(true) => {}
                done => {
                    result = done.map(|_| ());
                    break;
                }
            }
        }
        for (key, why) in skipped {
            if key.starts_with(prefix) || prefix.starts_with(key.as_str()) {
                tracing::warn!("listing {prefix}: skipped {}: {why}", escape_name(&key));
            }
        }
        result
    }

    /// Only the folder of `prefix` is walked, symbolic links to folders are not followed, and
    /// an entry that cannot be read (a link that points at itself, a folder without
    /// permission, a name that is not UTF-8) is skipped with its reason.
    fn list_for_watch(&self, prefix: &str) -> Result<Listing> {
        let folder = &prefix[..prefix.rfind('/').map_or(0, |i| i + 1)];
        let start = match folder.trim_end_matches('/') {
            "" => self.root.clone(),
            folder => self.path(folder)?,
        };
        let mut listing = Listing::default();
        let mut keys = Vec::new();
        walk(&self.root, &start, &mut keys, &mut listing.skipped)
            .map_err(|e| store_err(prefix, e))?;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        for key in keys {
            let path = self.root.join(&key);
            match fs::metadata(&path) {
                Ok(m) if m.is_file() => listing.objects.push(self.listed(key, &path, &m)),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => listing.skipped.push((key, e.to_string())),
            }
        }
        listing
            .skipped
            .retain(|(k, _)| k.starts_with(prefix) || prefix.starts_with(k.as_str()));
        listing.skipped.sort();
        Ok(listing)
    }
}

impl DirStore {
    fn listed(&self, key: String, path: &Path, m: &fs::Metadata) -> Listed {
        use std::os::unix::fs::MetadataExt;
        let mtime = m.modified().unwrap_or(UNIX_EPOCH);
        Listed {
            fingerprint: format!(
                "{}:{}.{:09}:{}",
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.ino()
            ),
            etag: self.cached_etag(path, m.len(), mtime),
            size: m.len(),
            key,
        }
    }
}

/// An error about the entry itself, which no retry will cure.
fn unreadable_entry(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ELOOP | libc::EACCES | libc::ENAMETOOLONG)
    )
}

/// The ETag S3 gives a single-part upload of `bytes`.
fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(bytes))
}

/// Holds an exclusive `flock(2)` on `.<name>.lock` in `dir` until dropped (the descriptor's
/// close releases it, as does the death of the process).
fn lock_key(dir: &Path, path: &Path) -> std::io::Result<File> {
    use std::os::unix::io::AsRawFd;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!(".{name}.lock")))?;
    loop {
        // SAFETY: the descriptor is open for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The ETag S3 gives a single-part upload: the MD5 of the bytes, in hex. It is
/// computed on demand here (a later change may cache it beside the file).
fn file_etag(path: &Path) -> std::io::Result<String> {
    use md5::{Digest, Md5};
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The keys of the files under `dir` (symbolic links to folders not followed; names starting
/// with `.`, the temporary files of writes in progress, left out). Only `dir` itself must be
/// readable (or absent); what fails below it goes to `skipped`, keyed by its key (a folder's
/// ending in `/`).
fn walk(
    root: &Path,
    dir: &Path,
    out: &mut Vec<String>,
    skipped: &mut Vec<(String, String)>,
) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let key_of = |path: &Path| -> Option<String> {
        let rel = path.strip_prefix(root).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        Some(parts?.join("/"))
    };
    let dir_key = key_of(dir).map_or_else(String::new, |k| format!("{k}/"));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                skipped.push((dir_key.clone(), e.to_string()));
                continue;
            }
        };
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue; // temporary files of writes in progress
        }
        let Some(key) = key_of(&path) else {
            let lossy = path.strip_prefix(root).unwrap_or(&path).to_string_lossy();
            skipped.push((lossy.into_owned(), "the name is not UTF-8".into()));
            continue;
        };
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                if let Err(e) = walk(root, &path, out, skipped) {
                    skipped.push((format!("{key}/"), e.to_string()));
                }
            }
            Ok(_) => out.push(key),
            Err(e) => skipped.push((key, e.to_string())),
        }
    }
    Ok(())
}

fn write_file(path: &Path, obj: &Object, sources: &[Arc<dyn Source>]) -> Result<()> {
    let key = obj.key.as_str();
    let mut file = File::create(path).map_err(|e| store_err(key, e))?;
    let mut buf: Vec<u8> = Vec::new();
    for piece in obj.body.pieces() {
        match piece {
            Piece::Bytes(b) => file.write_all(b).map_err(|e| store_err(key, e))?,
            Piece::Source { input, offset, len } => {
                let src = object::source(sources, *input)?;
                let copied = match src.as_file() {
                    Some(f) => kernel_copy(f, *offset, &file, *len),
                    None => Ok(false),
                }
                .map_err(|e| store_err(key, e))?;
                if !copied {
                    if buf.is_empty() {
                        buf = vec![0u8; 1 << 20];
                    }
                    let mut one = Body::default();
                    one.push_source(*input, *offset, *len);
                    one.write_to(sources, &mut file, &mut buf)?;
                }
            }
        }
    }
    file.flush().map_err(|e| store_err(key, e))?;
    Ok(())
}

/// Copies `len` bytes at `offset` of `src` to the current end of `dst` inside the
/// kernel (`copy_file_range`), as `cp` does. Returns `Ok(false)` before copying
/// anything if the kernel or filesystem cannot, so the caller falls back to
/// read/write.
fn kernel_copy(src: &File, offset: u64, dst: &File, len: u64) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    let mut off_in = offset as libc::loff_t;
    let mut left = len;
    let mut first = true;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call; off_in
        // points to a live local; a null off_out means "use and advance dst's
        // file position".
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                std::ptr::null_mut(),
                chunk,
                0,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            let unsupported = matches!(
                err.raw_os_error(),
                Some(libc::ENOSYS | libc::EXDEV | libc::EINVAL | libc::EOPNOTSUPP)
            );
            if first && unsupported {
                return Ok(false);
            }
            return Err(err);
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "source ended during copy",
            ));
        }
        first = false;
        left -= n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dev watcher hashes large uploads inline; and an unchanged file must never be
    /// hashed twice. Proof that the second HEAD does not read the bytes: they are changed in
    /// place with the size and modification time kept, and the ETag stays the first one.
    #[test]
    fn dev_watcher_hashes_large_uploads_inline_an_unchanged_file_is_hashed_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DirStore::new(tmp.path());
        let path = tmp.path().join("uploads/a.mp4");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"first").unwrap();
        let listed = store.list_for_watch("uploads/").unwrap();
        assert_eq!(listed.objects[0].etag, None, "listing never hashes");
        let first = store.head("uploads/a.mp4").unwrap().unwrap().etag;
        assert_eq!(first, "8b04d5e3775d298e78455efc5ca404d5");

        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, b"FIRST", 0).unwrap();
        file.set_modified(mtime).unwrap();
        drop(file);
        assert_eq!(store.head("uploads/a.mp4").unwrap().unwrap().etag, first);
        // And the listing now knows the ETag without reading.
        let listed = store.list_for_watch("uploads/").unwrap();
        assert_eq!(listed.objects[0].etag.as_deref(), Some(first.as_str()));
    }
}
