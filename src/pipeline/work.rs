//! The store's side of a ladder fanned out across the fleet ([`crate::pipeline::fanout`]):
//! the work folder of one version of a title, where the plan, the parts' files and their
//! markers are written, and the queue the parts' messages go to.

use crate::error::{Error, Result};
use crate::media::object::{Body, Object};
use crate::media::source::{FileSource, Source};
use crate::store::{open_source, ObjectInfo, Precondition, Store};
use crate::transcode::encode::Part;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Where part messages go: the queue the fleet reads.
pub trait PartQueue: Send + Sync {
    /// Sends every message (JSON bodies), or fails naming what was not sent.
    fn send(&self, messages: &[String]) -> Result<()>;
}

/// The plan, as recorded in `parts.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub(crate) parts: Vec<String>,
    /// [`crate::transcode::encode::LadderSettings::describe`]: every part is encoded alike.
    pub(crate) settings: String,
}

/// The second stage of a fan-out, as recorded in `shares.json`: the title's segments
/// written in `count` shares of about `bytes` each, share `i` by part `publish-<i>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shares {
    pub(crate) count: usize,
    pub(crate) bytes: u64,
}

impl Shares {
    pub(crate) fn names(&self) -> impl Iterator<Item = String> {
        (0..self.count).map(share_name)
    }
}

/// The part that writes share `i`.
pub(crate) fn share_name(i: usize) -> String {
    format!("publish-{i:05}")
}

/// The share a part's name (`publish-00003`) writes.
pub(crate) fn share_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("publish-")?;
    (digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The work folder of one version of a title.
pub struct Work<'a> {
    store: &'a Arc<dyn Store>,
    pub(crate) folder: String,
}

impl<'a> Work<'a> {
    /// The work folder whose key prefix is `folder` (what [`Work::new`] makes).
    pub(crate) fn at(store: &'a Arc<dyn Store>, folder: String) -> Work<'a> {
        Work { store, folder }
    }

    pub fn new(store: &'a Arc<dyn Store>, title_folder: &str, version: &str) -> Work<'a> {
        Work {
            store,
            folder: format!("{title_folder}work/{version}/"),
        }
    }

    pub(crate) fn plan(&self) -> Result<Option<Plan>> {
        let Some(bytes) = self.store.get(&format!("{}parts.json", self.folder))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::store_permanent(&self.folder, format!("parts.json: {e}")))
    }

    pub(crate) fn record_plan(&self, plan: &Plan) -> Result<()> {
        let body = serde_json::to_vec_pretty(plan).unwrap_or_default();
        self.put(
            &format!("{}parts.json", self.folder),
            Body::from_bytes(body),
            &[],
        )
    }

    /// The parts whose files are all written.
    pub(crate) fn done(&self) -> Result<BTreeSet<String>> {
        let prefix = format!("{}done/", self.folder);
        Ok(self
            .store
            .list(&prefix)?
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&prefix).map(str::to_owned))
            .collect())
    }

    /// Whether a plan is recorded and every part of it is done.
    pub fn complete(&self) -> Result<bool> {
        let Some(plan) = self.plan()? else {
            return Ok(false);
        };
        let done = self.done()?;
        Ok(plan.parts.iter().all(|p| done.contains(p)))
    }

    /// A part's file, by its name relative to the encode's root (`chunk-00003/360p.mp4`).
    pub fn open(&self, name: &str) -> Result<Arc<dyn Source>> {
        let key = format!("{}{name}", self.folder);
        match open_source(self.store, &key)? {
            Some((source, _)) => Ok(source),
            None => Err(Error::store_permanent(
                &key,
                "a ladder part's file is missing",
            )),
        }
    }

    fn put(&self, key: &str, body: Body, sources: &[Arc<dyn Source>]) -> Result<()> {
        let obj = Object {
            key: key.to_owned(),
            content_type: crate::media::object::content_type_for_key(key),
            cache_control: "no-cache",
            body,
        };
        self.store.put(key, &obj, sources)
    }

    /// Writes a part's files (named relative to `root`), then its `done` marker.
    pub(crate) fn finish_part(&self, part: Part, root: &Path, files: &[String]) -> Result<()> {
        for name in files {
            let file: Arc<dyn Source> = Arc::new(FileSource::open(&root.join(name))?);
            let mut body = Body::default();
            body.push_source(0, 0, file.len());
            self.put(&format!("{}{name}", self.folder), body, &[file])?;
        }
        let name = part.name();
        self.write_once(&format!("done/{name}"), &name).map(|_| ())
    }

    /// Writes `…/<name>` naming `part` unless it exists; whether it now names `part`.
    pub(crate) fn write_once(&self, name: &str, part: &str) -> Result<bool> {
        let key = format!("{}{name}", self.folder);
        let obj = Object {
            key: key.clone(),
            content_type: "text/plain",
            cache_control: "no-cache",
            body: Body::from_bytes(part.as_bytes().to_vec()),
        };
        match self.store.put_if(&key, &obj, &[], Precondition::Absent) {
            Ok(_) => Ok(true),
            Err(Error::PreconditionFailed { .. }) => {
                Ok(self.store.get(&key)?.as_deref() == Some(part.as_bytes()))
            }
            Err(e) => Err(e),
        }
    }

    /// How the title's segments are shared out for writing (`shares.json`), once recorded.
    pub(crate) fn shares(&self) -> Result<Option<Shares>> {
        let key = format!("{}shares.json", self.folder);
        let Some(bytes) = self.store.get(&key)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::store_permanent(&key, format!("shares.json: {e}")))
    }

    /// Records the shares: the first record stands (`If-None-Match: *`), so every worker
    /// cuts the title alike whatever its own configuration says. Returns the recorded one.
    pub(crate) fn record_shares(&self, shares: &Shares) -> Result<Shares> {
        let key = format!("{}shares.json", self.folder);
        let obj = Object {
            key: key.clone(),
            content_type: "application/json",
            cache_control: "no-cache",
            body: Body::from_bytes(serde_json::to_vec_pretty(shares).unwrap_or_default()),
        };
        match self.store.put_if(&key, &obj, &[], Precondition::Absent) {
            Ok(_) => Ok(shares.clone()),
            Err(Error::PreconditionFailed { .. }) => self
                .shares()?
                .ok_or_else(|| Error::store_permanent(&key, "shares.json vanished")),
            Err(e) => Err(e),
        }
    }

    /// Removes the work folder.
    pub fn remove(&self) -> Result<usize> {
        let all: Vec<ObjectInfo> = self.store.list(&self.folder)?;
        for o in &all {
            self.store.delete(&o.key)?;
        }
        Ok(all.len())
    }
}
