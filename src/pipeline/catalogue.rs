//! What a bucket's catalogue needs (`hlspipe reprocess`, its `--dry-run` plan): every
//! title's status, decided from the listing and the title's manifest alone, without reading
//! a byte of media.
//!
//! - `new`: no manifest yet.
//! - `up to date`: the manifest says `complete` with the version that the sources' ETags
//!   (side files included) and the current settings give: what the job would reckon before
//!   reading anything, and where it would stop.
//! - `outdated`: complete with another version, and why: a source or side file changed, or
//!   the packager or the settings (from what the manifest records of the live version).
//! - `failed before`: the last run of this very version failed (a reprocess does it again
//!   only when asked to).
//! - `in progress`: a job of this version is running (or died running: its retry is the
//!   queue's business).
//! - `orphaned`: a title's outputs whose sources are all gone.
//!
//! The listing is read a page at a time ([`Store::list_pages`]) in two passes: the first
//! reads the title manifests (`<title>.title.json`), whose inputs are not titles of their
//! own; the second plans each title as soon as the listing is past its keys. A title's keys
//! (its media, its title manifest, its side files `ep1.en.srt`) all start with
//! `<folder>/<name>.`, so they come together in key order: memory holds one page and the
//! titles whose keys are still coming, whatever the catalogue's size.

use crate::error::Result;
use crate::media::package::{settings_in_version, version_for_sources};
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::job::pick_side_files;
use crate::pipeline::keys::{classify_key, parent, KeyRole, TitleManifest};
use crate::pipeline::manifest::{Manifest, SourceInfo, State, MANIFEST_KEY};
use crate::store::{ObjectInfo, Store};
use crate::title::{Title, BUNDLE_SUFFIX};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// What a title needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Status {
    New,
    UpToDate,
    /// Why: what changed since the live version was made.
    Outdated(String),
    /// The error the last run of this version ended with.
    FailedBefore(String),
    /// The state the manifest says (`processing`, `publishing`).
    InProgress(String),
    /// Why the outputs are taken to have no source.
    Orphaned(String),
}

impl Status {
    /// The status in words, as the plan shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Status::New => "new",
            Status::UpToDate => "up to date",
            Status::Outdated(_) => "outdated",
            Status::FailedBefore(_) => "failed before",
            Status::InProgress(_) => "in progress",
            Status::Orphaned(_) => "orphaned",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Status::New | Status::UpToDate => None,
            Status::Outdated(r)
            | Status::FailedBefore(r)
            | Status::InProgress(r)
            | Status::Orphaned(r) => Some(r),
        }
    }

    /// Every status, in the order a summary lists them.
    pub const NAMES: [&'static str; 6] = [
        "new",
        "up to date",
        "outdated",
        "failed before",
        "in progress",
        "orphaned",
    ];
}

/// One title of the plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlannedTitle {
    pub title: String,
    /// The key the work starts from (a media file or a title manifest); `None` for an
    /// orphan.
    pub key: Option<String>,
    #[serde(skip)]
    pub source: Option<ObjectInfo>,
    #[serde(flatten)]
    pub status: Status,
    /// The version the sources and the current settings give (`None` for an orphan, or a
    /// title manifest whose inputs are not all there).
    pub version: Option<String>,
    /// The version the master names now.
    pub live: Option<String>,
    /// When the master last switched versions (the manifest's `flipped_at`).
    #[serde(skip)]
    pub flipped_at: Option<u64>,
    /// The title's folder of outputs.
    pub folder: String,
    /// Bytes of the source (its inputs, for a title manifest); 0 for an orphan.
    pub bytes: u64,
}

/// Which sources the plan covers.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Key prefix of the sources (`uploads/shows/`).
    pub prefix: String,
    /// Only sources whose key (or title) matches this pattern (`*` any run of characters,
    /// `/` included; `?` one character).
    pub only: Option<String>,
    /// Only sources written at or after this (Unix seconds).
    pub since: Option<u64>,
    /// Look for orphaned outputs too (a walk of the output folders).
    pub orphans: bool,
}

impl Scope {
    fn covers(&self, source: &ObjectInfo, title: &Title) -> bool {
        let matches = self
            .only
            .as_deref()
            .is_none_or(|p| glob_match(p, &source.key) || glob_match(p, title.as_str()));
        let recent = self
            .since
            .is_none_or(|since| source.last_modified.is_some_and(|t| t >= since));
        matches && recent
    }
}

