//! The embedded default (`hlspipe dev`): what it needs besides the edge, the API and
//! the worker, which it only wires together. A development signing key kept in the
//! data folder, the list of titles for the player page, and the page itself with the
//! player it loads.

pub mod lanes;
pub mod titles;
pub mod watch;

pub use titles::{titles, Shown, TitleSummary};

use crate::delivery::sign::PrivateKey;
use crate::error::{Error, Result};
use crate::logs::escape_name;
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::event::{Record, RecordKind};
use crate::pipeline::invalidate::NoInvalidation;
use crate::pipeline::job::Pipeline;
use crate::store::Store;
use std::path::Path;
use std::sync::Arc;

/// The key-pair id the development key signs as. CloudFront ids are opaque strings;
/// this one says what it is wherever it shows up.
pub const DEV_KEY_PAIR_ID: &str = "HLSPIPEDEVKEY";

/// The player page served at `/`.
pub const PLAYER_PAGE: &str = include_str!("player.html");

/// hls.js, served to the page by the binary itself, so that the page needs nothing from
/// the network: the release named by [`HLS_JS_VERSION`], `dist/hls.min.js` of its npm
/// package, kept with its licence in `src/dev/vendor/hls.js/` (README.md there says how to
/// update it; a test checks it is the very file the player tests install).
pub const HLS_JS: &[u8] = include_bytes!("vendor/hls.js/hls.min.js");
pub const HLS_JS_VERSION: &str = "1.7.4";
/// hls.js's licence (Apache-2.0), served beside it.
pub const HLS_JS_LICENSE: &str = include_str!("vendor/hls.js/LICENSE");

/// A sample title packaged at first start, so there is something to watch at once
/// (`fixtures/media/h264_aac_faststart.mp4`: 10 s of test pattern and a tone).
pub const SAMPLE_MP4: &[u8] = include_bytes!("../../fixtures/media/h264_aac_faststart.mp4");

/// Loads the development signing key from `path`, or makes a new RSA-2048 key there
/// (mode 0600) the first time, so cookies stay valid across restarts.
pub fn dev_key(path: &Path) -> Result<PrivateKey> {
    let io = |e: std::io::Error| Error::Io {
        what: path.display().to_string(),
        source: e,
    };
    let key_err = |reason: String| Error::Key {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => return PrivateKey::from_pem(&pem).map_err(|e| key_err(e.to_string())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
        .map_err(|e| key_err(format!("generating: {e}")))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| key_err(format!("encoding: {e}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    write_private(path, pem.as_bytes()).map_err(io)?;
    PrivateKey::from_pem(&pem).map_err(|e| key_err(e.to_string()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// One record through the worker, as `hlspipe dev` runs it (no CDN, no event bus) (with `rebuild`, published again even if its version is
/// live), and a line saying how it went (the key escaped: an upload name with a newline
/// cannot split the line).
pub fn run_record(store: &Arc<dyn Store>, config: &PipelineConfig, record: &Record, rebuild: bool) {
    let worker = Pipeline {
        config,
        invalidator: &NoInvalidation,
        notifier: &crate::pipeline::notify::NoNotification,
        parts: None,
        deadline: None,
        clock: &crate::clock::unix_now,
        rebuild,
    };
    let started = std::time::Instant::now();
    let outcome = worker.handle_record(store, record);
    eprintln!(
        "hlspipe dev: {} {}: {outcome} ({:.2} s)",
        match record.kind {
            RecordKind::Removed => "removed",
            _ => "upload",
        },
        escape_name(&record.job.key),
        started.elapsed().as_secs_f64()
    );
}
