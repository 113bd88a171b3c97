//! Runs one part of a chunked ladder's encode on a local file and prints its wall seconds:
//! what `benches/ladder.sh` measures the whole-source parts (`previews`, `sound`) with on a
//! long source, where a short one's time would be mostly ffmpeg's start.
//!
//!   cargo run --release --example ladder_part -- SOURCE.mp4 previews|sound|chunk-00003
//!
//! The five-rung auto ladder, source off, 10 s chunks, 6 s segments: the bench's settings.

use hlspipe::media::source::FileSource;
use hlspipe::transcode::encode::{LadderJob, LadderSettings, Part};
use hlspipe::transcode::ffmpeg::Ffmpeg;
use hlspipe::transcode::ladder::Ladder;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn run(source: &str, part: &str) -> hlspipe::Result<f64> {
    let part = Part::parse(part)
        .ok_or_else(|| hlspipe::Error::Settings(format!("'{part}' is no part of a ladder")))?;
    let ffmpeg = Ffmpeg::locate(None)?;
    let settings = LadderSettings::new(Ladder::Auto, false, 6.0);
    let source = Arc::new(FileSource::open(Path::new(source))?);
    let job = LadderJob::plan(&ffmpeg, source, &settings)?;
    let scratch = tempfile::tempdir().map_err(|e| hlspipe::Error::Io {
        what: "a scratch folder".into(),
        source: e,
    })?;
    let started = Instant::now();
    let until = started + Duration::from_secs(6 * 3600);
    job.encode_part(&ffmpeg, part, scratch.path(), until, &|_| {})?;
    Ok(started.elapsed().as_secs_f64())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, part] = args.as_slice() else {
        eprintln!("usage: ladder_part SOURCE.mp4 previews|sound|chunk-NNNNN");
        return std::process::ExitCode::from(2);
    };
    match run(source, part) {
        Ok(seconds) => {
            println!("{seconds:.3}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ladder_part: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
