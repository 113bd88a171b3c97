//! Helpers for the edge and playback API tests: a bucket with two packaged titles, the real
//! `hlspipe serve` on a free port, cookies signed with the test key, and a tiny HTTP/1.1 client
//! that shows every header as sent (no cookie jar, no redirects, no retries).

use super::{fixture, hlspipe, repo_root};
use hlspipe::delivery::sign::{KeySet, Policy, PrivateKey, SignedCookies, Signer, TitlePrefix};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const KEY_PAIR_ID: &str = "K2EDGETESTKEY";
pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const PRIVATE_KEY: &str = "fixtures/keys/rsa2048.pkcs1.pem";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A store directory (`<root>/media/hls/…`) with `shows/ep1` and `shows/ep10` packaged from
/// `h264_aac_faststart.mp4`, and hand-written manifests for `shows/processing` and
/// `shows/failed`. Read-only for the tests. Made once per build of `hlspipe` (keyed by the
/// binary's size and mtime) under the target's temporary directory and shared by every test
/// process (nextest runs each test in its own): made in a scratch directory, then renamed into
/// place; a process that loses the race uses the winner's.
pub fn store_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let binary = std::fs::metadata(env!("CARGO_BIN_EXE_hlspipe")).unwrap();
        let stamp = binary
            .modified()
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let root = tmp.join(format!("edge-store-{}-{stamp}", binary.len()));
        if root.join("ready").exists() {
            return root;
        }
        let scratch = tempfile::Builder::new()
            .prefix("edge-store-scratch-")
            .tempdir_in(tmp)
            .unwrap();
        let hls = scratch.path().join("media/hls/shows");
        for title in ["ep1", "ep10"] {
            let out = hlspipe()
                .arg("package")
                .arg(fixture("h264_aac_faststart.mp4"))
                .arg(hls.join(format!("{title}.hls")))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "package {title}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for (title, manifest) in [
            (
                "processing",
                r#"{"state":"processing","sources":[],"started_at":1700000000}"#,
            ),
            (
                "failed",
                r#"{"state":"failed","sources":[],"error":"moov: missing box 'stsz'","started_at":1700000000}"#,
            ),
            (
                // Published progressively: its master is out, its playlists still grow.
                "growing",
                r#"{"state":"publishing","sources":[],"version":"abc","target_version":"abc","started_at":1700000000,"progress":{"stage":"publishing","done":4,"total":60,"unit":"segments","at":1700000010,"playable_seconds":4.0}}"#,
            ),
        ] {
            let dir = hls.join(format!("{title}.hls"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("manifest.json"), manifest).unwrap();
        }
        std::fs::write(scratch.path().join("ready"), "").unwrap();
        // Fails when another process got there first; its copy is the same.
        let _ = std::fs::rename(scratch.path(), &root);
        assert!(root.join("ready").exists(), "{}", root.display());
        root
    })
}

/// The folder of the packaged title `shows/<title>` in the store.
pub fn title_dir(title: &str) -> PathBuf {
    store_root()
        .join("media/hls/shows")
        .join(format!("{title}.hls"))
}

/// The name of a media segment of `shows/<title>`, as a path under the title (`v/…/….m4s`).
pub fn first_segment(title: &str) -> String {
    let dir = title_dir(title);
    let mut found = Vec::new();
    walk(&dir, &dir, &mut found);
    found.sort();
    found
        .into_iter()
        .find(|p| p.ends_with(".m4s"))
        .expect("a .m4s segment")
}

