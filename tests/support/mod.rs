//! The one support module of the integration tests, mounted by every test target
//! (`tests/<area>/main.rs`) with `#[path = "../support/mod.rs"] mod support;`.
//!
//! Here: fixtures, the `hlspipe` binary, independent checks with ffprobe/ffmpeg, a static HTTP
//! server and hls.js in headless Chromium. In the submodules: bucket folders and event runs
//! ([`buckets`]), the one fake store ([`store`]), the edge server and its HTTP client
//! ([`edge`]), the S3 test server ([`s3`]) and a fault-injecting proxy in front of it ([`proxy`]).
//!
//! Every external tool is required, never optional: when one is missing the helper panics and
//! says to run `scripts/install-test-deps.sh`, so a test can't pass by skipping its check.

// Several test targets compile this module and each uses only part of it.
#![allow(dead_code)]

pub mod buckets;
pub mod edge;
pub mod proxy;
pub mod s3;
pub mod store;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

const INSTALL_HINT: &str = "run `bash scripts/install-test-deps.sh` (as root) first";

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Path of a good media fixture, `fixtures/media/<name>`; panics if it does not exist.
pub fn fixture(name: &str) -> PathBuf {
    let path = repo_root().join("fixtures/media").join(name);
    assert!(
        path.is_file(),
        "no fixture {}; see fixtures/generate.sh",
        path.display()
    );
    path
}

/// Path of a broken fixture, `fixtures/corrupt/<name>`; panics if it does not exist.
pub fn corrupt_fixture(name: &str) -> PathBuf {
    let path = repo_root().join("fixtures/corrupt").join(name);
    assert!(
        path.is_file(),
        "no fixture {}; see fixtures/corrupt/generate.py",
        path.display()
    );
    path
}

