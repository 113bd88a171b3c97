//! Helpers shared by the worker and event tests: real MP4s made with ffmpeg, a bucket
//! folder, the `hlspipe` binary.

use hlspipe::store::{DirStore, Store};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const BUCKET: &str = "hlspipe-media";

/// Generates (once per target dir) a small H.264/AAC MP4 and returns its path.
fn media(name: &str, args: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hlspipe-worker-media");
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!(".{name}.{}.mp4", std::process::id()));
    let status = Command::new("ffmpeg")
        .args(["-y", "-v", "error"])
        .args(args)
        .arg(&tmp)
        .status()
        .expect("ffmpeg is needed for these tests");
    assert!(status.success(), "ffmpeg failed making {name}");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// 4 s of `size` video at 25 fps (GOP 2 s) and AAC audio, made once as `name`.
fn test_clip(name: &str, size: &str) -> PathBuf {
    let video = format!("testsrc2=size={size}:rate=25");
    media(
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

/// A folder of buckets (`HLSPIPE_STORE=file://<root>`), with [`BUCKET`] in it.
pub struct Buckets {
    pub dir: tempfile::TempDir,
}

impl Buckets {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(BUCKET)).unwrap();
        Buckets { dir }
    }

    pub fn bucket(&self) -> PathBuf {
        self.dir.path().join(BUCKET)
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    pub fn store(&self) -> DirStore {
        DirStore::new(self.bucket())
    }

    /// Copies `file` to `key` and returns the store's ETag for it.
    pub fn put_file(&self, key: &str, file: &Path) -> String {
        let path = self.bucket().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(file, &path).unwrap();
        self.store().head(key).unwrap().unwrap().etag
    }

    pub fn put_bytes(&self, key: &str, bytes: &[u8]) -> String {
        let path = self.bucket().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        self.store().head(key).unwrap().unwrap().etag
    }

    pub fn exists(&self, key: &str) -> bool {
        self.bucket().join(key).is_file()
    }

    pub fn read(&self, key: &str) -> Vec<u8> {
        std::fs::read(self.bucket().join(key)).unwrap()
    }

    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.store()
            .list(prefix)
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    pub fn manifest(&self, title_prefix: &str) -> serde_json::Value {
        serde_json::from_slice(&self.read(&format!("{title_prefix}manifest.json"))).unwrap()
    }
}

pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Runs `hlspipe process-event EVENT [args]` on `event` (JSON text), with `env` as the only
/// `HLSPIPE_*` variables besides `HLSPIPE_STORE`.
pub fn process_event(
    buckets: &Buckets,
    event: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let file = buckets.dir.path().join(format!(
        "event-{}.json",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::write(&file, event).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hlspipe"));
    cmd.arg("process-event").arg(&file);
    for (k, _) in std::env::vars() {
        if k.starts_with("HLSPIPE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HLSPIPE_STORE", buckets.url());
    cmd.envs(env.iter().copied()).args(args);
    cmd.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `ffmpeg -v error -i master.m3u8 -f null -`: must succeed with nothing on stderr.
pub fn assert_decodes(master: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(master)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg could not decode {}: {}",
        master.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
