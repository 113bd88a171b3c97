//! The transcoding stage in a job: when the configuration asks for a ladder
//! (`HLSPIPE_LADDER`), the rungs are encoded from the title's one upload before packaging,
//! and packaged with it as one title ([`crate::transcode`]). A title made of several files
//! (a `<title>.title.json`) is a ladder already and is packaged as it is.

use crate::error::{Error, Result, RetryClass};
use crate::media::package::Input;
use crate::media::source::Source;
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::work::Work;
use crate::store::ObjectInfo;
use crate::transcode::encode::{encode_ladder, Encoded, LadderJob, TranscodeReport};
use crate::transcode::ffmpeg::Ffmpeg;
use std::sync::Arc;
use std::time::Instant;

/// The encoded rungs (their scratch folder lives as long as this) and what the manifest
/// records of them.
pub struct Transcoded {
    pub encoded: Encoded,
    pub report: TranscodeReport,
}

/// Encodes the ladder of a one-upload title, when the configuration has one. ffmpeg is
/// stopped before `deadline`. When the fleet has encoded every part already (`work`,
/// [`crate::pipeline::fanout`]), the rungs are assembled from the parts in the store.
/// `progress` gets the seconds of video encoded, and of the whole; `partial`, the title as
/// far as its first chunks while the rest encode here ([`encode_ladder`]).
pub fn transcode(
    config: &PipelineConfig,
    sources: &[(Arc<dyn Source>, ObjectInfo)],
    work: &Work<'_>,
    deadline: Option<Instant>,
    progress: &(dyn Fn(f64, f64) + Sync),
    partial: Option<&(dyn Fn(Encoded) + Sync)>,
) -> Result<Option<Transcoded>> {
    let [(source, _)] = sources else {
        return Ok(None);
    };
    if !config.ladder.is_on() {
        return Ok(None);
    }
    let ffmpeg = Ffmpeg::locate(config.ffmpeg.as_deref().map(std::ffi::OsStr::new))?;
    let mut settings = config.ladder_settings();
    if let Some(deadline) = deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::OutOfTime("before the ladder was encoded".into()));
        }
        settings.timeout = settings.timeout.min(left);
    }
    let started = Instant::now();
    if work.complete()? {
        let job = LadderJob::plan(&ffmpeg, Arc::clone(source), &settings)?;
        let encoded = job.assemble(&|name| work.open(name), None)?;
        let report = encoded.report(&settings, &ffmpeg, started.elapsed().as_secs_f64());
        return Ok(Some(Transcoded { encoded, report }));
    }
    let encoded = encode_ladder(&ffmpeg, Arc::clone(source), &settings, progress, partial)
        .map_err(|e| match e {
            // Stopped for the invocation's deadline: the retry starts it again.
            Error::Transcode {
                class: RetryClass::Retryable,
                ..
            } if deadline.is_some_and(|d| Instant::now() >= d) => {
                Error::OutOfTime(format!("while the ladder was encoded ({e})"))
            }
            e => e,
        })?;
    let report = encoded.report(&settings, &ffmpeg, started.elapsed().as_secs_f64());
    Ok(Some(Transcoded { encoded, report }))
}

/// The packager's inputs and the sources their bodies are read from, in the same order.
pub struct PackagerInputs {
    pub inputs: Vec<Input>,
    pub sources: Vec<Arc<dyn Source>>,
}

/// The uploads (the one upload only when it stays the top rung), then the rungs.
pub fn inputs(
    sources: &[(Arc<dyn Source>, ObjectInfo)],
    encoded: Option<&Encoded>,
) -> Result<PackagerInputs> {
    let originals: Vec<Input> = sources
        .iter()
        .map(|(s, info)| Input {
            source: Arc::clone(s),
            etag: Some(info.etag.clone()),
        })
        .collect();
    let inputs = match encoded {
        Some(e) => e.with_originals(originals)?,
        None => originals,
    };
    Ok(PackagerInputs {
        sources: inputs.iter().map(|i| Arc::clone(&i.source)).collect(),
        inputs,
    })
}