/// Text of an event fixture, `fixtures/events/<name>` (AWS's documented shapes).
pub fn event_fixture(name: &str) -> String {
    let path = repo_root().join("fixtures/events").join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Path of a test key, `fixtures/keys/<name>`, as text for command lines and policies. Not
/// checked: some tests name a key that is not there on purpose.
pub fn key_file(name: &str) -> String {
    repo_root()
        .join("fixtures/keys")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `target/test-artifacts/<name>` of the repository (screenshots kept for a look after a
/// failure), its folder made.
pub fn artifact(name: &str) -> PathBuf {
    let dir = repo_root().join("target/test-artifacts");
    fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// What `fixtures/generate.sh` meant one media fixture to be (a row of `fixtures/media/expected.tsv`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedMedia {
    pub file: String,
    /// Video frames; 0 when the file has no video track.
    pub video_frames: u64,
    pub duration_s: f64,
    pub what: String,
    /// What the master playlist must say of the title, for the rows that record it.
    pub master: Option<ExpectedMaster>,
}

/// The master playlist attributes `fixtures/generate.sh` recorded for a fixture.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedMaster {
    /// The first variant's `CODECS`.
    pub codecs: String,
    /// The first audio rendition's `CHANNELS` (`2`, `16/JOC`).
    pub channels: String,
    /// `VIDEO-RANGE`; `SDR` when the master leaves it out.
    pub video_range: String,
    /// `SUPPLEMENTAL-CODECS`; empty when there is none.
    pub supplemental_codecs: String,
}

/// Every row of `fixtures/media/expected.tsv`, in file order.
pub fn expected_media() -> Vec<ExpectedMedia> {
    tsv_rows(&repo_root().join("fixtures/media/expected.tsv"))
        .into_iter()
        .map(|row| ExpectedMedia {
            file: row[0].clone(),
            video_frames: row[1].parse().expect("video_frames column"),
            duration_s: row[2].parse().expect("duration_s column"),
            what: row[3].clone(),
            master: row
                .get(4)
                .filter(|c| !c.is_empty())
                .map(|codecs| ExpectedMaster {
                    codecs: codecs.clone(),
                    channels: row.get(5).cloned().unwrap_or_default(),
                    video_range: row.get(6).cloned().unwrap_or_default(),
                    supplemental_codecs: row.get(7).cloned().unwrap_or_default(),
                }),
        })
        .collect()
}

/// What the product must do with one corrupt fixture (a row of `fixtures/corrupt/expected.tsv`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedCorrupt {
    pub file: String,
    /// `true` for files that are odd but valid and must package (`co64_valid.mp4`).
    pub must_package: bool,
    /// A word the one-line error must contain (compare case-insensitively); empty when it must package.
    pub message_contains: String,
}

/// Every row of `fixtures/corrupt/expected.tsv`, in file order.
pub fn expected_corrupt() -> Vec<ExpectedCorrupt> {
    tsv_rows(&repo_root().join("fixtures/corrupt/expected.tsv"))
        .into_iter()
        .map(|row| ExpectedCorrupt {
            file: row[0].clone(),
            must_package: match row[1].as_str() {
                "ok" => true,
                "fail" => false,
                other => panic!("expect column must be ok or fail, not {other:?}"),
            },
            message_contains: row.get(2).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Generates (once per target dir, shared by the test processes) a small H.264/AAC MP4 with
/// ffmpeg `args` and returns its path.
pub fn generated_media(name: &str, args: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("generated-media");
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!(".{name}.{}.mp4", std::process::id()));
    let out = run_tool(
        Command::new("ffmpeg")
            .args(["-y", "-v", "error"])
            .args(args)
            .arg(&tmp),
    );
    assert!(
        out.status.success(),
        "ffmpeg failed making {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::rename(&tmp, &path).unwrap();
    path
}

/// `times` copies of `clip` one after the other, joined without encoding (`-f concat -c
/// copy`): a long upload in a moment. Made once as `name`.
pub fn concatenated(name: &str, clip: &Path, times: usize) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("generated-media");
    fs::create_dir_all(&dir).unwrap();
    let list = dir.join(format!(".{name}.{}.txt", std::process::id()));
    let line = format!("file '{}'\n", clip.display());
    fs::write(&list, line.repeat(times)).unwrap();
    let list_arg = list.display().to_string();
    let made = generated_media(
        name,
        &["-f", "concat", "-safe", "0", "-i", &list_arg, "-c", "copy"],
    );
    let _ = fs::remove_file(&list);
    made
}

/// A minute of [`clip`] (fifteen copies): 30 segments of 2 s per rendition.
pub fn minute_clip() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| concatenated("minute_320x180.mp4", clip(), 15))
}

/// `seconds` of the lavfi picture `picture` with a 440 Hz tone in AAC, the picture encoded
/// with `video` (codec, rate and GOP arguments) in 4:2:0, made once as `name`.
pub fn picture_with_tone(name: &str, picture: &str, seconds: &str, video: &[&str]) -> PathBuf {
    let tone = "sine=frequency=440:sample_rate=48000";
    let mut args = vec!["-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", tone];
    args.extend(["-t", seconds]);
    args.extend_from_slice(video);
    args.extend(["-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]);
    generated_media(name, &args)
}

/// 4 s of 1080p30 at 8 Mb/s, a GOP of 1 s, with AAC: a camera-like upload, kept small. Coarse
/// moving grain (noise made at 480x270, then scaled up) stays hard to compress at every rung's
/// size, as camera footage does, so each rung's encoder has to spend its bit rate.
pub fn ladder_source_1080p() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        picture_with_tone(
            "ladder_source_1080p_coarse_grain_4s.mp4",
            "testsrc2=size=480x270:rate=30,noise=alls=20:allf=t,scale=1920:1080:flags=neighbor",
            "4",
            &[
                "-c:v", "libx264", "-preset", "veryfast", "-b:v", "8M", "-g", "30",
            ],
        )
    })
}

