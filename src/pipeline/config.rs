//! The worker's configuration: defaults, then an optional TOML file, then `HLSPIPE_*`
//! environment variables (what Lambda sets), each overriding the one before.
//!
//! The library never reads the process environment or a file itself: callers pass the
//! variables in (`std::env::vars()` in the binaries, a map in tests) and the TOML text.
//!
//! | variable                              | TOML key                | default                  |
//! |---------------------------------------|-------------------------|--------------------------|
//! | `HLSPIPE_INPUT_PREFIX`                | `input_prefix`          | `uploads/`               |
//! | `HLSPIPE_OUTPUT_PREFIX`               | `output_prefix`         | `hls/`                   |
//! | `HLSPIPE_SEGMENT_DURATION`            | `segment_duration`      | `6`                      |
//! | `HLSPIPE_CONCURRENCY`                 | `concurrency`           | `4`                      |
//! | `HLSPIPE_EXTENSIONS` (`.mp4,.mov`)    | `extensions`            | `.mp4 .m4v .mov .m4a`    |
//! | `HLSPIPE_STORE` (`file:///srv/b`)     | `store`                 | none                     |
//! | `HLSPIPE_GC_GRACE_SECONDS`            | `gc_grace_seconds`      | `86400`                  |
//! | `HLSPIPE_DISTRIBUTION_ID`             | `[cdn] distribution_id` | none (no invalidation)   |
//! | `HLSPIPE_EVENT_BUS` (`default`)       | `event_bus`             | none (no title events)   |
//! | `HLSPIPE_LADDER` (`auto`, `720p:3M,…`) | `ladder`               | `off`                    |
//! | `HLSPIPE_KEEP_SOURCE` (`on`, `off`)   | `keep_source` (bool)    | `on`                     |
//! | `HLSPIPE_FFMPEG` (a path)             | `ffmpeg`                | `ffmpeg` on `PATH`       |
//! | `HLSPIPE_CHUNK_SECONDS` (0: no chunks) | `chunk_seconds`        | `10`                     |
//! | `HLSPIPE_PUBLISH_SHARE_MIB` (0: never) | `publish_share_mib`    | `256`                    |
//!
//! `HLSPIPE_CLOUDFRONT_DISTRIBUTION_ID` is accepted as another name for
//! `HLSPIPE_DISTRIBUTION_ID`.
//!
//! `HLSPIPE_CONFIG` names the TOML file; the binary reads it and passes the text.

use crate::error::{Error, Result};
use crate::media::package::Settings;
use crate::transcode::encode::{check_chunk_seconds, LadderSettings, DEFAULT_CHUNK_SECONDS};
use crate::transcode::ladder::Ladder;
use serde::Deserialize;

/// [`PipelineConfig::publish_share_mib`] by default: a share takes a worker a few seconds
/// to write, long beside the cost of planning it (reading the rungs' headers again).
pub const DEFAULT_PUBLISH_SHARE_MIB: u64 = 256;

/// Environment variable naming the optional TOML file.
pub const CONFIG_FILE_VAR: &str = "HLSPIPE_CONFIG";

