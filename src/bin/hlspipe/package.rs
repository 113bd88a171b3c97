//! `hlspipe package INPUT... OUT`: inputs are MP4 paths or `s3://bucket/key`; OUT is
//! a directory or `s3://bucket/prefix/`. Local paths are read as files and written
//! with kernel copies; buckets go through the stores `HLSPIPE_STORE` selects.

use anyhow::Context;
use hlspipe::clock::unix_now;
use hlspipe::media::package::{
    package_with_subtitles, Input, PackagedTitle, Settings, SubtitleInput,
};
use hlspipe::media::source::{FileSource, Source};
use hlspipe::media::text::MAX_FILE_BYTES;
use hlspipe::pipeline::config::switch;
use hlspipe::pipeline::manifest::{self, Manifest, SourceInfo};
use hlspipe::pipeline::publish::{self, PublishOptions};
use hlspipe::store::location::{as_prefix, Location, Stores};
use hlspipe::store::{DirStore, Store};
use hlspipe::transcode::encode::{
    check_chunk_seconds, encode_ladder, Encoded, LadderSettings, DEFAULT_CHUNK_SECONDS,
};
use hlspipe::transcode::ffmpeg::Ffmpeg;
use hlspipe::transcode::ladder::Ladder;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Input MP4 files or s3://bucket/key (several = one bit-rate ladder of the same content),
    /// then the output directory or s3://bucket/prefix/.
    #[arg(required = true, num_args = 2.., value_name = "INPUT... OUT")]
    paths: Vec<PathBuf>,
    /// Target segment duration in seconds; each cut is at the first video sync sample at or after it.
    #[arg(long, default_value_t = 6.0, value_parser = segment_duration)]
    segment_duration: f64,
    /// Objects written at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
    /// A subtitle side file (SRT or WebVTT; a path or s3://bucket/key), repeatable. Its
    /// name gives the language and tags, as beside an upload: `ep1.en.srt`,
    /// `ep1.pt-BR.forced.vtt`, `ep1.fr.sdh.srt`.
    #[arg(long = "subtitles", value_name = "FILE")]
    subtitles: Vec<PathBuf>,
    /// A ladder of H.264 renditions made with ffmpeg (on PATH, or HLSPIPE_FFMPEG) from the one
    /// input: `off`, `auto` (one rung per size step of Apple's table, none above the source),
    /// or rungs such as `1080p:6000k,720p:3000k,360p:800k`.
    #[arg(long, default_value = "off", value_name = "off|auto|RUNGS")]
    ladder: Ladder,
    /// With a ladder: keep the source itself as the top rung when it can pass through (`on`),
    /// or encode every rung and the audio (`off`).
    #[arg(long, default_value = "on", value_parser = on_off, value_name = "on|off", action = clap::ArgAction::Set)]
    keep_source: bool,
    /// With a ladder: the video is encoded in chunks of about this many seconds, cut at the
    /// source's key frames, `--concurrency` at a time, and stitched; 0 encodes it in one run.
    #[arg(long, default_value_t = DEFAULT_CHUNK_SECONDS, value_name = "SECONDS", value_parser = chunk_seconds)]
    chunk_seconds: f64,
}

fn on_off(text: &str) -> Result<bool, String> {
    switch(text).ok_or_else(|| format!("'{text}': on or off"))
}

/// Parses `--segment-duration`: a usage error (exit 2) when out of range.
fn chunk_seconds(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    check_chunk_seconds(secs)?;
    Ok(secs)
}

