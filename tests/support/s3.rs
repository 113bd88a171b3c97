//! A real S3 server on 127.0.0.1 for the tests: moto's server mode, installed by
//! `scripts/install-s3-test-deps.sh` into `.test-deps/`. A test never skips when the
//! server is missing: it installs it, or fails naming the install command.
//!
//! Credentials (`test`/`test`) go into the client's settings and the environment of
//! the commands the tests start, never into this process's environment.

use super::{free_port, hlspipe_isolated, repo_root};
use hlspipe::store::{S3Client, S3Settings, S3Store};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

const INSTALL: &str = "bash scripts/install-s3-test-deps.sh";

/// The `moto_server` executable, installing it on first use when it is missing.
fn moto_server() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("HLSPIPE_MOTO_SERVER") {
            return PathBuf::from(p);
        }
        let path = repo_root().join(".test-deps/s3-venv/bin/moto_server");
        if !path.exists() {
            let status = Command::new("bash")
                .arg("scripts/install-s3-test-deps.sh")
                .current_dir(repo_root())
                .stdin(Stdio::null())
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()) && path.exists(),
                "the S3 test server (moto) is missing and installing it failed; run: {INSTALL}"
            );
        }
        path
    })
    .clone()
}

/// A running moto server; killed when dropped.
pub struct S3Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an HTTP server answers at `addr`.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

impl S3Server {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> S3Server {
        let exe = moto_server();
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("hlspipe-moto-{port}.log"));
            let log_file = std::fs::File::create(&log).expect("cannot create the moto log");
            let mut child = Command::new(&exe)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env_remove("HTTP_PROXY")
                .env_remove("http_proxy")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}; run: {INSTALL}", exe.display()));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if answers(addr) {
                    return S3Server { child, addr };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!(
                        "moto_server exited with {status}: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last.is_empty() {
                last = "moto_server did not answer within 60 s".into();
            }
        }
        panic!("cannot start the S3 test server: {last}");
    }

    /// One server shared by the tests of a binary that overlap in time; it stops
    /// when the last of them drops its handle.
    pub fn shared() -> Arc<S3Server> {
        static SHARED: Mutex<Weak<S3Server>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(S3Server::start());
        *slot = Arc::downgrade(&server);
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Client settings for a server at `endpoint`: path style, test credentials,
    /// short backoffs so retry tests run in seconds.
    pub fn settings_for(endpoint: &str, max_attempts: u32) -> S3Settings {
        S3Settings {
            endpoint_url: Some(endpoint.to_string()),
            force_path_style: true,
            region: Some("us-east-1".into()),
            static_credentials: Some(("test".into(), "test".into())),
            max_attempts: Some(max_attempts),
            initial_backoff: Duration::from_millis(50),
        }
    }

    pub fn client(&self) -> Arc<S3Client> {
        Arc::new(
            S3Client::new(&S3Server::settings_for(&self.endpoint(), 4))
                .expect("cannot build the S3 client"),
        )
    }

    /// A store on a new (or emptied-by-name) bucket.
    pub fn bucket(&self, name: &str) -> Arc<S3Store> {
        let store = Arc::new(S3Store::new(self.client(), name, ""));
        store
            .create_bucket()
            .expect("cannot create the test bucket");
        store
    }

    /// The `hlspipe` binary reaching the server at `endpoint`, with nothing of this machine's
    /// own `HLSPIPE_*` or `AWS_*` settings.
    pub fn hlspipe_for(endpoint: &str) -> Command {
        let mut cmd = hlspipe_isolated();
        cmd.envs(S3Server::child_env(endpoint));
        cmd
    }

    /// The environment a child process needs to reach this server (or `endpoint`).
    pub fn child_env(endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            // No profile of the machine's user may redirect the test.
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ]
    }
}

/// A bucket name from a test name (S3 rules: lowercase, digits, hyphens).
pub fn bucket_name(test: &str) -> String {
    let mut name: String = test
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    name.truncate(60);
    format!("t-{}", name.trim_matches('-'))
}