/// Where invalidations go (`cdn::CloudFrontInvalidator`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnConfig {
    pub distribution_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// Uploads are read under this prefix (ends with `/`).
    pub input_prefix: String,
    /// Titles are written under this prefix (ends with `/`); never overlaps the input's.
    pub output_prefix: String,
    /// Target segment duration in seconds.
    pub segment_duration: f64,
    /// Objects written at once while publishing.
    pub concurrency: usize,
    /// Accepted media extensions, lower case with the dot (`.mp4`); matched ignoring case.
    pub extensions: Vec<String>,
    /// Store URL (`file:///path`: one folder per bucket below it).
    pub store: Option<String>,
    /// How long a superseded version stays readable before `worker::gc` removes it, for
    /// players that loaded the previous master just before the flip.
    pub gc_grace_seconds: u64,
    pub cdn: Option<CdnConfig>,
    /// The EventBridge bus (name or ARN) title events go to (`aws::events`); none: no
    /// events.
    pub event_bus: Option<String>,
    /// The transcoding stage's ladder (off unless configured: DESIGN.md "Surfaces").
    pub ladder: Ladder,
    /// With a ladder: the source stays the top rung when it can pass through.
    pub keep_source: bool,
    /// The ffmpeg to run; `None`: `ffmpeg` on `PATH`.
    pub ffmpeg: Option<String>,
    /// With a ladder: the video is encoded in chunks of about this many seconds (0: whole).
    pub chunk_seconds: f64,
    /// A ladder fanned out across the fleet is published in shares of about this many MiB
    /// of segments, each written by a worker of its own (0: one worker writes it all).
    pub publish_share_mib: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            input_prefix: "uploads/".into(),
            output_prefix: "hls/".into(),
            segment_duration: Settings::default().segment_duration,
            concurrency: 4,
            extensions: [".mp4", ".m4v", ".mov", ".m4a"].map(String::from).into(),
            store: None,
            gc_grace_seconds: 86_400,
            cdn: None,
            event_bus: None,
            ladder: Ladder::Off,
            keep_source: true,
            ffmpeg: None,
            chunk_seconds: DEFAULT_CHUNK_SECONDS,
            publish_share_mib: DEFAULT_PUBLISH_SHARE_MIB,
        }
    }
}

/// The TOML file: every key optional, unknown keys refused (a typo must not pass silently).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    input_prefix: Option<String>,
    output_prefix: Option<String>,
    segment_duration: Option<f64>,
    concurrency: Option<usize>,
    extensions: Option<Vec<String>>,
    store: Option<String>,
    gc_grace_seconds: Option<u64>,
    cdn: Option<CdnConfig>,
    event_bus: Option<String>,
    ladder: Option<String>,
    keep_source: Option<bool>,
    ffmpeg: Option<String>,
    chunk_seconds: Option<f64>,
    publish_share_mib: Option<u64>,
}