/// 16 s of 720p30 (GOP 1 s) with AAC: long enough for a player to switch renditions a few
/// times at one-second segments.
pub fn ladder_source_720p_16s() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        picture_with_tone(
            "ladder_source_720p_16s.mp4",
            "testsrc2=size=1280x720:rate=30",
            "16",
            &[
                "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-g", "30",
            ],
        )
    })
}

/// 4 s of `size` video at 25 fps (GOP 2 s) and AAC audio, made once as `name`.
fn test_clip(name: &str, size: &str) -> PathBuf {
    let video = format!("testsrc2=size={size}:rate=25");
    generated_media(
        name,
        &[
            "-f",
            "lavfi",
            "-i",
            &video,
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
        ],
    )
}

/// 4 s of 320x180 video (GOP 2 s) and AAC audio: DESIGN's test clip.
pub fn clip() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| test_clip("clip_320x180.mp4", "320x180"))
}

/// A different clip (another rendition of a ladder, or a re-upload with new bytes).
pub fn small_clip() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| test_clip("clip_160x90.mp4", "160x90"))
}

/// Data rows (header dropped) of a tab-separated file, each row's fields as strings.
pub fn tsv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// A `Command` for the `hlspipe` binary of this build (test profile, the one cargo just built
/// for this test crate), with stdin closed as on CI. Give it absolute paths (tempdirs, [`fixture`]).
pub fn hlspipe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hlspipe"));
    cmd.stdin(Stdio::null());
    cmd
}

/// [`hlspipe`] with none of the `HLSPIPE_*` and `AWS_*` variables of the environment the tests
/// run in, so that only what the test sets configures it.
pub fn hlspipe_isolated() -> Command {
    let mut cmd = hlspipe();
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("HLSPIPE_") || text.starts_with("AWS_") {
            cmd.env_remove(&name);
        }
    }
    cmd
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// Runs an external tool to completion; panics with the install hint if it is not installed.
pub fn run_tool(cmd: &mut Command) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    match cmd.stdin(Stdio::null()).output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            panic!("`{program}` is not installed: {INSTALL_HINT}")
        }
        Err(e) => panic!("could not run `{program}`: {e}"),
    }
}

