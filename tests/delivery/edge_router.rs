//! The edge and the API as library routers, mounted in-process the way `hlspipe dev` will mount
//! them: bodies streamed in several chunks, an injected clock, an in-memory access log.

use crate::support::edge::{cookie_pairs, request, signer, KEY_PAIR_ID, PRIVATE_KEY};
use crate::support::repo_root;
use hlspipe::delivery::api::{self, ApiConfig, Auth};
use hlspipe::delivery::edge::{self, Access, EdgeConfig};
use hlspipe::delivery::http::{self, AccessLog, Clock};
use hlspipe::delivery::sign::{KeySet, PrivateKey, Verifier};
use hlspipe::store::DirStore;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct InProcess {
    addr: SocketAddr,
    log: SharedLog,
    now: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// A bucket with `hls/t.hls/big.bin` (an odd size, many chunks) and the edge + API on one listener,
/// with a 4 KiB chunk size and a clock the test sets.
fn start(access: fn(Arc<Verifier>) -> Access) -> (InProcess, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..100_003u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::create_dir_all(dir.path().join("hls/t.hls")).unwrap();
    std::fs::write(dir.path().join("hls/t.hls/big.bin"), &bytes).unwrap();
    std::fs::write(
        dir.path().join("hls/t.hls/manifest.json"),
        r#"{"state":"complete","version":"0123456789ab","sources":[],"started_at":1}"#,
    )
    .unwrap();

    let now = Arc::new(AtomicU64::new(1_800_000_000));
    let clock: Clock = {
        let now = Arc::clone(&now);
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let log = SharedLog::default();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let pem = std::fs::read_to_string(repo_root().join(PRIVATE_KEY)).unwrap();
    let keys = KeySet::new(KEY_PAIR_ID, PrivateKey::from_pem(&pem).unwrap()).unwrap();
    let verifier = Arc::new(Verifier::new(keys.public_keys()));
    let store = Arc::new(DirStore::new(dir.path()));

    let edge_config = EdgeConfig::new(&base)
        .unwrap()
        .chunk_size(4096)
        .clock(clock.clone());
    let api_config = ApiConfig::new(&base, Auth::Disabled)
        .unwrap()
        .clock(clock.clone());
    let app = api::router(api_config, store.clone(), Arc::new(signer())).merge(edge::router(
        edge_config,
        store,
        access(verifier),
    ));
    let app = http::with_access_log(app, AccessLog::to_writer(log.clone()), clock);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            std_listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            http::serve(listener, app, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    (
        InProcess {
            addr,
            log,
            now,
            _stop: stop,
            _dir: dir,
        },
        bytes,
    )
}

#[test]
fn bodies_stream_in_chunks_whole_and_ranged() {
    let (edge, bytes) = start(|_| Access::Open);
    let r = request(edge.addr, "GET", "/hls/t.hls/big.bin", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100003"));
    assert!(r.body == bytes, "the streamed body differs");

    // A range across many chunk boundaries, starting and ending mid-chunk.
    let r = request(
        edge.addr,
        "GET",
        "/hls/t.hls/big.bin",
        &[("Range", "bytes=4000-90001")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 4000-90001/100003"));
    assert!(r.body == bytes[4000..90002]);

    let log = String::from_utf8(edge.log.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("\"GET /hls/t.hls/big.bin HTTP/1.1\" 200 100003 \"-\" \"-\"\n"),
        "{log}"
    );
    assert!(log.contains("\" 206 86002 "), "{log}");
    assert!(log.contains("[15/Jan/2027:08:00:00 +0000]"), "{log}");
}

#[test]
fn cookies_expire_when_the_clock_passes_their_policy() {
    let (edge, bytes) = start(Access::Signed);
    let r = request(edge.addr, "GET", "/v1/titles/t/playback", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let expires = r.json()["expires_at"].as_u64().unwrap();
    // One hour, rounded up to the minute.
    assert_eq!(expires, 1_800_003_600);
    let cookie = cookie_pairs(&r.all("set-cookie")).join("; ");

    let r = request(
        edge.addr,
        "GET",
        "/hls/t.hls/big.bin",
        &[("Cookie", &cookie)],
    );
    assert_eq!((r.status, r.body.len()), (200, bytes.len()));
    edge.now.store(expires - 1, Ordering::SeqCst);
    assert_eq!(
        request(
            edge.addr,
            "GET",
            "/hls/t.hls/big.bin",
            &[("Cookie", &cookie)]
        )
        .status,
        200
    );
    // DateLessThan is exclusive.
    edge.now.store(expires, Ordering::SeqCst);
    assert_eq!(
        request(
            edge.addr,
            "GET",
            "/hls/t.hls/big.bin",
            &[("Cookie", &cookie)]
        )
        .status,
        403
    );
}

#[test]
fn cookies_are_issued_once_per_title_and_minute() {
    let (edge, _) = start(Access::Signed);
    // Ten seconds into a minute: now + 1 h + 1 s rounds up to the same minute.
    edge.now.store(1_800_000_010, Ordering::SeqCst);
    let get = || request(edge.addr, "GET", "/v1/titles/t/playback", &[]);
    let first = get();
    edge.now.fetch_add(1, Ordering::SeqCst);
    let second = get();
    assert_eq!(first.json(), second.json());
    assert_eq!(first.all("set-cookie"), second.all("set-cookie"));
    // The next bucket: a later expiry, new cookies.
    edge.now.fetch_add(60, Ordering::SeqCst);
    let third = get();
    assert_eq!(
        third.json()["expires_at"].as_u64().unwrap(),
        first.json()["expires_at"].as_u64().unwrap() + 60
    );
    assert_ne!(first.all("set-cookie"), third.all("set-cookie"));
}
