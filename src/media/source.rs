//! Positional byte sources. The demuxer and the segment writers read through
//! [`Source::read_at`] only, so the same code reads a local file, a buffer in memory,
//! or (through the storage layer) ranged GETs of an S3 object.

use crate::error::{Error, Result};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// A read-only, random-access byte source of known length.
pub trait Source: Send + Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset..offset + buf.len()`. Reading past the
    /// end is an error (`UnexpectedEof`), never a short read.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;

    /// A human name for error messages (a path or a URL).
    fn name(&self) -> &str;

    /// The local file behind this source, if any: lets writers copy ranges in the
    /// kernel (`copy_file_range`) instead of through user space.
    fn as_file(&self) -> Option<&File> {
        None
    }
}

/// Reads `len` bytes at `offset` into a new vector, checking the range against the
/// source first so that a corrupt header can never size an allocation past the file.
pub fn read_vec(src: &dyn Source, offset: u64, len: u64) -> Result<Vec<u8>> {
    let end = offset.checked_add(len).ok_or_else(|| Error::Io {
        what: src.name().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "range overflows"),
    })?;
    if end > src.len() {
        return Err(Error::Io {
            what: src.name().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("range {offset}..{end} is past the end ({})", src.len()),
            ),
        });
    }
    let len = usize::try_from(len).map_err(|_| Error::Io {
        what: src.name().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "range too large"),
    })?;
    let mut buf = vec![0u8; len];
    src.read_at(offset, &mut buf).map_err(|e| Error::Io {
        what: src.name().to_string(),
        source: e,
    })?;
    Ok(buf)
}

/// A local file.
pub struct FileSource {
    file: File,
    len: u64,
    name: String,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| Error::Io {
            what: name.clone(),
            source: e,
        })?;
        let meta = file.metadata().map_err(|e| Error::Io {
            what: name.clone(),
            source: e,
        })?;
        if !meta.is_file() {
            return Err(Error::Io {
                what: name,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        Ok(FileSource {
            file,
            len: meta.len(),
            name,
        })
    }

    /// Names the source in error messages (a store key rather than the file's path).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn as_file(&self) -> Option<&File> {
        Some(&self.file)
    }
}

/// Bytes in memory (tests, fuzzing, small objects).
pub struct MemorySource {
    data: Arc<[u8]>,
    name: String,
}

impl MemorySource {
    pub fn new(data: impl Into<Arc<[u8]>>, name: impl Into<String>) -> Self {
        MemorySource {
            data: data.into(),
            name: name.into(),
        }
    }
}

impl Source for MemorySource {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).ok();
        let end = start.and_then(|s| s.checked_add(buf.len()));
        match (start, end) {
            (Some(s), Some(e)) if e <= self.data.len() => {
                buf.copy_from_slice(&self.data[s..e]);
                Ok(())
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the buffer",
            )),
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}
