//! Which store a location names: `s3://bucket/key`, `s3://bucket/prefix/`, or a
//! local path.
//!
//! Buckets live in AWS S3 (or the S3-compatible server `AWS_ENDPOINT_URL` names),
//! unless `HLSPIPE_STORE=file:///path` says they are folders: bucket `b` is then the
//! directory `/path/b/` (the embedded default and tests without a server).

#[cfg(feature = "service")]
use super::{DirStore, ObjectInfo, S3Client, S3Settings, S3Store, Store};
use crate::error::{Error, Result};
#[cfg(feature = "service")]
use crate::media::source::Source;
use std::path::{Path, PathBuf};
#[cfg(feature = "service")]
use std::sync::{Arc, OnceLock};

/// Environment variable choosing where buckets live.
pub const STORE_ENV: &str = "HLSPIPE_STORE";

/// A location given on a command line or in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A path on this machine, as given.
    Local(PathBuf),
    /// `s3://bucket/key`: `key` is an object key, or a prefix when it is empty or
    /// ends with `/`. Taken literally, as the AWS CLI does: no percent-decoding.
    Bucket { bucket: String, key: String },
}

impl Location {
    pub fn parse(text: &str) -> Result<Location> {
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket_name(bucket)?;
        Ok(Location::Bucket {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// Parses a path argument; a path that is not UTF-8 is always local.
    pub fn from_path(path: &Path) -> Result<Location> {
        match path.to_str() {
            Some(text) => Location::parse(text),
            None => Ok(Location::Local(path.to_path_buf())),
        }
    }
}

/// S3's rules for general purpose bucket names: 3–63 characters of lowercase
/// letters, digits, dots and hyphens, starting and ending with a letter or digit
/// ("Bucket naming rules", Amazon S3 User Guide). They also keep a bucket name a
/// safe single folder name for [`Stores`] in `file://` mode.
pub fn check_bucket_name(name: &str) -> Result<()> {
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if (3..=63).contains(&name.len())
        && chars_ok
        && ends_ok(name.as_bytes().first())
        && ends_ok(name.as_bytes().last())
        && !name.contains("..")
    {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "'{name}' is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')"
        )))
    }
}

/// Where a command's buckets are, in the one syntax every command takes (DESIGN.md
/// "Surfaces"): `file:///PATH`, a folder whose sub-folders are buckets, or
/// `s3://[BUCKET[/PREFIX]]`, S3 (or the server `AWS_ENDPOINT_URL` names), optionally one
/// bucket and a key prefix inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Folders(PathBuf),
    S3 {
        bucket: Option<String>,
        prefix: String,
    },
}

impl StoreUrl {
    pub fn parse(text: &str) -> Result<StoreUrl> {
        if let Some(path) = text.strip_prefix("file://") {
            if path.starts_with('/') {
                return Ok(StoreUrl::Folders(PathBuf::from(path)));
            }
        } else if let Some(rest) = text.strip_prefix("s3://") {
            if rest.is_empty() {
                return Ok(StoreUrl::S3 {
                    bucket: None,
                    prefix: String::new(),
                });
            }
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            check_bucket_name(bucket)?;
            return Ok(StoreUrl::S3 {
                bucket: Some(bucket.to_string()),
                prefix: as_prefix(prefix),
            });
        }
        Err(Error::Config(format!(
            "store '{text}': expected file:///absolute/path (a folder of buckets) or \
             s3://BUCKET[/PREFIX]"
        )))
    }
}

#[cfg(feature = "service")]
enum Backend {
    /// Bucket `b` is the folder `root/b`.
    Dir(PathBuf),
    /// The S3 client is made on first use, so runs that never touch a bucket never
    /// load AWS configuration.
    S3 {
        settings: S3Settings,
        client: OnceLock<Arc<S3Client>>,
    },
}

/// Opens the stores that locations name.
#[cfg(feature = "service")]
pub struct Stores {
    backend: Backend,
}

#[cfg(feature = "service")]
impl Stores {
    /// From `HLSPIPE_STORE` (`file:///path`, or unset for S3) and, for S3, the
    /// AWS environment ([`S3Settings::from_env`]).
    pub fn from_env() -> Result<Stores> {
        let url = std::env::var(STORE_ENV).ok().filter(|s| !s.is_empty());
        Stores::new(url.as_deref(), S3Settings::from_env())
    }

