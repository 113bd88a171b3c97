//! A directory as an object store.

use super::{ObjectInfo, Store};
use crate::error::{Error, Result};
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
    fn etag(&self, path: &Path, len: u64, mtime: SystemTime) -> std::io::Result<String> {
        if let Ok(cache) = self.etags.lock() {
            if let Some((l, m, etag)) = cache.get(path) {
                if *l == len && *m == mtime {
                    return Ok(etag.clone());
                }
            }
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

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut keys = Vec::new();
        walk(&self.root, &self.root, &mut keys).map_err(|e| store_err(prefix, e))?;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(info) = self.head(&key)? {
                out.push(info);
            }
        }
        Ok(out)
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

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // temporary files of writes in progress
        }
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let key: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(key.join("/"));
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
