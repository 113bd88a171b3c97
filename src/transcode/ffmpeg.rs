//! Running `ffmpeg`: found on `PATH` or at `HLSPIPE_FFMPEG`, its version checked once, run
//! without a shell with its arguments as given, `-progress` read as it goes, its standard
//! error kept (the last 16 KiB) for the failure's reason, and killed past a time limit.

use crate::error::{Error, Result, RetryClass};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The oldest ffmpeg the stage works with: `-fps_mode` came in 5.1 (Debian 12 ships 5.1).
pub const MIN_VERSION: (u32, u32) = (5, 1);

/// Standard error kept for a failure's reason.
const STDERR_TAIL: usize = 16 * 1024;

/// An ffmpeg that answered `-version` with [`MIN_VERSION`] or later.
#[derive(Debug, Clone)]
pub struct Ffmpeg {
    path: PathBuf,
    /// The version line's first words, as ffmpeg prints them (`ffmpeg version 5.1.9-0+deb12u1`).
    pub version: String,
}

/// What `-progress` said last: how far the output has got, in seconds of media.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub out_secs: f64,
    pub done: bool,
}

fn unavailable(reason: String) -> Error {
    Error::Transcode {
        reason,
        class: RetryClass::Retryable,
    }
}

impl Ffmpeg {
    /// `configured` (the value of `HLSPIPE_FFMPEG`), or `ffmpeg` from `PATH`.
    pub fn locate(configured: Option<&OsStr>) -> Result<Ffmpeg> {
        let path = match configured.filter(|p| !p.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => find_on_path("ffmpeg").ok_or_else(|| {
                unavailable(
                    "ffmpeg is not on PATH (install it, e.g. apt-get install ffmpeg, or set \
                     HLSPIPE_FFMPEG to its path)"
                        .into(),
                )
            })?,
        };
        Ffmpeg::at(&path)
    }

    /// The ffmpeg at `path`, once it has answered `-version` with a version we support.
    pub fn at(path: &Path) -> Result<Ffmpeg> {
        let out = Command::new(path)
            .args(["-hide_banner", "-version"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| unavailable(format!("cannot run {}: {e}", path.display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().take(3).collect();
        let version = words.join(" ");
        match parse_version(words.get(2).copied().unwrap_or_default()) {
            Some(v) if v >= MIN_VERSION => Ok(Ffmpeg {
                path: path.to_owned(),
                version,
            }),
            Some((major, minor)) => Err(unavailable(format!(
                "{} is ffmpeg {major}.{minor}; {}.{} or later is needed",
                path.display(),
                MIN_VERSION.0,
                MIN_VERSION.1
            ))),
            None => Err(unavailable(format!(
                "{} did not answer -version as ffmpeg does ({line:?})",
                path.display()
            ))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `ffprobe` beside this ffmpeg (they come together), or the one on `PATH`.
    pub fn ffprobe(&self) -> PathBuf {
        let beside = self.path.with_file_name("ffprobe");
        if beside.is_file() {
            return beside;
        }
        find_on_path("ffprobe").unwrap_or(beside)
    }

    /// Runs ffmpeg with `args` (after `-hide_banner -nostdin -nostats -loglevel error
    /// -progress pipe:1`), calling `progress` on each progress report, and kills it past
    /// `limit`. `Err` names what failed and the end of ffmpeg's standard error.
    pub fn run(
        &self,
        args: &[OsString],
        limit: Duration,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        let mut child = Command::new(&self.path)
            .args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"])
            .args(["-progress", "pipe:1"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| unavailable(format!("cannot start {}: {e}", self.path.display())))?;
        let stderr = child
            .stderr
            .take()
            .map(|e| std::thread::spawn(move || tail(e)));
        let reports = child.stdout.take().map(spawn_progress_reader);
        let deadline = Instant::now() + limit;
        let timed_out = follow(&mut child, reports, deadline, progress);
        let status = child.wait();
        let tail = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        let reason = |what: String| {
            let tail = tail.trim();
            if tail.is_empty() {
                what
            } else {
                format!("{what}: {tail}")
            }
        };
        if timed_out {
            return Err(unavailable(reason(format!(
                "ffmpeg ran past its limit of {} s and was stopped",
                limit.as_secs()
            ))));
        }
        match status {
            Ok(s) if s.success() => Ok(()),
            // Killed by a signal (out of memory, the machine stopping): may pass.
            Ok(s) if s.code().is_none() => {
                Err(unavailable(reason(format!("ffmpeg was killed ({s})"))))
            }
            Ok(s) => Err(Error::Transcode {
                reason: reason(format!("ffmpeg failed ({s})")),
                class: RetryClass::Permanent,
            }),
            Err(e) => Err(unavailable(format!("waiting for ffmpeg: {e}"))),
        }
    }
}

/// Passes progress reports on until ffmpeg closes its output or `deadline` passes; kills it
/// then. Whether it ran out of time.
fn follow(
    child: &mut Child,
    reports: Option<mpsc::Receiver<Progress>>,
    deadline: Instant,
    progress: &mut dyn FnMut(Progress),
) -> bool {
    let Some(reports) = reports else {
        return false;
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match reports.recv_timeout(left) {
            Ok(p) => progress(p),
            Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                return true;
            }
        }
    }
}

/// Reads `-progress` blocks (`key=value` lines, each block ending with `progress=...`).
fn spawn_progress_reader(out: impl Read + Send + 'static) -> mpsc::Receiver<Progress> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out_secs = 0.0;
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                // Microseconds, despite the name of `out_time_ms` beside it.
                "out_time_us" => {
                    if let Ok(us) = value.trim().parse::<i64>() {
                        out_secs = us.max(0) as f64 / 1e6;
                    }
                }
                "progress" => {
                    let done = value.trim() == "end";
                    if tx.send(Progress { out_secs, done }).is_err() {
                        return;
                    }
                }
                _ => {}
            }
        }
    });
    rx
}

/// The last [`STDERR_TAIL`] bytes of `r`, as text.
fn tail(mut r: impl Read) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    let start = kept.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&kept[start..]).into_owned()
}

/// `5.1.9-0+deb12u1` → (5, 1); `n6.1.1` → (6, 1); a git build (`N-113000-g…`) is taken as
/// new enough.
fn parse_version(word: &str) -> Option<(u32, u32)> {
    if word.starts_with("N-") {
        return Some((u32::MAX, 0));
    }
    let word = word.trim_start_matches('n');
    let mut parts = word.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_builds_print_them() {
        assert_eq!(parse_version("5.1.9-0+deb12u1"), Some((5, 1)));
        assert_eq!(parse_version("n6.1.1"), Some((6, 1)));
        assert_eq!(parse_version("7.0-static"), Some((7, 0)));
        assert_eq!(parse_version("4.4.2-0ubuntu0.22.04.1"), Some((4, 4)));
        assert!(parse_version("N-113000-gabcdef").unwrap() >= MIN_VERSION);
        assert_eq!(parse_version("version"), None);
    }

    #[test]
    fn the_tail_keeps_the_end() {
        let long = "x".repeat(40_000) + "the reason";
        let kept = tail(long.as_bytes());
        assert_eq!(kept.len(), STDERR_TAIL);
        assert!(kept.ends_with("the reason"));
    }
}