    /// `store_url` ([`StoreUrl`]), or `None` for S3 with `settings`. Event commands take
    /// their buckets from the events, so a bucket in an `s3://` URL is refused here.
    pub fn new(store_url: Option<&str>, settings: S3Settings) -> Result<Stores> {
        let url = store_url.map(StoreUrl::parse).transpose()?;
        let backend = match url {
            None | Some(StoreUrl::S3 { bucket: None, .. }) => Backend::S3 {
                settings,
                client: OnceLock::new(),
            },
            Some(StoreUrl::Folders(root)) => Backend::Dir(root),
            Some(StoreUrl::S3 {
                bucket: Some(b), ..
            }) => {
                return Err(Error::Config(format!(
                    "{STORE_ENV}: s3://{b}/ names a bucket, but buckets come from the events here; \
                     use s3:// (or leave it unset)"
                )))
            }
        };
        Ok(Stores { backend })
    }

    /// The store a `serve`-style URL names: `file:///PATH` with `bucket` (a folder of it), or
    /// `s3://BUCKET[/PREFIX]`.
    pub fn open_url(url: &str, bucket: &str, settings: S3Settings) -> Result<Arc<dyn Store>> {
        Ok(Stores::open_url_kind(url, bucket, settings)?.store())
    }

    /// [`Stores::open_url`], keeping what kind of store it is (uploads need to know:
    /// [`crate::delivery::uploads`]).
    pub fn open_url_kind(url: &str, bucket: &str, settings: S3Settings) -> Result<UrlStore> {
        match StoreUrl::parse(url)? {
            StoreUrl::Folders(root) => {
                let store = Stores::dir(&root).bucket(bucket)?;
                Ok(UrlStore::Folder {
                    root,
                    bucket: bucket.to_owned(),
                    store,
                })
            }
            StoreUrl::S3 {
                bucket: Some(b),
                prefix,
            } => {
                let client = Arc::new(S3Client::new(&settings)?);
                Ok(UrlStore::S3(Arc::new(S3Store::new(client, &b, &prefix))))
            }
            StoreUrl::S3 { bucket: None, .. } => Err(Error::Config(
                "store 's3://': name the bucket (s3://BUCKET[/PREFIX])".into(),
            )),
        }
    }

    /// Buckets as folders under `root`.
    pub fn dir(root: impl Into<PathBuf>) -> Stores {
        Stores {
            backend: Backend::Dir(root.into()),
        }
    }

    /// Buckets in S3 through an existing client.
    pub fn s3(client: Arc<S3Client>) -> Stores {
        let cell = OnceLock::new();
        let _ = cell.set(client);
        Stores {
            backend: Backend::S3 {
                settings: S3Settings::default(),
                client: cell,
            },
        }
    }

    fn s3_client(settings: &S3Settings, cell: &OnceLock<Arc<S3Client>>) -> Result<Arc<S3Client>> {
        if let Some(c) = cell.get() {
            return Ok(Arc::clone(c));
        }
        let made = Arc::new(S3Client::new(settings)?);
        // Another thread may have won the race; either client will do.
        Ok(Arc::clone(cell.get_or_init(|| made)))
    }

    /// The store of one bucket.
    pub fn bucket(&self, bucket: &str) -> Result<Arc<dyn Store>> {
        check_bucket_name(bucket)?;
        Ok(match &self.backend {
            Backend::Dir(root) => {
                let dir = root.join(bucket);
                if !dir.is_dir() {
                    return Err(Error::store_permanent(
                        bucket,
                        format!("no such bucket (no folder {})", dir.display()),
                    ));
                }
                Arc::new(DirStore::new(dir))
            }
            Backend::S3 { settings, client } => {
                Arc::new(S3Store::new(Self::s3_client(settings, client)?, bucket, ""))
            }
        })
    }

    /// The store a location lives in and the key (or prefix) inside it. A local
    /// directory (an existing one, or a path ending in `/`) is a store with an empty
    /// prefix; a local file is its directory's store and its file name.
    pub fn resolve(&self, location: &Location) -> Result<(Arc<dyn Store>, String)> {
        match location {
            Location::Bucket { bucket, key } => Ok((self.bucket(bucket)?, key.clone())),
            Location::Local(path) => {
                let is_dir = path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/');
                let file_name = path.file_name().and_then(|n| n.to_str());
                match (is_dir, file_name) {
                    (false, Some(name)) => {
                        let dir = path.parent().unwrap_or(Path::new(""));
                        let dir = if dir.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            dir
                        };
                        Ok((Arc::new(DirStore::new(dir)), name.to_string()))
                    }
                    _ => Ok((Arc::new(DirStore::new(path)), String::new())),
                }
            }
        }
    }

    /// Opens an input object for packaging: its source and its size and ETag. An
    /// S3 object is read through a [`super::ReadAheadSource`] pinned to its ETag; in
    /// `file://` mode the object is a file, read (and copied by writers) as one.
    pub fn open_source(&self, bucket: &str, key: &str) -> Result<(Arc<dyn Source>, ObjectInfo)> {
        let store = self.bucket(bucket)?;
        super::open_source(&store, key)?
            .ok_or_else(|| Error::store_permanent(key, "no such object"))
    }
}