/// Every file under `shows/<title>`, relative to it.
pub fn title_files(title: &str) -> Vec<String> {
    let dir = title_dir(title);
    let mut found = Vec::new();
    walk(&dir, &dir, &mut found);
    found.sort();
    found
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// A running `hlspipe serve`; SIGTERM and wait on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub access_log: PathBuf,
    _log_dir: tempfile::TempDir,
    /// Every line the server wrote to stderr so far (its diagnostics).
    stderr_lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// `hlspipe serve` on 127.0.0.1:0 over [`store_root`], with the test key and token, plus
    /// `extra` arguments.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_with(extra, &[])
    }

    pub fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let store = format!("file://{}", store_root().display());
        Server::start_on(&store, extra, env)
    }

    /// `hlspipe serve --edge` over the store at `store_url` (`file:///…`, `s3://bucket`).
    pub fn start_on(store_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::launch(store_url, true, extra, env)
    }

    /// `hlspipe serve` without `--edge` (the API only, as in production) over [`store_root`].
    pub fn start_api_only(extra: &[&str]) -> Server {
        let store = format!("file://{}", store_root().display());
        Server::launch(&store, false, extra, &[])
    }

    fn launch(store_url: &str, edge: bool, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let log_dir = tempfile::tempdir().unwrap();
        let access_log = log_dir.path().join("access.log");
        let mut cmd = hlspipe();
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--store", store_url])
            .args(["--key-pair-id", KEY_PAIR_ID, "--private-key", PRIVATE_KEY])
            .args(edge.then_some("--edge"))
            .arg("--access-log")
            .arg(&access_log)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            cmd.env(name, value);
        }
        let mut child = cmd.spawn().expect("spawn hlspipe serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr_lines: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let kept = std::sync::Arc::clone(&stderr_lines);
        // Keep draining stderr (the deny reasons) so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                    }
                }
                eprintln!("[serve] {line}");
                kept.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("hlspipe serve did not say where it listens")
            .parse()
            .unwrap();
        Server {
            child,
            addr,
            access_log,
            _log_dir: log_dir,
            stderr_lines,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/hls/shows/<title>.hls/`: the CDN folder of a title.
    pub fn title_url(&self, title: &str) -> String {
        format!("{}/hls/shows/{title}.hls/", self.base_url())
    }

    pub fn get(&self, target: &str, headers: &[(&str, &str)]) -> HttpResponse {
        request(self.addr, "GET", target, headers)
    }

    pub fn options(&self, target: &str, headers: &[(&str, &str)]) -> HttpResponse {
        request(self.addr, "OPTIONS", target, headers)
    }

    /// Diagnostics (stderr lines) so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr_lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Access log lines so far.
    pub fn access_log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Sends SIGTERM and waits for the exit status (at most 10 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "hlspipe serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A signer with the test key, as the server has.
pub fn signer() -> Signer {
    let pem = std::fs::read_to_string(repo_root().join(PRIVATE_KEY)).unwrap();
    Signer::new(
        KeySet::new(KEY_PAIR_ID, PrivateKey::from_pem(&pem).unwrap()).unwrap(),
        hlspipe::delivery::sign::HashAlgorithm::Sha1,
    )
}

/// Cookies for a title prefix URL, valid strictly before `expires`.
pub fn cookies_for(prefix_url: &str, expires: u64) -> SignedCookies {
    signer()
        .signed_cookies(&Policy::for_title(
            &TitlePrefix::parse(prefix_url).unwrap(),
            expires,
        ))
        .unwrap()
}

/// `name=value` pairs out of `Set-Cookie` headers (attributes dropped).
pub fn cookie_pairs(set_cookies: &[String]) -> Vec<String> {
    set_cookies
        .iter()
        .map(|c| c.split(';').next().unwrap().trim().to_owned())
        .collect()
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// An absolute `http://host:port/path?query` URL (as an API answer gives) as the address to
/// connect to and the request target.
pub fn split_url(url: &str) -> (SocketAddr, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (host.parse().expect("host:port"), target.to_owned())
}

/// One HTTP/1.1 request to an absolute URL, with an optional body.
pub fn request_url(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let (addr, target) = split_url(url);
    request_with_body(addr, method, &target, headers, body)
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`); reads the whole answer,
/// decoding a chunked body. HEAD answers have no body whatever their Content-Length says.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    request_with_body(addr, method, target, headers, None)
}

/// [`request`] with a body (sent with its `Content-Length`).
pub fn request_with_body(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    if let Some(body) = body {
        // A server may answer (and close) before reading it all: a refusal is the answer.
        let _ = stream.write_all(body);
    }

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of the response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked && method != "HEAD" {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
