//! Where objects go. One trait; a filesystem implementation here (the embedded
//! default: a bucket is a folder), S3 beside it.

mod dir;

pub use dir::DirStore;

use crate::error::Result;
use crate::object::Object;
use crate::source::Source;
use std::sync::Arc;

/// An object store. Keys are `/`-separated and relative to the store's root.
pub trait Store: Send + Sync {
    /// Writes `obj` at `key`, atomically: a reader sees the old object or the whole
    /// new one, never a part. Source ranges in the body are read from `sources`.
    fn put(&self, key: &str, obj: &Object, sources: &[Arc<dyn Source>]) -> Result<()>;

    /// Reads a whole (small) object; `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Removes an object; removing a missing object is not an error.
    fn delete(&self, key: &str) -> Result<()>;

    /// Keys under `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
}