/// The store a `serve`-style URL opened ([`Stores::open_url_kind`]).
#[cfg(feature = "service")]
pub enum UrlStore {
    /// Bucket `bucket` as the folder `root/bucket`.
    Folder {
        root: PathBuf,
        bucket: String,
        store: Arc<dyn Store>,
    },
    S3(Arc<S3Store>),
}

#[cfg(feature = "service")]
impl UrlStore {
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            UrlStore::Folder { store, .. } => Arc::clone(store),
            UrlStore::S3(s3) => Arc::clone(s3) as Arc<dyn Store>,
        }
    }
}

/// An output prefix: empty, or ending with exactly the `/` it was given or gets.
pub fn as_prefix(key: &str) -> String {
    if key.is_empty() || key.ends_with('/') {
        key.to_string()
    } else {
        format!("{key}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_and_paths() {
        assert_eq!(
            Location::parse("s3://media-in/uploads/show ep1.mp4").unwrap(),
            Location::Bucket {
                bucket: "media-in".into(),
                key: "uploads/show ep1.mp4".into()
            }
        );
        assert_eq!(
            Location::parse("s3://media-out/hls/x/").unwrap(),
            Location::Bucket {
                bucket: "media-out".into(),
                key: "hls/x/".into()
            }
        );
        assert_eq!(
            Location::parse("s3://media-out").unwrap(),
            Location::Bucket {
                bucket: "media-out".into(),
                key: String::new()
            }
        );
        assert_eq!(
            Location::parse("out/dir").unwrap(),
            Location::Local(PathBuf::from("out/dir"))
        );
        assert_eq!(
            Location::parse("S3x://a").unwrap(),
            Location::Local(PathBuf::from("S3x://a"))
        );
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for bad in [
            "", "ab", "Upper", "a_b", "-ab", "ab-", "a..b", "../x", "a/b",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
            assert!(Location::parse(&format!("s3://{bad}/k")).is_err(), "{bad}");
        }
        for good in ["abc", "my.bucket-1", &"a".repeat(63)] {
            check_bucket_name(good).unwrap();
        }
    }

    #[test]
    fn prefixes_end_with_a_slash() {
        assert_eq!(as_prefix(""), "");
        assert_eq!(as_prefix("hls/x"), "hls/x/");
        assert_eq!(as_prefix("hls/x/"), "hls/x/");
    }

    #[test]
    fn file_store_urls_map_buckets_to_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("file://{}", tmp.path().display());
        let stores = Stores::new(Some(&url), S3Settings::default()).unwrap();
        // A bucket is a folder that exists, as an S3 bucket must.
        assert!(stores.bucket("media").is_err());
        std::fs::create_dir(tmp.path().join("media")).unwrap();
        let store = stores.bucket("media").unwrap();
        let obj = crate::media::object::Object {
            key: "k".into(),
            content_type: "text/plain",
            cache_control: "no-cache",
            body: crate::media::object::Body::from_bytes(b"hello".to_vec()),
        };
        store.put("a/b.txt", &obj, &[]).unwrap();
        assert!(tmp.path().join("media/a/b.txt").is_file());
        let (src, info) = stores.open_source("media", "a/b.txt").unwrap();
        assert_eq!(src.len(), 5);
        assert_eq!(info.etag, "5d41402abc4b2a76b9719d911017c592");
        assert!(Stores::new(Some("file://relative"), S3Settings::default()).is_err());
        assert!(Stores::new(Some("http://x"), S3Settings::default()).is_err());
        assert!(Stores::new(Some("s3://media/"), S3Settings::default()).is_err());
    }

    #[test]
    fn one_store_url_syntax() {
        assert_eq!(
            StoreUrl::parse("file:///srv/b").unwrap(),
            StoreUrl::Folders("/srv/b".into())
        );
        assert_eq!(
            StoreUrl::parse("s3://media").unwrap(),
            StoreUrl::S3 {
                bucket: Some("media".into()),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://media/site/a").unwrap(),
            StoreUrl::S3 {
                bucket: Some("media".into()),
                prefix: "site/a/".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://").unwrap(),
            StoreUrl::S3 {
                bucket: None,
                prefix: String::new()
            }
        );
        for bad in [
            "/srv/b",
            "relative",
            "file://relative",
            "s3://Bad_Bucket",
            "http://x",
        ] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