impl PipelineConfig {
    /// Defaults, then `toml_text` (the file named by `HLSPIPE_CONFIG`, if any), then the
    /// `HLSPIPE_*` variables of `env`; validated. Variables of other components
    /// (`HLSPIPE_` names not listed above) are left alone.
    pub fn load<I, K, V>(env: I, toml_text: Option<&str>) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut c = PipelineConfig::default();
        if let Some(text) = toml_text {
            let f: FileConfig =
                toml::from_str(text).map_err(|e| Error::Config(format!("config file: {e}")))?;
            c.apply_file(f)?;
        }
        for (k, v) in env {
            let (k, v) = (k.as_ref(), v.as_ref());
            match k {
                "HLSPIPE_INPUT_PREFIX" => c.input_prefix = v.to_string(),
                "HLSPIPE_OUTPUT_PREFIX" => c.output_prefix = v.to_string(),
                "HLSPIPE_SEGMENT_DURATION" => c.segment_duration = number(k, v)?,
                "HLSPIPE_CONCURRENCY" => c.concurrency = number(k, v)?,
                "HLSPIPE_EXTENSIONS" => {
                    c.extensions = v
                        .split([',', ' '])
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                }
                "HLSPIPE_STORE" => c.store = Some(v.to_string()).filter(|s| !s.is_empty()),
                "HLSPIPE_GC_GRACE_SECONDS" => c.gc_grace_seconds = number(k, v)?,
                "HLSPIPE_EVENT_BUS" => c.event_bus = Some(v.to_string()).filter(|b| !b.is_empty()),
                "HLSPIPE_LADDER" => c.ladder = ladder(v)?,
                "HLSPIPE_KEEP_SOURCE" => c.keep_source = on_off(k, v)?,
                "HLSPIPE_FFMPEG" => c.ffmpeg = Some(v.to_string()).filter(|p| !p.is_empty()),
                "HLSPIPE_CHUNK_SECONDS" => c.chunk_seconds = number(k, v)?,
                "HLSPIPE_PUBLISH_SHARE_MIB" => c.publish_share_mib = number(k, v)?,
                "HLSPIPE_DISTRIBUTION_ID" | "HLSPIPE_CLOUDFRONT_DISTRIBUTION_ID" => {
                    c.cdn = (!v.is_empty()).then(|| CdnConfig {
                        distribution_id: v.to_string(),
                    })
                }
                _ => {}
            }
        }
        c.validate()
    }

    /// The TOML file's settings over the defaults.
    fn apply_file(&mut self, f: FileConfig) -> Result<()> {
        let c = self;
        if let Some(v) = f.input_prefix {
            c.input_prefix = v;
        }
        if let Some(v) = f.output_prefix {
            c.output_prefix = v;
        }
        if let Some(v) = f.segment_duration {
            c.segment_duration = v;
        }
        if let Some(v) = f.concurrency {
            c.concurrency = v;
        }
        if let Some(v) = f.extensions {
            c.extensions = v;
        }
        c.store = f.store.or(c.store.take());
        if let Some(v) = f.gc_grace_seconds {
            c.gc_grace_seconds = v;
        }
        c.cdn = f.cdn.or(c.cdn.take());
        c.event_bus = f.event_bus.or(c.event_bus.take());
        if let Some(v) = f.ladder {
            c.ladder = ladder(&v)?;
        }
        if let Some(v) = f.keep_source {
            c.keep_source = v;
        }
        c.ffmpeg = f.ffmpeg.or(c.ffmpeg.take());
        if let Some(v) = f.chunk_seconds {
            c.chunk_seconds = v;
        }
        if let Some(v) = f.publish_share_mib {
            c.publish_share_mib = v;
        }
        Ok(())
    }

    /// Normalises (prefixes end with `/`, extensions are `.lowercase`) and checks.
    pub fn validate(mut self) -> Result<Self> {
        self.input_prefix = prefix("input prefix", &self.input_prefix)?;
        self.output_prefix = prefix("output prefix", &self.output_prefix)?;
        // A worker that reads what it writes triggers itself forever (DESIGN.md "Object
        // layout"; AWS Lambda docs warn about recursive S3 invocations).
        if self.input_prefix.starts_with(&self.output_prefix)
            || self.output_prefix.starts_with(&self.input_prefix)
        {
            return Err(Error::Config(format!(
                "input prefix '{}' and output prefix '{}' overlap: the worker would process \
                 its own output; choose two prefixes neither of which starts with the other",
                self.input_prefix, self.output_prefix
            )));
        }
        self.settings().validate()?;
        check_chunk_seconds(self.chunk_seconds).map_err(Error::Config)?;
        if !(1..=64).contains(&self.concurrency) {
            return Err(Error::Config(format!(
                "concurrency {} is outside 1..=64",
                self.concurrency
            )));
        }
        let mut exts = Vec::with_capacity(self.extensions.len());
        for e in &self.extensions {
            let e = e.trim().to_ascii_lowercase();
            let e = if e.starts_with('.') {
                e
            } else {
                format!(".{e}")
            };
            if e.len() < 2 || !e[1..].chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(Error::Config(format!("'{e}' is not a file extension")));
            }
            if !exts.contains(&e) {
                exts.push(e);
            }
        }
        if exts.is_empty() {
            return Err(Error::Config("no media extension accepted".into()));
        }
        self.extensions = exts;
        if let Some(cdn) = &self.cdn {
            if cdn.distribution_id.trim().is_empty() {
                return Err(Error::Config("empty CloudFront distribution id".into()));
            }
        }
        Ok(self)
    }

    /// Packaging settings for this configuration (with the ladder's, which go into the
    /// version).
    pub fn settings(&self) -> Settings {
        Settings {
            segment_duration: self.segment_duration,
            transcode: self
                .ladder
                .is_on()
                .then(|| self.ladder_settings().describe()),
            ..Settings::default()
        }
    }

    /// The transcoding stage's settings.
    pub fn ladder_settings(&self) -> LadderSettings {
        LadderSettings {
            chunk_seconds: self.chunk_seconds,
            concurrency: self.concurrency,
            ..LadderSettings::new(self.ladder.clone(), self.keep_source, self.segment_duration)
        }
    }
}