fn segment_duration(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    let settings = Settings {
        segment_duration: secs,
        ..Settings::default()
    };
    settings.validate().map_err(|e| e.to_string())?;
    Ok(secs)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (out, inputs) = match args.paths.split_last() {
        Some((out, inputs)) if !inputs.is_empty() => (out.clone(), inputs.to_vec()),
        _ => anyhow::bail!("usage: hlspipe package INPUT... OUT"),
    };
    let settings = Settings {
        segment_duration: args.segment_duration,
        transcode: args
            .ladder
            .is_on()
            .then(|| ladder_settings(&args).describe()),
        ..Settings::default()
    };
    settings.validate()?;
    let started = Instant::now();
    let started_at = unix_now();
    let out_location = Location::from_path(&out)?;
    let in_locations = inputs
        .iter()
        .map(|p| Location::from_path(p))
        .collect::<hlspipe::Result<Vec<_>>>()?;
    // Buckets are opened only when a location names one, so local runs never read
    // HLSPIPE_STORE or AWS configuration.
    let sub_locations = args
        .subtitles
        .iter()
        .map(|p| Location::from_path(p))
        .collect::<hlspipe::Result<Vec<_>>>()?;
    let uses_buckets = std::iter::once(&out_location)
        .chain(&in_locations)
        .chain(&sub_locations)
        .any(|l| matches!(l, Location::Bucket { .. }));
    let stores = if uses_buckets {
        Some(Stores::from_env()?)
    } else {
        None
    };
    let output = Output::open(&out_location, stores.as_ref())?;
    let Inputs { sources, infos } = open_inputs(&in_locations, stores.as_ref())?;
    let side_files = read_side_files(&args.subtitles, stores.as_ref())?;

    let mut manifest = Manifest::start(None, infos, None, started_at);
    manifest::write_manifest(output.store.as_ref(), &output.prefix, &manifest)
        .with_context(|| format!("cannot write to {}", out.display()))?;
    manifest.subtitles = side_files
        .iter()
        .map(|f| SourceInfo {
            key: f.name.clone(),
            etag: f.etag.clone(),
            size: f.bytes.len() as u64,
        })
        .collect();
    // The ladder's rungs, encoded before anything is packaged; removed when dropped.
    let encoded = match transcode(&args, &sources, &manifest) {
        Ok(encoded) => encoded,
        Err(e) => return Err(failed(&output, manifest, started, e)),
    };
    let inputs = match &encoded {
        Some((encoded, report)) => {
            manifest.transcode = Some(report.clone());
            encoded.with_originals(plain_inputs(&sources, &manifest))?
        }
        None => plain_inputs(&sources, &manifest),
    };
    let sources: Sources = inputs.iter().map(|i| Arc::clone(&i.source)).collect();
    let job = (&sources[..], &inputs[..], &side_files[..]);
    let ladder = encoded.as_ref().map(|(e, _)| e);
    let title = match package_and_publish(&args, &settings, &output, job, ladder) {
        Ok(title) => title,
        Err(e) => return Err(failed(&output, manifest, started, e)),
    };
    let elapsed = started.elapsed().as_secs_f64();
    manifest.complete(&title, unix_now(), true);
    manifest.elapsed_seconds = Some(elapsed);
    manifest::write_manifest(output.store.as_ref(), &output.prefix, &manifest)?;
    print_summary(&title, &output.master_location, elapsed, args.json)
}

/// Records the failure in the title's `failed` manifest and returns it to be reported.
fn failed(
    output: &Output,
    mut manifest: Manifest,
    started: Instant,
    e: hlspipe::Error,
) -> anyhow::Error {
    manifest.fail(None, &e, unix_now());
    manifest.elapsed_seconds = Some(started.elapsed().as_secs_f64());
    // The failure itself is what the user needs to hear about; a manifest that cannot be
    // written is reported after it.
    if let Err(e) = manifest::write_manifest(output.store.as_ref(), &output.prefix, &manifest) {
        eprintln!("hlspipe: also could not write the failed manifest: {e}");
    }
    e.into()
}

/// Where the title is written: a directory, or a prefix in a bucket.
struct Output {
    store: Arc<dyn Store>,
    prefix: String,
    /// The master's path or `s3://` URL, for the summary.
    master_location: String,
}

impl Output {
    fn open(location: &Location, stores: Option<&Stores>) -> anyhow::Result<Output> {
        Ok(match location {
            Location::Local(dir) => Output {
                store: Arc::new(DirStore::new(dir)),
                prefix: String::new(),
                master_location: dir.join(manifest::MASTER_KEY).display().to_string(),
            },
            Location::Bucket { bucket, key } => {
                let prefix = as_prefix(key);
                Output {
                    master_location: format!("s3://{bucket}/{prefix}{}", manifest::MASTER_KEY),
                    store: stores.context("no store configured")?.bucket(bucket)?,
                    prefix,
                }
            }
        })
    }
}

