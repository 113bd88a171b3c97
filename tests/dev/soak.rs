//! The soak (reliability issue): `hlspipe dev` under mixed traffic for a while: uploads,
//! re-uploads and deletions in the uploads folder, playback API calls, segment GETs on 200
//! concurrent keep-alive connections, clients that send half a request and ones that read
//! slowly. Its RSS, open file descriptors and threads are sampled from /proc: after the
//! warm-up they stay flat, and when the traffic stops the descriptors go back down. No
//! request the server should answer fails, and nothing is logged as an error.
//!
//! The suite runs 60 seconds; `scripts/soak.sh` runs 20 minutes
//! (`HLSPIPE_SOAK_SECONDS=1200`). The samples go to `target/test-artifacts/soak.json`.

use super::{start, wait_playable, Dev};
use crate::support::{artifact, fixture};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEGMENT_CONNECTIONS: usize = 200;
const API_CALLERS: usize = 4;
const HALF_REQUESTS: usize = 10;
const SLOW_READERS: usize = 10;

#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    fds: u64,
    threads: u64,
}

fn sample(pid: u32, started: Instant) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Sample {
        at_s: started.elapsed().as_secs_f64(),
        rss_kib: field("VmRSS:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count() as u64,
        threads: field("Threads:"),
    }
}

/// Counts of what the traffic saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    api_calls: AtomicU64,
    uploads: AtomicU64,
    deletions: AtomicU64,
    /// The longest a half-sent request was kept open by the server, in milliseconds.
    half_open_max_ms: AtomicU64,
}

/// One keep-alive response: status and body length. `None` when the connection ended.
fn read_response(reader: &mut BufReader<TcpStream>) -> Option<(u16, Vec<String>)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let (mut length, mut headers) = (0usize, Vec::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok().filter(|n| *n > 0)?;
        let h = h.trim_end().to_owned();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        headers.push(h);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((status, headers))
}

