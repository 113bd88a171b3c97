//! A block cache in front of a [`Source`] with a cost per read (an S3 object read
//! through ranged GETs).
//!
//! The demuxer reads box headers of a few bytes; the segment writers read each
//! sample's range, and in an interleaved MP4 a video frame (~150 KB at 35 Mb/s)
//! alternates with a few hundred bytes of audio. Sent one GET per read, a title
//! would cost hundreds of thousands of requests. Here every read is served from
//! large aligned blocks (8 MiB by default), each fetched with one ranged GET, and
//! a few recently used blocks stay cached, so the video and the audio writers of
//! one stretch of the file share the same GETs (`publish` writes segments in the
//! order their bytes sit in the inputs for that reason).
//!
//! Memory bound: at most `capacity` cached blocks, plus one block in the hands of
//! each thread reading at that moment (an evicted block lives on until its reader
//! has copied out of it): `(capacity + readers) × block_size`. With the defaults
//! and `publish`'s four writers that is (8 + 4) × 8 MiB = 96 MiB at worst; the
//! steady state is the 64 MiB of the cache. Reads of a whole block or more skip the
//! cache and go straight to the inner source, into the caller's buffer.

use crate::source::Source;
use std::sync::{Arc, Mutex, MutexGuard};

/// Block size and count for a [`ReadAheadSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAheadConfig {
    /// Bytes fetched per inner read (one ranged GET).
    pub block_size: u64,
    /// Blocks kept after use.
    pub capacity: usize,
}

impl Default for ReadAheadConfig {
    fn default() -> Self {
        ReadAheadConfig {
            block_size: 8 << 20,
            capacity: 8,
        }
    }
}

/// One block of the source: empty until a reader fetches it. Readers of a block
/// being fetched wait on its lock instead of sending a second request.
struct Block {
    index: u64,
    data: Mutex<Option<Arc<[u8]>>>,
}

/// A [`Source`] that reads its inner source in large blocks and keeps a few.
pub struct ReadAheadSource<S> {
    inner: S,
    config: ReadAheadConfig,
    name: String,
    /// Least recently used first.
    blocks: Mutex<Vec<Arc<Block>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the cache inconsistent (every
    // update is a single push, remove or assignment): keep using it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: Source> ReadAheadSource<S> {
    pub fn new(inner: S, config: ReadAheadConfig) -> Self {
        let name = inner.name().to_string();
        ReadAheadSource {
            inner,
            config: ReadAheadConfig {
                block_size: config.block_size.max(1),
                capacity: config.capacity.max(1),
            },
            name,
            blocks: Mutex::new(Vec::new()),
        }
    }

    /// Names the source in error messages (`s3://bucket/key`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The cached block `index`, fetching it if needed.
    fn block(&self, index: u64) -> std::io::Result<Arc<[u8]>> {
        let block = {
            let mut blocks = lock(&self.blocks);
            let block = match blocks.iter().position(|b| b.index == index) {
                Some(at) => blocks.remove(at),
                None => Arc::new(Block {
                    index,
                    data: Mutex::new(None),
                }),
            };
            blocks.push(Arc::clone(&block));
            if blocks.len() > self.config.capacity {
                let excess = blocks.len() - self.config.capacity;
                blocks.drain(..excess);
            }
            block
        };
        let mut data = lock(&block.data);
        if let Some(d) = data.as_ref() {
            return Ok(Arc::clone(d));
        }
        let start = index * self.config.block_size;
        let len = self.config.block_size.min(self.inner.len() - start);
        // `len` ≤ block_size, which was a usize-sized allocation request anyway.
        let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
        self.inner.read_at(start, &mut buf)?;
        let d: Arc<[u8]> = buf.into();
        *data = Some(Arc::clone(&d));
        Ok(d)
    }
}

impl<S: Source> Source for ReadAheadSource<S> {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.inner.len())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: range {offset}+{} is past the end ({})",
                        self.name,
                        buf.len(),
                        self.inner.len()
                    ),
                )
            })?;
        if buf.is_empty() {
            return Ok(());
        }
        if buf.len() as u64 >= self.config.block_size {
            return self.inner.read_at(offset, buf);
        }
        let bs = self.config.block_size;
        let mut pos = offset;
        while pos < end {
            let index = pos / bs;
            let block = self.block(index)?;
            let from = (pos - index * bs) as usize;
            let n = ((end - pos) as usize).min(block.len() - from);
            let at = (pos - offset) as usize;
            buf[at..at + n].copy_from_slice(&block[from..from + n]);
            pos += n as u64;
        }
        Ok(())
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemorySource;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the reads that reach it.
    struct Counting {
        inner: MemorySource,
        reads: AtomicUsize,
    }

    impl Source for Counting {
        fn len(&self) -> u64 {
            self.inner.len()
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.inner.read_at(offset, buf)
        }
        fn name(&self) -> &str {
            "counting"
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    fn source(n: usize, block_size: u64, capacity: usize) -> ReadAheadSource<Counting> {
        ReadAheadSource::new(
            Counting {
                inner: MemorySource::new(data(n), "mem"),
                reads: AtomicUsize::new(0),
            },
            ReadAheadConfig {
                block_size,
                capacity,
            },
        )
    }

    #[test]
    fn small_reads_become_one_inner_read_per_block() {
        let src = source(10_000, 1000, 4);
        let want = data(10_000);
        let mut pos = 0u64;
        // Reads that straddle block boundaries.
        while pos + 7 <= 10_000 {
            let mut buf = [0u8; 7];
            src.read_at(pos, &mut buf).unwrap();
            assert_eq!(&buf[..], &want[pos as usize..pos as usize + 7]);
            pos += 7;
        }
        assert_eq!(src.inner().reads.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn the_cache_holds_at_most_capacity_blocks() {
        let src = source(10_000, 1000, 2);
        let mut b = [0u8; 1];
        for i in [0u64, 1500, 2500, 0] {
            src.read_at(i, &mut b).unwrap();
        }
        // Block 0 was evicted by blocks 1 and 2, so it is read again.
        assert_eq!(src.inner().reads.load(Ordering::Relaxed), 4);
        assert_eq!(lock(&src.blocks).len(), 2);
    }

    #[test]
    fn large_reads_and_the_last_short_block() {
        let src = source(2500, 1000, 2);
        let want = data(2500);
        let mut big = vec![0u8; 1200];
        src.read_at(1300, &mut big).unwrap();
        assert_eq!(big, &want[1300..2500]);
        assert_eq!(src.inner().reads.load(Ordering::Relaxed), 1);
        let mut tail = [0u8; 10];
        src.read_at(2490, &mut tail).unwrap();
        assert_eq!(&tail[..], &want[2490..]);
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let src = source(2500, 1000, 2);
        let mut b = [0u8; 2];
        let err = src.read_at(2499, &mut b).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(src.read_at(u64::MAX, &mut b).is_err());
        assert!(src.read_at(2500, &mut []).is_ok());
    }

    #[test]
    fn concurrent_readers_share_blocks() {
        let src = source(64_000, 8000, 8);
        let want = data(64_000);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (src, want) = (&src, &want);
                s.spawn(move || {
                    let mut pos = t * 13;
                    while pos + 100 <= 64_000 {
                        let mut buf = [0u8; 100];
                        src.read_at(pos, &mut buf).unwrap();
                        assert_eq!(&buf[..], &want[pos as usize..pos as usize + 100]);
                        pos += 997;
                    }
                });
            }
        });
        assert_eq!(src.inner().reads.load(Ordering::Relaxed), 8);
    }
}