fn ladder(text: &str) -> Result<Ladder> {
    Ladder::parse(text).map_err(|e| Error::Config(e.to_string()))
}

fn on_off(name: &str, text: &str) -> Result<bool> {
    switch(text).ok_or_else(|| Error::Config(format!("{name}='{text}': on or off")))
}

/// A switch's value: `on`/`off` (or `true`/`false`, `yes`/`no`, `1`/`0`); `None` otherwise.
pub fn switch(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Some(true),
        "off" | "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T> {
    text.trim()
        .parse()
        .map_err(|_| Error::Config(format!("{name}='{text}' is not a number")))
}

/// A key prefix: relative, no empty / `.` / `..` segment, ending with `/`.
fn prefix(what: &str, p: &str) -> Result<String> {
    let p = p.trim();
    let trimmed = p.strip_suffix('/').unwrap_or(p);
    if trimmed.is_empty() {
        return Err(Error::Config(format!(
            "{what} is empty: it must name a folder, like 'uploads/'"
        )));
    }
    if trimmed
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(Error::Config(format!(
            "{what} '{p}' must be a relative folder without empty, '.' or '..' parts"
        )));
    }
    Ok(format!("{trimmed}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = PipelineConfig::load(env(&[]), None).unwrap();
        assert_eq!(c, PipelineConfig::default());
        assert_eq!(c.extensions, [".mp4", ".m4v", ".mov", ".m4a"]);
    }

    #[test]
    fn env_overrides_file() {
        let toml = "input_prefix = \"in\"\noutput_prefix = \"out/\"\nconcurrency = 2\n\
                    extensions = [\"MP4\"]\n[cdn]\ndistribution_id = \"E1\"\n";
        let c = PipelineConfig::load(
            env(&[
                ("HLSPIPE_CONCURRENCY", "8"),
                ("HLSPIPE_SEGMENT_DURATION", "4"),
                ("HLSPIPE_STORE", "file:///tmp/b"),
                ("HLSPIPE_SIGNING_KEY", "not ours"),
                ("PATH", "/bin"),
            ]),
            Some(toml),
        )
        .unwrap();
        assert_eq!(c.input_prefix, "in/");
        assert_eq!(c.output_prefix, "out/");
        assert_eq!(c.concurrency, 8);
        assert_eq!(c.segment_duration, 4.0);
        assert_eq!(c.extensions, [".mp4"]);
        assert_eq!(c.store.as_deref(), Some("file:///tmp/b"));
        assert_eq!(c.cdn.unwrap().distribution_id, "E1");
    }

    #[test]
    fn overlapping_prefixes_are_refused() {
        for (i, o) in [
            ("uploads/", "uploads/hls/"),
            ("media/", "media"),
            ("a/b/", "a/"),
        ] {
            let err = PipelineConfig::load(
                env(&[("HLSPIPE_INPUT_PREFIX", i), ("HLSPIPE_OUTPUT_PREFIX", o)]),
                None,
            )
            .unwrap_err();
            assert!(err.to_string().contains("overlap"), "{i} {o}: {err}");
        }
        // "up/" and "upload/" share letters, not a folder: fine.
        PipelineConfig::load(
            env(&[
                ("HLSPIPE_INPUT_PREFIX", "up"),
                ("HLSPIPE_OUTPUT_PREFIX", "upload"),
            ]),
            None,
        )
        .unwrap();
    }

    #[test]
    fn bad_values_are_refused() {
        for pairs in [
            [("HLSPIPE_INPUT_PREFIX", "")],
            [("HLSPIPE_INPUT_PREFIX", "/abs")],
            [("HLSPIPE_OUTPUT_PREFIX", "a/../b")],
            [("HLSPIPE_SEGMENT_DURATION", "0.1")],
            [("HLSPIPE_CONCURRENCY", "zero")],
            [("HLSPIPE_EXTENSIONS", ".mp4!")],
        ] {
            assert!(
                PipelineConfig::load(env(&pairs), None).is_err(),
                "{pairs:?}"
            );
        }
        assert!(PipelineConfig::load(env(&[]), Some("input_prefx = \"a/\"")).is_err());
    }
}