/// Opens every input: local files as files (copied by the kernel), objects through the
/// store, pinned to the ETag seen now.
fn open_inputs(locations: &[Location], stores: Option<&Stores>) -> anyhow::Result<Inputs> {
    let mut sources: Vec<Arc<dyn Source>> = Vec::with_capacity(locations.len());
    let mut infos = Vec::with_capacity(locations.len());
    for location in locations {
        match location {
            Location::Local(path) => {
                let src = FileSource::open(path)?;
                infos.push(SourceInfo {
                    key: path.display().to_string(),
                    etag: None,
                    size: src.len(),
                });
                sources.push(Arc::new(src));
            }
            Location::Bucket { bucket, key } => {
                if key.is_empty() || key.ends_with('/') {
                    anyhow::bail!(
                        "s3://{bucket}/{key}: an input must name an object, not a prefix"
                    );
                }
                let (src, info) = stores
                    .context("no store configured")?
                    .open_source(bucket, key)
                    .with_context(|| format!("cannot open s3://{bucket}/{key}"))?;
                infos.push(SourceInfo {
                    key: format!("s3://{bucket}/{key}"),
                    etag: Some(info.etag),
                    size: info.size,
                });
                sources.push(src);
            }
        }
    }
    Ok(Inputs { sources, infos })
}

/// Reads the `--subtitles` files (at most [`MAX_FILE_BYTES`] each), named by their path or
/// `s3://` URL: the name carries the language and tags.
fn read_side_files(
    paths: &[PathBuf],
    stores: Option<&Stores>,
) -> anyhow::Result<Vec<SubtitleInput>> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let (name, bytes, etag) = match Location::from_path(path)? {
            Location::Local(p) => {
                let size = std::fs::metadata(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?
                    .len();
                if size > MAX_FILE_BYTES as u64 {
                    anyhow::bail!(
                        "{}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit for subtitles",
                        p.display()
                    );
                }
                let bytes =
                    std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
                // The file name alone: the version must not depend on where the file lies.
                let name = p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                (name, bytes, None)
            }
            Location::Bucket { bucket, key } => {
                let store = stores.context("no store configured")?.bucket(&bucket)?;
                let url = format!("s3://{bucket}/{key}");
                let info = store
                    .head(&key)?
                    .with_context(|| format!("{url}: no such object"))?;
                if info.size > MAX_FILE_BYTES as u64 {
                    anyhow::bail!(
                        "{url}: {} bytes is over the {MAX_FILE_BYTES}-byte limit for subtitles",
                        info.size
                    );
                }
                let bytes = store
                    .get(&key)?
                    .with_context(|| format!("{url}: no such object"))?;
                (url, bytes, Some(info.etag))
            }
        };
        out.push(SubtitleInput { name, bytes, etag });
    }
    Ok(out)
}

/// The opened inputs, and what the manifest records of each.
struct Inputs {
    sources: Vec<Arc<dyn Source>>,
    infos: Vec<SourceInfo>,
}

/// Packages the inputs and writes the title (segments, playlists, the master flip), with a
/// progress bar on a terminal.
fn package_and_publish(
    args: &Args,
    settings: &Settings,
    output: &Output,
    (sources, inputs, side_files): (&[Arc<dyn Source>], &[Input], &[SubtitleInput]),
    encoded: Option<&Encoded>,
) -> hlspipe::Result<PackagedTitle> {
    let mut title = package_with_subtitles(inputs, side_files, settings)?;
    if let Some(encoded) = encoded {
        // The poster and the thumbnails, written with the segments, before the flip.
        title.media.extend(encoded.preview_objects(&title.version)?);
    }
    for w in &title.warnings {
        eprintln!("hlspipe: warning: {w}");
    }
    let total: u64 = title
        .media
        .iter()
        .chain(&title.playlists)
        .map(|o| o.body.len())
        .sum::<u64>()
        + title.master.body.len();
    let bar = progress_bar(total, args.json, BYTES_BAR);
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    let opts = PublishOptions {
        prefix: &output.prefix,
        concurrency: args.concurrency,
        progress: &progress,
        before_flip: None,
        deadline: None,
    };
    publish::publish(output.store.as_ref(), &title, sources, &opts)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Ok(title)
}