/// Runs ffprobe with `args` and returns its stdout; panics (showing stderr) if it fails.
fn ffprobe(path: &Path, args: &[&str]) -> String {
    let out = run_tool(
        Command::new("ffprobe")
            .args(["-v", "error"])
            .args(args)
            .arg(path),
    );
    assert!(
        out.status.success(),
        "ffprobe {args:?} {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The times ffprobe reports for `entries` (`packet=pts_time`, `frame=pts_time`) of the
/// streams `select` picks, in the order it prints them.
pub fn ffprobe_times(path: &Path, select: &str, entries: &str) -> Vec<f64> {
    let args = [
        "-select_streams",
        select,
        "-show_entries",
        entries,
        "-of",
        "csv=p=0",
    ];
    ffprobe(path, &args)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// `key=value` lines ffprobe prints for `entries` (e.g. `stream=channels`) of the first
/// stream `select` picks (`v:0`, `a:0`).
pub fn ffprobe_entries(path: &Path, select: &str, entries: &str) -> BTreeMap<String, String> {
    ffprobe(
        path,
        &[
            "-select_streams",
            select,
            "-show_entries",
            entries,
            "-of",
            "default=noprint_wrappers=1",
        ],
    )
    .lines()
    .filter_map(|l| l.split_once('='))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Number of video frames ffprobe decodes from the first video stream of `path` (a file or a
/// playlist); 0 when there is no video stream. For a master playlist ffprobe lists the stream
/// once per program too; every line names the same stream `v:0`, so the first one is taken.
pub fn ffprobe_frames(path: &Path) -> u64 {
    let text = ffprobe(
        path,
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
        ],
    );
    let Some(first) = text.lines().next() else {
        return 0;
    };
    first
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe frame count of {}: {text:?}", path.display()))
}

/// Container duration of `path` in seconds, as ffprobe reports it (`format=duration`).
pub fn ffprobe_duration(path: &Path) -> f64 {
    let text = ffprobe(
        path,
        &[
            "-show_entries",
            "format=duration",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
        ],
    );
    text.parse()
        .unwrap_or_else(|_| panic!("ffprobe duration of {}: {text:?}", path.display()))
}

/// Decodes every stream of `path` with ffmpeg and returns what it printed at level `error`
/// (empty for a clean file). Panics if ffmpeg exits non-zero. Text subtitles (mov_text)
/// are decoded and re-encoded as WebVTT: the null muxer has no subtitle encoder of its own.
///
/// The decoded frames keep the stream's own time base (`-enc_time_base -1`): by default the
/// CLI re-times video into 1/frame-rate before its null muxer, where the pre-roll of a trim
/// (packed into the first millisecond, see `src/media/edit.rs`) collides in one slot and is
/// reported as a muxing error although every frame decoded.
pub fn ffmpeg_decode_errors(path: &Path) -> String {
    let out = run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
            .arg(path)
            .args([
                "-map",
                "0",
                "-enc_time_base",
                "-1",
                "-c:s",
                "webvtt",
                "-f",
                "null",
                "-",
            ]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ffmpeg could not decode {}: {stderr}",
        path.display()
    );
    stderr
}

/// What a finished command printed on stdout, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a finished command printed on stderr, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Frames of the first video stream of a file or playlist, as ffprobe decodes them.
pub fn decoded_frame_count(path: &Path) -> u64 {
    let out = run_tool(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(path),
    );
    // A master playlist is a program per variant: the first one's count.
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    first
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("ffprobe counted no frames in {}: {text}", path.display()))
}

/// `ffmpeg -v error -i master.m3u8 -f null -`: must succeed with nothing on stderr.
pub fn assert_decodes(master: &Path) {
    let out = run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(master)
            .args(["-f", "null", "-"]),
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg could not decode {}: {}",
        master.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The check every packaged output must pass (DESIGN.md, "Tests that count"): `output` (a master
/// playlist, or any file ffmpeg reads) decodes with no errors, with the same video frame count
/// as `source` and a duration within 50 ms of it.
pub fn assert_decodes_like_source(source: &Path, output: &Path) {
    let errors = ffmpeg_decode_errors(output);
    assert!(
        errors.is_empty(),
        "{} decodes with errors:\n{errors}",
        output.display()
    );
    assert_eq!(
        ffprobe_frames(output),
        ffprobe_frames(source),
        "video frames of {} vs its source {}",
        output.display(),
        source.display()
    );
    let (got, want) = (ffprobe_duration(output), ffprobe_duration(source));
    assert!(
        (got - want).abs() <= 0.05,
        "duration of {} is {got} s, its source {} lasts {want} s",
        output.display(),
        source.display()
    );
}

/// One request the [`StaticServer`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRequest {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub status: u16,
}

/// A static HTTP/1.1 file server on 127.0.0.1 for one directory (see [`serve_dir`]).
/// Stops, and joins its thread, when dropped.
pub struct StaticServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<ServedRequest>>>,
    thread: Option<JoinHandle<()>>,
}

impl StaticServer {
    /// `http://127.0.0.1:<port>` — no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// URL of a file relative to the served directory, e.g. `url("master.m3u8")`.
    pub fn url(&self, relative: &str) -> String {
        format!("{}/{}", self.base_url(), relative.trim_start_matches('/'))
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<ServedRequest> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves `dir` over HTTP/1.1 on 127.0.0.1 (a free port) from a background thread: GET and HEAD,
/// single `Range: bytes=` requests (206), `Content-Type` by extension (`.m3u8`, `.m4s`, `.mp4`,
/// `.ts`, `.html`, `.js`, …), `Access-Control-Allow-Origin: *`, one request per connection.
/// Paths with `..` are refused.
pub fn serve_dir(dir: &Path) -> StaticServer {
    let root = dir
        .canonicalize()
        .unwrap_or_else(|e| panic!("serve_dir({}): {e}", dir.display()));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let thread = {
        let (stop, log) = (stop.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (root, log) = (root.clone(), log.clone());
                // One thread per connection: browsers open speculative connections that never
                // send a request, and they must not hold up the real ones.
                std::thread::spawn(move || {
                    let _ = handle_connection(stream, &root, &log);
                });
            }
        })
    };
    StaticServer {
        addr,
        stop,
        log,
        thread: Some(thread),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "m3u8" => "application/vnd.apple.mpegurl",
        "m4s" | "mp4" => "video/mp4",
        "m4a" => "audio/mp4",
        "ts" => "video/mp2t",
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

fn handle_connection(
    mut stream: TcpStream,
    root: &Path,
    log: &Mutex<Vec<ServedRequest>>,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(());
    }
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();

    let status = respond(&mut stream, root, &method, &target, headers.get("range"))?;
    log.lock().unwrap().push(ServedRequest {
        method,
        target,
        status,
    });
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// Writes the response for one request and returns its status code.
fn respond(
    stream: &mut TcpStream,
    root: &Path,
    method: &str,
    target: &str,
    range: Option<&String>,
) -> io::Result<u16> {
    let head = |stream: &mut TcpStream, status: &str, extra: &str| {
        write!(
            stream,
            "HTTP/1.1 {status}\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n{extra}\r\n"
        )
    };
    if method != "GET" && method != "HEAD" {
        head(
            stream,
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\nContent-Length: 0\r\n",
        )?;
        return Ok(405);
    }
    let Some(path) = resolve(root, target) else {
        head(stream, "404 Not Found", "Content-Length: 0\r\n")?;
        return Ok(404);
    };
    let mut file = fs::File::open(&path)?;
    let len = file.metadata()?.len();
    let ctype = content_type(&path);
    let (status, start, end) = match range.map(|r| parse_range(r, len)) {
        None => ("200 OK", 0, len),
        Some(Some((start, end))) => ("206 Partial Content", start, end),
        Some(None) => {
            head(
                stream,
                "416 Range Not Satisfiable",
                &format!("Content-Range: bytes */{len}\r\nContent-Length: 0\r\n"),
            )?;
            return Ok(416);
        }
    };
    let mut extra = format!(
        "Content-Type: {ctype}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n",
        end - start
    );
    if start != 0 || end != len {
        extra.push_str(&format!(
            "Content-Range: bytes {start}-{}/{len}\r\n",
            end - 1
        ));
    }
    head(stream, status, &extra)?;
    if method == "GET" {
        file.seek(SeekFrom::Start(start))?;
        io::copy(&mut file.take(end - start), stream)?;
    }
    Ok(if status.starts_with("206") { 206 } else { 200 })
}

/// Maps a request target to a file under `root`, or `None` (404) for anything else.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let decoded = percent_decode(path)?;
    let relative = Path::new(decoded.trim_start_matches('/'));
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let full = root.join(relative);
    full.is_file().then_some(full)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range as a half-open `[start, end)`, or `None`
/// when it can't be satisfied (RFC 9110 § 14.1.2).
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (start, end) = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        (len.saturating_sub(suffix), len)
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            len
        } else {
            last.parse::<u64>().ok()?.checked_add(1)?.min(len)
        };
        (start, end)
    };
    (start < end).then_some((start, end))
}

/// One failed HTTP request seen by the browser (`status` 0: no response at all).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct HttpError {
    pub url: String,
    pub status: u16,
    #[serde(default)]
    pub failure: Option<String>,
}

/// What `tests/player/play.mjs` reported after playing a master playlist with hls.js.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayerReport {
    /// Playback passed the asked number of seconds without a fatal error.
    pub ok: bool,
    pub current_time: f64,
    /// hls.js fatal error as `type/details` (`networkError/levelLoadError`), or a media error.
    pub fatal: Option<String>,
    pub frags_loaded: u64,
    /// Answers of the playback API the page itself got (`--api`).
    #[serde(default)]
    pub api_calls: u64,
    pub http_errors: Vec<HttpError>,
    #[serde(default)]
    pub timed_out: bool,
    /// `hls.subtitleTracks` once the manifest was parsed.
    #[serde(default)]
    pub subtitle_tracks: Vec<SubtitleTrackReport>,
    /// Cues hls.js delivered to the video's text tracks.
    #[serde(default)]
    pub cues: Vec<CueReport>,
    /// What each MSE SourceBuffer held at the end, in the order hls.js made them.
    #[serde(default)]
    pub buffered: Vec<BufferedTrack>,
    /// The height of each of hls.js's levels (`--switch-levels`).
    #[serde(default)]
    pub levels: Vec<u32>,
    /// Each LEVEL_SWITCHED, in order (`--switch-levels`).
    #[serde(default)]
    pub level_switches: Vec<LevelSwitch>,
    /// `video.duration` at the end; `None` when not finite.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub ended: bool,
    /// `waiting` events after playback began.
    #[serde(default)]
    pub stalls: u64,
}

