//! The one fake store of the tests: a folder store ([`DirStore`]) that counts and records
//! what it is asked, and misbehaves only in the ways a test asks for. Every test that needs
//! to watch or disturb the store builds one of these, so what "a put" or "a read" means is
//! the same in all of them.

use hlspipe::media::object::Object;
use hlspipe::media::source::Source;
use hlspipe::store::{DirStore, ObjectInfo, Precondition, Store, Versioned};
use hlspipe::{Error, Result};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

type PutHook = Box<dyn Fn(&str) + Send + Sync>;

pub struct FakeStore {
    inner: DirStore,
    /// The put (1-based, counting every put asked) that fails.
    fail_put: Option<usize>,
    before_put: Option<PutHook>,
    after_put: Option<PutHook>,
    replaced_after_reads: Option<u64>,
    /// Lists objects without their ETags, as s3s-fs does.
    no_listed_etags: bool,
    puts: AtomicUsize,
    deletes: AtomicUsize,
    reads: AtomicUsize,
    written: Mutex<Vec<String>>,
    listed: Mutex<Vec<String>>,
}

impl FakeStore {
    /// Behaves exactly as `inner`, counting and recording.
    pub fn new(inner: DirStore) -> Self {
        FakeStore {
            inner,
            fail_put: None,
            before_put: None,
            after_put: None,
            replaced_after_reads: None,
            no_listed_etags: false,
            puts: AtomicUsize::new(0),
            deletes: AtomicUsize::new(0),
            reads: AtomicUsize::new(0),
            written: Mutex::new(Vec::new()),
            listed: Mutex::new(Vec::new()),
        }
    }

    /// The prefix of every listing asked for, in order.
    pub fn listed_prefixes(&self) -> Vec<String> {
        self.listed.lock().unwrap().clone()
    }

    /// Lists every object with an empty ETag (HEAD still has it), as s3s-fs 0.14 does.
    pub fn without_listed_etags(mut self) -> Self {
        self.no_listed_etags = true;
        self
    }

    /// Answers the `n`-th put (1-based) with a retryable error saying "injected failure",
    /// writing nothing, as a store that went away mid-publish would.
    pub fn failing_put(mut self, n: usize) -> Self {
        self.fail_put = Some(n);
        self
    }

    /// Runs `hook` with the key of each put before the put happens: a way to change the
    /// world (land a newer upload) at a chosen point of a publish.
    pub fn before_put(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.before_put = Some(Box::new(hook));
        self
    }

    /// Runs `hook` with the key of each put once it is written (and readable): a way to
    /// look at the store as a reader would at that moment.
    pub fn after_put(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.after_put = Some(Box::new(hook));
        self
    }

    /// The sources this store opens read `reads` times, then answer what S3 answers a ranged
    /// GET whose `If-Match` no longer holds: the object was replaced while being read.
    pub fn sources_replaced_after(mut self, reads: u64) -> Self {
        self.replaced_after_reads = Some(reads);
        self
    }

    /// Keys of the puts that succeeded, in the order they completed.
    pub fn written(&self) -> Vec<String> {
        self.written.lock().unwrap().clone()
    }

    /// Puts and deletes asked, failed ones included.
    pub fn writes(&self) -> usize {
        self.puts.load(Ordering::SeqCst) + self.deletes.load(Ordering::SeqCst)
    }

    /// Every call asked, reads (get, ranged read, head, list, opening a source) included.
    pub fn calls(&self) -> usize {
        self.writes() + self.reads.load(Ordering::SeqCst)
    }
}

impl Store for FakeStore {
    fn put(&self, key: &str, obj: &Object, sources: &[Arc<dyn Source>]) -> Result<()> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(hook) = &self.before_put {
            hook(key);
        }
        if self.fail_put == Some(n) {
            return Err(Error::store_retryable(key, "injected failure"));
        }
        self.inner.put(key, obj, sources)?;
        self.written.lock().unwrap().push(key.to_string());
        if let Some(hook) = &self.after_put {
            hook(key);
        }
        Ok(())
    }

    /// Counted and hooked as a put; an injected failure fails it the same way.
    fn put_if(
        &self,
        key: &str,
        obj: &Object,
        sources: &[Arc<dyn Source>],
        condition: Precondition<'_>,
    ) -> Result<String> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(hook) = &self.before_put {
            hook(key);
        }
        if self.fail_put == Some(n) {
            return Err(Error::store_retryable(key, "injected failure"));
        }
        let etag = self.inner.put_if(key, obj, sources, condition)?;
        self.written.lock().unwrap().push(key.to_string());
        if let Some(hook) = &self.after_put {
            hook(key);
        }
        Ok(etag)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }

    fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_versioned(key)
    }

    fn read_range(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_range(key, offset, buf)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.head(key)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.listed.lock().unwrap().push(prefix.to_owned());
        let mut listed = self.inner.list(prefix)?;
        if self.no_listed_etags {
            for o in &mut listed {
                o.etag.clear();
            }
        }
        Ok(listed)
    }

    fn source_for(&self, key: &str, info: &ObjectInfo) -> Result<Option<Arc<dyn Source>>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.source_for(key, info)?;
        Ok(match (inner, self.replaced_after_reads) {
            (Some(inner), Some(after)) => Some(Arc::new(ReplacedSource {
                inner,
                key: key.to_string(),
                reads: AtomicU64::new(0),
                after,
            })),
            (inner, _) => inner,
        })
    }
}

/// A source whose object is replaced after `after` reads (see
/// [`FakeStore::sources_replaced_after`]).
struct ReplacedSource {
    inner: Arc<dyn Source>,
    key: String,
    reads: AtomicU64,
    after: u64,
}

impl Source for ReplacedSource {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if self.reads.fetch_add(1, Ordering::SeqCst) >= self.after {
            return Err(Error::SourceChanged {
                key: self.key.clone(),
            }
            .into_io());
        }
        self.inner.read_at(offset, buf)
    }

    fn name(&self) -> &str {
        &self.key
    }
}