/// The sources of a title's inputs, in input order (what the publish reads bodies from).
type Sources = Vec<Arc<dyn Source>>;

/// The packager's inputs for the sources as given.
fn plain_inputs(sources: &[Arc<dyn Source>], manifest: &Manifest) -> Vec<Input> {
    sources
        .iter()
        .zip(&manifest.sources)
        .map(|(s, info)| Input {
            source: Arc::clone(s),
            etag: info.etag.clone(),
        })
        .collect()
}

fn ladder_settings(args: &Args) -> LadderSettings {
    LadderSettings {
        chunk_seconds: args.chunk_seconds,
        concurrency: args.concurrency,
        ..LadderSettings::new(args.ladder.clone(), args.keep_source, args.segment_duration)
    }
}

/// With `--ladder`: the rungs, encoded from the one input, and what the manifest records.
fn transcode(
    args: &Args,
    sources: &[Arc<dyn Source>],
    manifest: &Manifest,
) -> hlspipe::Result<Option<(Encoded, hlspipe::transcode::encode::TranscodeReport)>> {
    if !args.ladder.is_on() {
        return Ok(None);
    }
    let [source] = sources else {
        return Err(hlspipe::Error::Settings(format!(
            "a ladder is made from one input, not {} (several inputs are a ladder already)",
            manifest.sources.len()
        )));
    };
    let ffmpeg = Ffmpeg::locate(std::env::var_os("HLSPIPE_FFMPEG").as_deref())?;
    let settings = ladder_settings(args);
    let started = Instant::now();
    // Thousandths of the video, shown as a share of it with the time left.
    let bar = progress_bar(
        1000,
        args.json,
        "{spinner} encoding the ladder {wide_bar} {percent} % {eta}",
    );
    let shown = |done: f64, total: f64| {
        if let Some(b) = &bar {
            if total > 0.0 {
                b.set_position((done / total * 1000.0).clamp(0.0, 1000.0) as u64);
            }
        }
    };
    let encoded = encode_ladder(&ffmpeg, Arc::clone(source), &settings, &shown, None)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = encoded.report(&settings, &ffmpeg, started.elapsed().as_secs_f64());
    Ok(Some((encoded, report)))
}

/// What a byte count's bar shows.
const BYTES_BAR: &str = "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} {eta}";

/// A bar on a terminal (none for `--json` or a pipe), drawn with `template`.
fn progress_bar(total: u64, json: bool, template: &str) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

fn print_summary(
    title: &PackagedTitle,
    master: &str,
    elapsed: f64,
    json: bool,
) -> anyhow::Result<()> {
    let segments: usize = title.renditions.iter().map(|r| r.segment_count).sum();
    let mb = title.media_bytes as f64 / 1e6;
    let rate = if elapsed > 0.0 { mb / elapsed } else { 0.0 };
    if json {
        let summary = serde_json::json!({
            "master": master,
            "version": title.version,
            "duration": title.duration,
            "renditions": title.renditions,
            "tracks": title.tracks,
            "segments": segments,
            "media_bytes": title.media_bytes,
            "seconds": elapsed,
            "mb_per_s": rate,
            "warnings": title.warnings,
        });
        println!("{summary}");
        return Ok(());
    }
    println!("{master}");
    for r in &title.renditions {
        let what = match (r.resolution, r.language.as_deref(), r.channels) {
            (Some((w, h)), _, _) => format!("{w}x{h}"),
            (None, Some(lang), Some(ch)) => format!("{lang}, {ch} ch"),
            (None, Some(lang), None) => format!("{lang}, subtitles"),
            _ => String::new(),
        };
        println!(
            "  {:<14} {:<28} {:>9.1} kb/s peak  {:>4} segments  {:.3} s  ({what})",
            r.name,
            r.codecs,
            r.bandwidth as f64 / 1000.0,
            r.segment_count,
            r.duration
        );
    }
    println!(
        "version {}: {:.3} s of media, {segments} segments, {mb:.1} MB in {elapsed:.2} s ({rate:.0} MB/s)",
        title.version, title.duration
    );
    Ok(())
}
