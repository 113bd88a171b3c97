//! A catalogue made up as it is read: a read-only store of `titles` uploads
//! (`uploads/c/t0000000.mp4` …), each published and up to date, whose listing pages and
//! manifests are generated on demand. It holds nothing per title, so what a planner over it
//! holds is the planner's own memory: what the catalogue bench and tests measure.

use crate::error::{Error, Result};
use crate::media::object::Object;
use crate::media::package::{settings_in_version, version_for_sources};
use crate::media::source::Source;
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::manifest::{MadeWith, Manifest, SourceInfo, State, MANIFEST_KEY};
use crate::store::{collect_pages, ObjectInfo, Precondition, Store, Versioned, LIST_PAGE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct SyntheticCatalogue {
    titles: usize,
    config: PipelineConfig,
    /// Pages handed out so far, and manifests read.
    pub pages: AtomicUsize,
    pub manifests_read: AtomicUsize,
}

impl SyntheticCatalogue {
    /// `titles` uploads under `uploads/c/`, each up to date for `config`.
    pub fn new(titles: usize, config: PipelineConfig) -> SyntheticCatalogue {
        SyntheticCatalogue {
            titles,
            config,
            pages: AtomicUsize::new(0),
            manifests_read: AtomicUsize::new(0),
        }
    }

    fn source(&self, i: usize) -> ObjectInfo {
        ObjectInfo {
            key: format!("uploads/c/t{i:07}.mp4"),
            size: 1_000_000,
            etag: format!("{i:032x}"),
            last_modified: Some(1_700_000_000),
            content_type: None,
            cache_control: None,
        }
    }

    /// The index of the title a key belongs to, and what follows its name.
    fn index<'k>(&self, key: &'k str, before: &str) -> Option<(usize, &'k str)> {
        let rest = key.strip_prefix(before)?;
        let i: usize = rest.get(..7)?.parse().ok()?;
        (i < self.titles).then_some((i, &rest[7..]))
    }

    fn manifest(&self, i: usize) -> Vec<u8> {
        let source = self.source(i);
        let settings = self.config.settings();
        let version = version_for_sources(&[source.etag.as_str()], &[], &settings);
        let (packager, described) = settings_in_version(&settings);
        let sources = vec![SourceInfo {
            key: source.key,
            etag: Some(source.etag),
            size: source.size,
        }];
        let manifest = Manifest {
            state: State::Complete,
            version: Some(version),
            made_with: Some(MadeWith {
                packager,
                settings: described,
            }),
            ..Manifest::processing(sources, 1_700_000_000)
        };
        serde_json::to_vec(&manifest).unwrap_or_default()
    }
}

fn read_only(key: &str) -> Error {
    Error::store_permanent(key, "the synthetic catalogue is read-only")
}

impl Store for SyntheticCatalogue {
    fn put(&self, key: &str, _: &Object, _: &[Arc<dyn Source>]) -> Result<()> {
        Err(read_only(key))
    }

    fn put_if(
        &self,
        key: &str,
        _: &Object,
        _: &[Arc<dyn Source>],
        _: Precondition<'_>,
    ) -> Result<String> {
        Err(read_only(key))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .index(key, "hls/c/t")
            .filter(|(_, rest)| *rest == format!(".hls/{MANIFEST_KEY}"))
            .map(|(i, _)| {
                self.manifests_read.fetch_add(1, Ordering::Relaxed);
                self.manifest(i)
            }))
    }

    fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.get(key)?.map(|bytes| Versioned {
            bytes,
            etag: "synthetic".into(),
        }))
    }

    fn read_range(&self, key: &str, _: u64, _: &mut [u8]) -> Result<()> {
        Err(Error::store_permanent(
            key,
            "the synthetic catalogue has no media",
        ))
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        Ok(self
            .index(key, "uploads/c/t")
            .filter(|(_, rest)| *rest == ".mp4")
            .map(|(i, _)| self.source(i)))
    }

    fn delete(&self, key: &str) -> Result<()> {
        Err(read_only(key))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        collect_pages(self, prefix)
    }

    /// The uploads, generated a page at a time (the outputs hold only manifests, which are
    /// not listed: a plan never lists them).
    fn list_pages(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(Vec<ObjectInfo>) -> Result<bool>,
    ) -> Result<()> {
        let mut i = 0;
        while i < self.titles {
            let end = (i + LIST_PAGE).min(self.titles);
            let objects: Vec<ObjectInfo> = (i..end)
                .map(|n| self.source(n))
                .filter(|o| o.key.starts_with(prefix))
                .collect();
            i = end;
            if objects.is_empty() {
                continue;
            }
            self.pages.fetch_add(1, Ordering::Relaxed);
            if !page(objects)? {
                break;
            }
        }
        Ok(())
    }

    fn folders(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(match prefix {
            "hls/" => vec!["hls/c/".into()],
            "hls/c/" => (0..self.titles)
                .map(|i| format!("hls/c/t{i:07}.hls/"))
                .collect(),
            _ => Vec::new(),
        })
    }
}
