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
//! Sequential reading (the demuxer walking the file, `publish` writing segments in
//! file order) fetches the block after the furthest one read in the background, so the
//! next GET's latency overlaps the work on the current block. At most one such
//! prefetch is in flight.
//!
//! Memory bound: at most `capacity` cached blocks, plus one block in the hands of
//! each thread reading at that moment (an evicted block lives on until its reader
//! has copied out of it), plus the one being prefetched:
//! `(capacity + readers + 1) × block_size`. With the defaults and `publish`'s four
//! writers that is (8 + 4 + 1) × 8 MiB = 104 MiB at worst; the steady state is the
//! 64 MiB of the cache. Reads of a whole block or more skip the cache and go straight
//! to the inner source, into the caller's buffer.

use crate::media::source::Source;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Block size and count for a [`ReadAheadSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAheadConfig {
    /// Bytes fetched per inner read (one ranged GET).
    pub block_size: u64,
    /// Blocks kept after use.
    pub capacity: usize,
    /// Fetch the block after the furthest one read in the background.
    pub prefetch: bool,
}

impl Default for ReadAheadConfig {
    fn default() -> Self {
        ReadAheadConfig {
            block_size: 8 << 20,
            capacity: 8,
            prefetch: true,
        }
    }
}

enum Slot {
    Empty,
    /// A reader or the prefetcher is fetching it: wait on the block's condition.
    Fetching,
    Ready(Arc<[u8]>),
}

/// One block of the source. Readers of a block being fetched wait for it instead of
/// sending a second request.
struct Block {
    index: u64,
    slot: Mutex<Slot>,
    fetched: Condvar,
}

impl Block {
    fn new(index: u64, slot: Slot) -> Arc<Block> {
        Arc::new(Block {
            index,
            slot: Mutex::new(slot),
            fetched: Condvar::new(),
        })
    }

    /// Ends a fetch: the data, or back to empty so that a reader fetches it again and
    /// meets the error itself.
    fn finish(&self, result: &std::io::Result<Arc<[u8]>>) {
        *lock(&self.slot) = match result {
            Ok(data) => Slot::Ready(Arc::clone(data)),
            Err(_) => Slot::Empty,
        };
        self.fetched.notify_all();
    }
}

/// A [`Source`] that reads its inner source in large blocks and keeps a few.
pub struct ReadAheadSource<S> {
    inner: Arc<S>,
    config: ReadAheadConfig,
    name: String,
    /// Least recently used first.
    blocks: Mutex<Vec<Arc<Block>>>,
    /// One past the furthest block read so far: the one to prefetch.
    frontier: AtomicU64,
    prefetching: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the cache inconsistent (every
    // update is a single push, remove or assignment): keep using it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads block `index` of `inner`.
fn fetch<S: Source>(inner: &S, block_size: u64, index: u64) -> std::io::Result<Arc<[u8]>> {
    let start = index * block_size;
    let len = block_size.min(inner.len() - start);
    // `len` ≤ block_size, which was a usize-sized allocation request anyway.
    let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
    inner.read_at(start, &mut buf)?;
    Ok(buf.into())
}

impl<S: Source + 'static> ReadAheadSource<S> {
    pub fn new(inner: S, config: ReadAheadConfig) -> Self {
        let name = inner.name().to_string();
        ReadAheadSource {
            inner: Arc::new(inner),
            config: ReadAheadConfig {
                block_size: config.block_size.max(1),
                capacity: config.capacity.max(1),
                prefetch: config.prefetch,
            },
            name,
            blocks: Mutex::new(Vec::new()),
            frontier: AtomicU64::new(0),
            prefetching: Arc::new(AtomicBool::new(false)),
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

    /// Block `index` from the cache, made most recently used; a new empty one when it
    /// is not there. Evicts the least recently used beyond the capacity.
    fn entry(&self, index: u64, fresh: Slot) -> (Arc<Block>, bool) {
        let mut blocks = lock(&self.blocks);
        let (block, found) = match blocks.iter().position(|b| b.index == index) {
            Some(at) => (blocks.remove(at), true),
            None => (Block::new(index, fresh), false),
        };
        blocks.push(Arc::clone(&block));
        if blocks.len() > self.config.capacity {
            let excess = blocks.len() - self.config.capacity;
            blocks.drain(..excess);
        }
        (block, found)
    }

    /// The cached block `index`, fetching it if needed.
    fn block(&self, index: u64) -> std::io::Result<Arc<[u8]>> {
        let (block, _) = self.entry(index, Slot::Empty);
        let mut slot = lock(&block.slot);
        let data = loop {
            match &*slot {
                Slot::Ready(data) => {
                    let data = Arc::clone(data);
                    drop(slot);
                    break data;
                }
                Slot::Fetching => {
                    slot = block
                        .fetched
                        .wait(slot)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                Slot::Empty => {
                    *slot = Slot::Fetching;
                    drop(slot);
                    let result = fetch(self.inner.as_ref(), self.config.block_size, index);
                    block.finish(&result);
                    break result?;
                }
            }
        };
        self.advance(index);
        Ok(data)
    }

    /// Notes that block `index` was read; when it is the furthest yet, starts fetching
    /// the next one in the background (unless a prefetch is already running).
    fn advance(&self, index: u64) {
        let next = index + 1;
        if self.frontier.fetch_max(next, Ordering::AcqRel) >= next || !self.config.prefetch {
            return;
        }
        if next.saturating_mul(self.config.block_size) >= self.inner.len() {
            return;
        }
        if self.prefetching.swap(true, Ordering::AcqRel) {
            return;
        }
        let (block, found) = self.entry(next, Slot::Fetching);
        if found {
            self.prefetching.store(false, Ordering::Release);
            return;
        }
        let inner = Arc::clone(&self.inner);
        let prefetching = Arc::clone(&self.prefetching);
        let block_size = self.config.block_size;
        let spawned = std::thread::Builder::new()
            .name("hlspipe-prefetch".into())
            .spawn(move || {
                let result = fetch(inner.as_ref(), block_size, next);
                // Free for the next prefetch before a waiting reader wakes and asks.
                prefetching.store(false, Ordering::Release);
                block.finish(&result);
            });
        if spawned.is_err() {
            // No thread to be had: the block stays empty in the cache, and the first
            // reader that needs it fetches it. The closure, with the block, is gone.
            if let Some(b) = lock(&self.blocks).iter().find(|b| b.index == next) {
                b.finish(&Err(std::io::Error::other("no prefetch thread")));
            }
            self.prefetching.store(false, Ordering::Release);
        }
    }
}

impl<S: Source + 'static> Source for ReadAheadSource<S> {
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
    use crate::media::source::MemorySource;
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
                prefetch: false,
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

    #[test]
    fn sequential_reads_prefetch_the_next_block() {
        let src = ReadAheadSource::new(
            Counting {
                inner: MemorySource::new(data(10_000), "mem"),
                reads: AtomicUsize::new(0),
            },
            ReadAheadConfig {
                block_size: 1000,
                capacity: 4,
                prefetch: true,
            },
        );
        let want = data(10_000);
        let mut b = [0u8; 10];
        src.read_at(0, &mut b).unwrap();
        // Block 1 arrives without being asked for.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while src.inner().reads.load(Ordering::SeqCst) < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "block 1 was not prefetched"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Every block read once, in order, whoever fetched it; the data is right.
        let mut pos = 0u64;
        while pos + 10 <= 10_000 {
            src.read_at(pos, &mut b).unwrap();
            assert_eq!(&b[..], &want[pos as usize..pos as usize + 10]);
            pos += 10;
        }
        while src.prefetching.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        assert_eq!(src.inner().reads.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn a_failed_prefetch_leaves_the_error_to_the_reader() {
        struct FailsAfter {
            inner: MemorySource,
            reads: AtomicUsize,
        }
        impl Source for FailsAfter {
            fn len(&self) -> u64 {
                self.inner.len()
            }
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
                if self.reads.fetch_add(1, Ordering::SeqCst) >= 1 {
                    return Err(std::io::Error::other("connection reset"));
                }
                self.inner.read_at(offset, buf)
            }
            fn name(&self) -> &str {
                "fails"
            }
        }
        let src = ReadAheadSource::new(
            FailsAfter {
                inner: MemorySource::new(data(3000), "mem"),
                reads: AtomicUsize::new(0),
            },
            ReadAheadConfig {
                block_size: 1000,
                capacity: 4,
                prefetch: true,
            },
        );
        let mut b = [0u8; 10];
        src.read_at(0, &mut b).unwrap();
        let err = src.read_at(1500, &mut b).unwrap_err();
        assert!(err.to_string().contains("connection reset"), "{err}");
    }
}