/// One LEVEL_SWITCHED: the level, its height, and the playback time then.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct LevelSwitch {
    pub level: usize,
    pub height: u32,
    pub at: f64,
}

/// One entry of `hls.subtitleTracks`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct SubtitleTrackReport {
    pub name: String,
    pub lang: Option<String>,
    pub default: bool,
    pub forced: bool,
    pub autoselect: bool,
}

/// One cue of a text track: its track's language (or label), times in seconds, text.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct CueReport {
    pub track: String,
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// One SourceBuffer in a [`PlayerReport`]: its MIME type and buffered time ranges (seconds).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct BufferedTrack {
    #[serde(rename = "type")]
    pub mime: String,
    pub ranges: Vec<(f64, f64)>,
}

/// Plays `url` (a master playlist) in headless Chromium with hls.js until 3 s of playback, a
/// fatal error or 40 s; see [`play_in_browser_with`].
pub fn play_in_browser(url: &str) -> PlayerReport {
    play_in_browser_with(url, &[])
}

/// Like [`play_in_browser`], with extra `play.mjs` options (`--seconds 5`, `--screenshot p.png`,
/// `--page-origin …`, `--credentials`, `--cookie name=value`, `--visit URL` to take a page's
/// `Set-Cookie` first). Panics if the harness itself
/// could not run (node, Chromium or hls.js missing), so a failure to play is always the media's.
pub fn play_in_browser_with(url: &str, extra_args: &[&str]) -> PlayerReport {
    let script = repo_root().join("tests/player/play.mjs");
    let out = run_tool(Command::new("node").arg(&script).arg(url).args(extra_args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "play.mjs printed no report ({}); stderr: {stderr}; {INSTALL_HINT}",
                out.status
            )
        });
    if out.status.code() == Some(2) {
        panic!(
            "the player harness failed, not the media: {line}; stderr: {stderr}; {INSTALL_HINT}"
        );
    }
    let report: PlayerReport =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("play.mjs report {line:?}: {e}"));
    assert_eq!(
        out.status.success(),
        report.ok,
        "play.mjs exit status {} disagrees with its report {line}",
        out.status
    );
    report
}

/// A job runner as most tests want it: no invalidation, no title events, no deadline, and
/// the clock at 1,000 s.
pub fn pipeline(
    config: &hlspipe::pipeline::config::PipelineConfig,
) -> hlspipe::pipeline::job::Pipeline<'_> {
    hlspipe::pipeline::job::Pipeline {
        config,
        invalidator: &hlspipe::pipeline::invalidate::NoInvalidation,
        notifier: &hlspipe::pipeline::notify::NoNotification,
        parts: None,
        deadline: None,
        clock: &|| 1_000,
        rebuild: false,
    }
}