/// Plans every title under `scope`, handing each to `each` as soon as it is decided (it
/// returns whether to go on): sources in key order, then, with `scope.orphans`, the orphans.
pub fn plan(
    store: &dyn Store,
    config: &PipelineConfig,
    scope: &Scope,
    each: &mut dyn FnMut(PlannedTitle) -> Result<bool>,
) -> Result<()> {
    let manifests = title_manifests(store, config, &scope.prefix)?;
    let claimed: HashSet<&str> = manifests.values().flatten().map(String::as_str).collect();
    let mut planner = Planner {
        store,
        config,
        scope,
        manifests: &manifests,
        claimed,
        open: Vec::new(),
        seen: HashSet::new(),
        stopped: false,
    };
    store.list_pages(&scope.prefix, &mut |page| {
        for info in page {
            planner.add(info, each)?;
            if planner.stopped {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    while let Some(group) = planner.open.pop() {
        if planner.stopped {
            return Ok(());
        }
        planner.close(group, each)?;
    }
    if scope.orphans && !planner.stopped {
        planner.orphans(each)?;
    }
    Ok(())
}

/// Every title manifest under `prefix` with the inputs it names (empty when it cannot be
/// read: its job says why).
fn title_manifests(
    store: &dyn Store,
    config: &PipelineConfig,
    prefix: &str,
) -> Result<HashMap<String, Vec<String>>> {
    let mut found = HashMap::new();
    store.list_pages(prefix, &mut |page| {
        for info in page {
            if let KeyRole::TitleManifest { .. } = classify_key(config, &info.key) {
                let inputs = match store.get(&info.key)? {
                    Some(bytes) => {
                        TitleManifest::parse(config, &info.key, &bytes).unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                found.insert(info.key, inputs);
            }
        }
        Ok(true)
    })?;
    Ok(found)
}

/// The keys of one title seen so far: all start with `prefix`.
struct Group {
    title: Title,
    prefix: String,
    sources: Vec<ObjectInfo>,
    side_files: Vec<ObjectInfo>,
}

struct Planner<'a> {
    store: &'a dyn Store,
    config: &'a PipelineConfig,
    scope: &'a Scope,
    manifests: &'a HashMap<String, Vec<String>>,
    claimed: HashSet<&'a str>,
    /// The titles whose keys may still come, each one's prefix inside the one before's.
    open: Vec<Group>,
    /// The output folders of the titles that have a source (hashed), for the orphans.
    seen: HashSet<u64>,
    stopped: bool,
}

impl Planner<'_> {
    fn add(
        &mut self,
        info: ObjectInfo,
        each: &mut dyn FnMut(PlannedTitle) -> Result<bool>,
    ) -> Result<()> {
        // Titles whose keys are all past: the listing is sorted, none of theirs comes later.
        while let Some(group) = self.open.pop() {
            if info.key.starts_with(&group.prefix) {
                self.open.push(group);
                break;
            }
            self.close(group, each)?;
            if self.stopped {
                return Ok(());
            }
        }
        let (title, side_file) = match classify_key(self.config, &info.key) {
            KeyRole::Media { title } if self.claimed.contains(info.key.as_str()) => {
                // Built with the title that names it; its own old outputs are not orphans.
                self.seen
                    .insert(hashed(&title.folder(&self.config.output_prefix)));
                return Ok(());
            }
            KeyRole::Media { title } | KeyRole::TitleManifest { title } => (title, false),
            KeyRole::Subtitles { title } => (title, true),
            KeyRole::Ignored(_) => return Ok(()),
        };
        let prefix = format!("{}{}.", self.config.input_prefix, title.as_str());
        let group = match self.open.last_mut() {
            Some(g) if g.title == title => g,
            _ => {
                self.open.push(Group {
                    title,
                    prefix,
                    sources: Vec::new(),
                    side_files: Vec::new(),
                });
                let last = self.open.len() - 1;
                &mut self.open[last]
            }
        };
        match side_file {
            true => group.side_files.push(info),
            false => group.sources.push(info),
        }
        Ok(())
    }

    /// Plans each source of a title whose keys are all seen.
    fn close(
        &mut self,
        group: Group,
        each: &mut dyn FnMut(PlannedTitle) -> Result<bool>,
    ) -> Result<()> {
        let folder = group.title.folder(&self.config.output_prefix);
        if !group.sources.is_empty() {
            self.seen.insert(hashed(&folder));
        }
        for source in &group.sources {
            if !self.scope.covers(source, &group.title) {
                continue;
            }
            let planned = self.plan_source(&group, source, &folder)?;
            if !each(planned)? {
                self.stopped = true;
                return Ok(());
            }
        }
        Ok(())
    }

    fn plan_source(
        &self,
        group: &Group,
        source: &ObjectInfo,
        folder: &str,
    ) -> Result<PlannedTitle> {
        let source = &self.with_etag(source.clone())?;
        let (side_files, _) = pick_side_files(
            self.config,
            parent(&source.key),
            &group.title,
            group.side_files.iter().cloned(),
        );
        let side_files = side_files
            .into_iter()
            .map(|s| self.with_etag(s))
            .collect::<Result<Vec<_>>>()?;
        // The inputs the version is made of: the media file, or a title manifest's inputs.
        let inputs: Option<Vec<ObjectInfo>> = match self.manifests.get(&source.key) {
            None => Some(vec![source.clone()]),
            Some(keys) if keys.is_empty() => None,
            Some(keys) => keys
                .iter()
                .map(|k| self.store.head(k))
                .collect::<Result<Option<Vec<_>>>>()?,
        };
        let version = inputs.as_ref().map(|inputs| {
            let etags: Vec<&str> = inputs.iter().map(|i| i.etag.as_str()).collect();
            let subs: Vec<(String, String)> = side_files
                .iter()
                .map(|s| (s.key.clone(), s.etag.clone()))
                .collect();
            version_for_sources(&etags, &subs, &self.config.settings())
        });
        let manifest = self.store.get(&format!("{folder}{MANIFEST_KEY}"))?;
        let manifest = manifest.map(|bytes| Manifest::parse(&bytes));
        let (status, live, flipped_at) = match manifest {
            None => (Status::New, None, None),
            Some(Err(e)) => (
                Status::Outdated(format!("its manifest cannot be read: {e}")),
                None,
                None,
            ),
            Some(Ok(m)) => {
                let now = Now {
                    inputs: inputs.as_deref(),
                    side_files: &side_files,
                    version: version.as_deref(),
                };
                (self.status_of(&m, &now), m.version.clone(), m.flipped_at)
            }
        };
        Ok(PlannedTitle {
            title: group.title.as_str().to_owned(),
            key: Some(source.key.clone()),
            source: Some(source.clone()),
            status,
            version,
            live,
            flipped_at,
            folder: folder.to_owned(),
            bytes: inputs.map_or(source.size, |i| i.iter().map(|o| o.size).sum()),
        })
    }

    /// `info` with its ETag: S3 lists every object's, but a server that lists none (s3s-fs)
    /// costs a HEAD of each object the plan reckons with.
    fn with_etag(&self, info: ObjectInfo) -> Result<ObjectInfo> {
        if !info.etag.is_empty() {
            return Ok(info);
        }
        Ok(self.store.head(&info.key)?.unwrap_or(info))
    }

    fn status_of(&self, m: &Manifest, now: &Now<'_>) -> Status {
        let Some(version) = now.version else {
            return Status::Outdated("the title manifest's inputs are not all there".into());
        };
        let ours = m.target_version.as_deref() == Some(version);
        match m.state {
            State::Complete if m.version.as_deref() == Some(version) => Status::UpToDate,
            State::Failed if ours => Status::FailedBefore(
                m.error
                    .clone()
                    .unwrap_or_else(|| "no reason recorded".into()),
            ),
            State::Processing | State::Publishing if ours => {
                let state = if m.state == State::Processing {
                    "processing"
                } else {
                    "publishing"
                };
                Status::InProgress(state.into())
            }
            _ => Status::Outdated(self.why_outdated(m, now)),
        }
    }

    /// What differs between what the manifest records and what the version would be made
    /// of now.
    fn why_outdated(&self, m: &Manifest, now: &Now<'_>) -> String {
        let same = |recorded: &[SourceInfo], current: &[ObjectInfo]| {
            recorded.len() == current.len()
                && recorded
                    .iter()
                    .zip(current)
                    .all(|(r, c)| r.key == c.key && r.etag.as_deref() == Some(c.etag.as_str()))
        };
        if m.version.is_none() {
            return "it has never been published".into();
        }
        if !now.inputs.is_some_and(|inputs| same(&m.sources, inputs)) {
            return "its source changed".into();
        }
        if !same(&m.subtitles, now.side_files) {
            return "its side files changed".into();
        }
        let (packager, settings) = settings_in_version(&self.config.settings());
        match &m.made_with {
            Some(made) if made.packager != packager => {
                format!("the packager changed ({} → {packager})", made.packager)
            }
            Some(made) if made.settings != settings => {
                format!("the settings changed ({} → {settings})", made.settings)
            }
            Some(_) => "its version was made otherwise".into(),
            None => "the settings or the packager changed".into(),
        }
    }

    /// The title folders under the scope's part of the output prefix whose title had no
    /// source in the listing, and whose manifest's sources are all gone.
    fn orphans(&mut self, each: &mut dyn FnMut(PlannedTitle) -> Result<bool>) -> Result<()> {
        let under = self
            .scope
            .prefix
            .strip_prefix(&self.config.input_prefix)
            .unwrap_or("");
        let within = format!("{}{under}", self.config.output_prefix);
        let folder_of = &under[..under.rfind('/').map_or(0, |i| i + 1)];
        let mut folders = vec![format!("{}{folder_of}", self.config.output_prefix)];
        while let Some(folder) = folders.pop() {
            let mut below = self.store.folders(&folder)?;
            // Depth first, in key order.
            below.reverse();
            for sub in below {
                if !sub.ends_with(&format!("{BUNDLE_SUFFIX}/")) {
                    folders.push(sub);
                    continue;
                }
                let in_scope = sub.starts_with(&within)
                    && self.scope.only.as_deref().is_none_or(|p| {
                        let title = sub[self.config.output_prefix.len()..]
                            .trim_end_matches('/')
                            .trim_end_matches(BUNDLE_SUFFIX);
                        glob_match(p, title)
                    });
                if !in_scope || self.seen.contains(&hashed(&sub)) {
                    continue;
                }
                if let Some(orphan) = self.orphan(&sub)? {
                    if !each(orphan)? {
                        self.stopped = true;
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    fn orphan(&self, folder: &str) -> Result<Option<PlannedTitle>> {
        let title = folder
            .strip_prefix(&self.config.output_prefix)
            .and_then(|f| f.strip_suffix(&format!("{BUNDLE_SUFFIX}/")))
            .unwrap_or(folder);
        let manifest = self.store.get(&format!("{folder}{MANIFEST_KEY}"))?;
        let manifest = manifest.and_then(|bytes| Manifest::parse(&bytes).ok());
        let reason = match &manifest {
            None => {
                let mut empty = true;
                self.store.list_pages(folder, &mut |page| {
                    empty = page.is_empty();
                    Ok(false)
                })?;
                if empty {
                    return Ok(None);
                }
                "no readable manifest, and no source of its title is listed".to_owned()
            }
            Some(m) => {
                for s in &m.sources {
                    if self.store.head(&s.key)?.is_some() {
                        return Ok(None);
                    }
                }
                let keys: Vec<&str> = m.sources.iter().map(|s| s.key.as_str()).collect();
                format!("{} is gone", keys.join(", "))
            }
        };
        Ok(Some(PlannedTitle {
            title: title.to_owned(),
            key: None,
            source: None,
            status: Status::Orphaned(reason),
            version: None,
            flipped_at: manifest.as_ref().and_then(|m| m.flipped_at),
            live: manifest.and_then(|m| m.version),
            folder: folder.to_owned(),
            bytes: 0,
        }))
    }
}

/// What a title's version would be made of now.
struct Now<'a> {
    inputs: Option<&'a [ObjectInfo]>,
    side_files: &'a [ObjectInfo],
    version: Option<&'a str>,
}

fn hashed(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Whether `text` matches `pattern`: `*` any run of characters (`/` included), `?` any one
/// character, anything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob_match("*", ""));
        assert!(glob_match("uploads/shows/*", "uploads/shows/a/b.mp4"));
        assert!(glob_match("*.mov", "uploads/x.mov"));
        assert!(!glob_match("*.mov", "uploads/x.mp4"));
        assert!(glob_match("ep?", "ep1"));
        assert!(!glob_match("ep?", "ep10"));
        assert!(glob_match("*ep*1*", "shows/ep/x1y"));
        assert!(glob_match("caf\u{e9}*", "caf\u{e9} cr\u{e8}me.mp4"));
        assert!(!glob_match("a*b", "acd"));
    }
}