/// The sample's cookies, from the playback API's Set-Cookie headers, as one Cookie value.
fn cookies(addr: &str) -> String {
    let stream = TcpStream::connect(addr).unwrap();
    let mut w = stream.try_clone().unwrap();
    write!(
        w,
        "GET /v1/titles/sample/playback HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    let (status, headers) = read_response(&mut BufReader::new(stream)).unwrap();
    assert_eq!(status, 200);
    headers
        .iter()
        .filter_map(|h| {
            h.strip_prefix("set-cookie: ")
                .or(h.strip_prefix("Set-Cookie: "))
        })
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

/// URL paths of the sample's segments.
fn segment_paths(bundle: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().map_while(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "m4s") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(bundle, &mut files);
    let root = bundle.parent().unwrap().parent().unwrap();
    let paths: Vec<String> = files
        .iter()
        .map(|f| format!("/{}", f.strip_prefix(root).unwrap().display()))
        .collect();
    assert!(!paths.is_empty(), "{}", bundle.display());
    paths
}

/// Segment GETs on one keep-alive connection, reconnecting when the server closes it.
fn segment_getter(addr: &str, cookie: &str, paths: &[String], stop: &AtomicBool, tally: &Tally) {
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect(addr) else {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        for _ in 0..50 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let path = &paths[n % paths.len()];
            n += 1;
            let sent = write!(
                w,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n"
            );
            match sent.ok().and_then(|()| read_response(&mut r)) {
                Some((200, _)) => tally.ok.fetch_add(1, Ordering::Relaxed),
                // A kept-alive connection the server closed between requests: reconnect.
                None => break,
                Some(_) => tally.failed.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

/// Sends half a request and waits for the server to give up on it (its header timeout,
/// 10 s); the socket's own 30-second read timeout marks a server that never does.
fn half_request(addr: &str, stop: &AtomicBool, tally: &Tally) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let started = Instant::now();
        let _ = write!(s, "GET /hls/sample.hls/master.m3u8 HTTP/1.1\r\nHost: ");
        let mut byte = [0u8; 1];
        let _ = s.read(&mut byte);
        let held = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tally.half_open_max_ms.fetch_max(held, Ordering::Relaxed);
    }
}

/// Asks for a segment and reads it a kilobyte every 100 ms.
fn slow_reader(addr: &str, cookie: &str, path: &str, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        );
        let mut chunk = [0u8; 1024];
        while !stop.load(Ordering::Relaxed) && matches!(s.read(&mut chunk), Ok(n) if n > 0) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Re-uploads and deletes titles in the uploads folder, as people would.
fn uploader(uploads: &Path, stop: &AtomicBool, tally: &Tally) {
    let media = std::fs::read(fixture("h264_aac_faststart.mp4")).unwrap();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let name = uploads.join(format!("soak {}.mp4", i % 4));
        if i % 5 == 4 {
            if std::fs::remove_file(&name).is_ok() {
                tally.deletions.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            // Written beside, then renamed in: an upload lands whole, as S3's PUT does.
            let part = uploads.join(format!(".soak-{i}.part"));
            std::fs::write(&part, &media).unwrap();
            std::fs::rename(&part, &name).unwrap();
            tally.uploads.fetch_add(1, Ordering::Relaxed);
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(1500));
    }
}

fn api_caller(addr: &str, stop: &AtomicBool, tally: &Tally) {
    while !stop.load(Ordering::Relaxed) {
        let c = cookies(addr);
        assert!(c.contains("CloudFront-Signature="), "{c}");
        tally.api_calls.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_traffic(dev: &Dev, data: &Path, seconds: u64) -> (Arc<Tally>, Vec<Sample>) {
    let addr = dev.base.trim_start_matches("http://").to_owned();
    let cookie = cookies(&addr);
    let paths = Arc::new(segment_paths(&data.join("media/hls/sample.hls")));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut threads = Vec::new();
    let mut spawn = |f: Box<dyn FnOnce() + Send>| threads.push(std::thread::spawn(f));
    for _ in 0..SEGMENT_CONNECTIONS {
        let (a, c, p, s, t) = (
            addr.clone(),
            cookie.clone(),
            paths.clone(),
            stop.clone(),
            tally.clone(),
        );
        spawn(Box::new(move || segment_getter(&a, &c, &p, &s, &t)));
    }
    for _ in 0..API_CALLERS {
        let (a, s, t) = (addr.clone(), stop.clone(), tally.clone());
        spawn(Box::new(move || api_caller(&a, &s, &t)));
    }
    for _ in 0..HALF_REQUESTS {
        let (a, s, t) = (addr.clone(), stop.clone(), tally.clone());
        spawn(Box::new(move || half_request(&a, &s, &t)));
    }
    for i in 0..SLOW_READERS {
        let (a, c, p, s) = (
            addr.clone(),
            cookie.clone(),
            paths[i % paths.len()].clone(),
            stop.clone(),
        );
        spawn(Box::new(move || slow_reader(&a, &c, &p, &s)));
    }
    {
        let (u, s, t) = (data.join("media/uploads"), stop.clone(), tally.clone());
        spawn(Box::new(move || uploader(&u, &s, &t)));
    }

    let pid = dev.child.id();
    let started = Instant::now();
    let every = Duration::from_secs((seconds / 8).clamp(2, 10));
    let mut samples = vec![sample(pid, started)];
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(every);
        samples.push(sample(pid, started));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a traffic thread panicked");
    }
    // Quiet: kept-alive connections are closed by the client side's exit; half-open ones
    // by the server's header timeout.
    std::thread::sleep(Duration::from_secs(12));
    samples.push(sample(pid, started));
    (tally, samples)
}

#[test]
fn dev_stays_flat_under_mixed_traffic() {
    let seconds: u64 = std::env::var("HLSPIPE_SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dev = start(&data);
    wait_playable(&dev, "sample");
    let baseline = sample(dev.child.id(), Instant::now());
    let (tally, samples) = run_traffic(&dev, &data, seconds);

    let report = serde_json::json!({
        "seconds": seconds,
        "baseline": baseline,
        "samples": samples,
        "segment_gets_ok": tally.ok.load(Ordering::Relaxed),
        "segment_gets_failed": tally.failed.load(Ordering::Relaxed),
        "api_calls": tally.api_calls.load(Ordering::Relaxed),
        "uploads": tally.uploads.load(Ordering::Relaxed),
        "deletions": tally.deletions.load(Ordering::Relaxed),
        "half_open_max_ms": tally.half_open_max_ms.load(Ordering::Relaxed),
    });
    std::fs::write(
        artifact("soak.json"),
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();
    println!("soak: {report}");

    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "{report}");
    assert!(tally.ok.load(Ordering::Relaxed) > 1000, "{report}");
    assert!(tally.api_calls.load(Ordering::Relaxed) > 10, "{report}");
    assert!(tally.uploads.load(Ordering::Relaxed) >= 3, "{report}");
    // Closed at the header timeout, give or take a loaded machine's scheduling; never left
    // open until the client gives up.
    let held = tally.half_open_max_ms.load(Ordering::Relaxed);
    assert!((9_000..29_000).contains(&held), "{report}");

    // Flat after the warm-up (the first third): memory within 32 MiB of where it was, file
    // descriptors within the connections the traffic holds, threads bounded.
    let (quiet, loaded) = samples.split_last().unwrap();
    let warm = &loaded[loaded.len() / 3..];
    let rss: Vec<u64> = warm.iter().map(|s| s.rss_kib).collect();
    let (lo, hi) = (*rss.iter().min().unwrap(), *rss.iter().max().unwrap());
    assert!(
        hi - lo < 32 * 1024,
        "RSS grew from {lo} to {hi} KiB: {report}"
    );
    let conns = (SEGMENT_CONNECTIONS + API_CALLERS + HALF_REQUESTS + SLOW_READERS) as u64;
    assert!(
        warm.iter().all(|s| s.fds <= baseline.fds + conns + 64),
        "{report}"
    );
    assert!(warm.iter().all(|s| s.threads <= 600), "{report}");
    assert!(
        quiet.fds <= baseline.fds + 16,
        "descriptors left open: {report}"
    );

    let log = dev.log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let errors: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("ERROR") || l.to_ascii_lowercase().contains("panick"))
        .collect();
    assert!(errors.is_empty(), "errors in the log: {errors:#?}");
}
