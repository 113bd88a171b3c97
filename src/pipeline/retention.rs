//! Removing a title and collecting the versions a re-publish retired.

use crate::error::Result;
use crate::pipeline::manifest::{
    read_manifest, update_manifest, Change, Manifest, MANIFEST_KEY, MASTER_KEY,
};
use crate::store::{ObjectInfo, Store};

/// Deletes the title at `prefix` by its record: the master first (the title stops being
/// playable), then every object of each version its manifest records (live, being written,
/// retired), the manifest last. Nothing is found by pattern, so no other title's objects can
/// match. Without a manifest only the master is deleted (the manifest is written before the
/// first object of any version, so a title without one has no versions). Returns how many
/// objects were deleted.
pub fn remove_title(store: &dyn Store, prefix: &str) -> Result<usize> {
    let manifest = read_manifest(store, prefix)?;
    let mut deleted = 0;
    let master = format!("{prefix}{MASTER_KEY}");
    if store.head(&master)?.is_some() {
        store.delete(&master)?;
        deleted += 1;
    }
    let Some(manifest) = manifest else {
        return Ok(deleted);
    };
    for version in manifest.recorded_versions() {
        for o in store.list(&format!("{prefix}v/{version}/"))? {
            store.delete(&o.key)?;
            deleted += 1;
        }
    }
    store.delete(&format!("{prefix}{MANIFEST_KEY}"))?;
    Ok(deleted + 1)
}

/// Which objects of `listing` (a listing of the title's prefix) garbage collection removes:
/// those of versions retired at least `grace` seconds before `now`, never the live one nor
/// the one being written. Directories that the manifest does not list as retired are left
/// alone (another worker may be writing them).
pub fn gc_plan(
    listing: &[ObjectInfo],
    prefix: &str,
    manifest: &Manifest,
    now: u64,
    grace: u64,
) -> Vec<String> {
    let expired = expired_versions(manifest, now, grace);
    listing
        .iter()
        .filter_map(|o| {
            let rel = o.key.strip_prefix(prefix)?.strip_prefix("v/")?;
            let (version, rest) = rel.split_once('/')?;
            (!rest.is_empty() && expired.iter().any(|v| v == version)).then(|| o.key.clone())
        })
        .collect()
}

/// Removes the objects [`gc_plan`] selects; returns the versions whose objects are gone
/// (for the caller to drop from `manifest.retired` when it next writes the manifest: this
/// function never writes the manifest, which has one writer, the job).
pub fn gc(
    store: &dyn Store,
    prefix: &str,
    manifest: &Manifest,
    now: u64,
    grace: u64,
) -> Result<Vec<String>> {
    let listing = store.list(&format!("{prefix}v/"))?;
    for key in gc_plan(&listing, prefix, manifest, now, grace) {
        store.delete(&key)?;
    }
    Ok(expired_versions(manifest, now, grace))
}

/// What [`collect_title`] removed (or, in a dry run, would remove) of one title.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Collected {
    pub versions: Vec<String>,
    pub objects: usize,
    pub bytes: u64,
}

/// Removes the versions of the title at `prefix` that its manifest records as retired at
/// least `grace` seconds before `now` (never the live one, nor the one being written or
/// grown: [`expired_versions`]), each by its own folder (`v/<version>/`), then drops them
/// from the manifest; with `dry_run`, only counts them. For `reprocess --gc`, across a
/// catalogue; a job collects its own title's after each publish.
pub fn collect_title(
    store: &dyn Store,
    prefix: &str,
    now: u64,
    grace: u64,
    dry_run: bool,
) -> Result<Collected> {
    let Some(manifest) = read_manifest(store, prefix)? else {
        return Ok(Collected::default());
    };
    let mut collected = Collected {
        versions: expired_versions(&manifest, now, grace),
        ..Collected::default()
    };
    for version in &collected.versions {
        let mut keys = Vec::new();
        store.list_pages(&format!("{prefix}v/{version}/"), &mut |page| {
            for o in page {
                collected.objects += 1;
                collected.bytes += o.size;
                keys.push(o.key);
            }
            Ok(true)
        })?;
        if !dry_run {
            for key in keys {
                store.delete(&key)?;
            }
        }
    }
    if !dry_run && !collected.versions.is_empty() {
        drop_collected(store, prefix, &collected.versions, now, grace)?;
    }
    Ok(collected)
}

/// Drops `collected` from the manifest's retired versions, as it is now (another job may
/// have taken one up again meanwhile: only those still expired go).
pub fn drop_collected(
    store: &dyn Store,
    prefix: &str,
    collected: &[String],
    now: u64,
    grace: u64,
) -> Result<()> {
    update_manifest(store, prefix, |fresh| {
        let Some(mut next) = fresh else {
            return Ok(Change::Keep(()));
        };
        let still = expired_versions(&next, now, grace);
        next.retired
            .retain(|r| !(collected.contains(&r.version) && still.contains(&r.version)));
        Ok(Change::Write(Box::new(next), ()))
    })
}

pub fn expired_versions(manifest: &Manifest, now: u64, grace: u64) -> Vec<String> {
    manifest
        .retired
        .iter()
        .filter(|r| r.retired_at.saturating_add(grace) <= now)
        .filter(|r| manifest.version.as_ref() != Some(&r.version))
        .filter(|r| manifest.target_version.as_ref() != Some(&r.version))
        .map(|r| r.version.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::manifest::{RetiredVersion, State};

    fn info(key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size: 1,
            etag: "e".into(),
            last_modified: None,
            content_type: None,
            cache_control: None,
        }
    }

    #[test]
    fn gc_removes_only_expired_retired_versions() {
        let prefix = "hls/t/";
        let (live, old, recent, failed) = (
            "aaaaaaaaaaaa",
            "bbbbbbbbbbbb",
            "cccccccccccc",
            "dddddddddddd",
        );
        let listing: Vec<ObjectInfo> = [live, old, recent, failed, "eeeeeeeeeeee"]
            .iter()
            .flat_map(|v| {
                [
                    info(&format!("{prefix}v/{v}/video_180p/init.mp4")),
                    info(&format!("{prefix}v/{v}/video_180p/index.m3u8")),
                ]
            })
            .chain([info("hls/t/master.m3u8"), info("hls/t/manifest.json")])
            .collect();
        let mut m = Manifest::processing(Vec::new(), 0);
        m.state = State::Complete;
        m.version = Some(live.into());
        m.retired = vec![
            RetiredVersion {
                version: old.into(),
                retired_at: 1_000,
            },
            RetiredVersion {
                version: recent.into(),
                retired_at: 9_000,
            },
            RetiredVersion {
                version: failed.into(),
                retired_at: 2_000,
            },
            // A retired entry naming the live version (re-published) is never collected.
            RetiredVersion {
                version: live.into(),
                retired_at: 0,
            },
        ];
        let plan = gc_plan(&listing, prefix, &m, 10_000, 3_600);
        let versions: Vec<&str> = plan.iter().map(|k| &k[8..20]).collect();
        assert_eq!(versions, [old, old, failed, failed]);
        assert!(gc_plan(&listing, prefix, &m, 4_000, 3_600).is_empty());
        m.target_version = Some(old.into());
        let plan = gc_plan(&listing, prefix, &m, 10_000, 3_600);
        assert!(plan.iter().all(|k| k.contains(failed)), "{plan:?}");
    }
}
