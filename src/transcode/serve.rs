//! A source served to ffmpeg over HTTP on 127.0.0.1, with byte ranges: ffmpeg seeks in an
//! MP4 (to a `moov` at the end, to each track's samples) with `Range` requests, and every
//! range is a ranged read of the [`Source`], so an upload in the store is never copied whole
//! to local disk. One random path, unguessable by other local users, for the life of the
//! [`SourceServer`]; anything else is 404.

use crate::media::source::Source;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes read from the source and written per step.
const CHUNK: usize = 256 * 1024;
/// The longest request head read: ffmpeg's are a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;

pub struct SourceServer {
    url: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl SourceServer {
    pub fn start(source: Arc<dyn Source>) -> std::io::Result<SourceServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut token = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut token);
        let path = format!("/{}", hex::encode(token));
        let url = format!("http://{addr}{path}");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (source, path) = (Arc::clone(&source), path.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, source.as_ref(), &path);
                });
            }
        });
        Ok(SourceServer {
            url,
            stop,
            addr,
            thread: Some(thread),
        })
    }

    /// What ffmpeg is given as its input.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers the requests of one connection (ffmpeg keeps it alive between ranges).
fn serve(conn: TcpStream, source: &dyn Source, path: &str) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let mut words = head.first().map(|l| l.split(' ')).into_iter().flatten();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let len = source.len();
        if !matches!(method, "GET" | "HEAD") || target != path {
            write!(
                out,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
        let range = header(&head, "range").and_then(|r| parse_range(r, len));
        let (start, end) = range.unwrap_or((0, len));
        if start > end || (range.is_some() && start >= len) {
            write!(
                out,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n\r\n"
            )?;
            continue;
        }
        let status = if range.is_some() {
            "206 Partial Content"
        } else {
            "200 OK"
        };
        write!(
            out,
            "HTTP/1.1 {status}\r\nAccept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\n",
            end - start
        )?;
        if range.is_some() {
            write!(
                out,
                "Content-Range: bytes {start}-{}/{len}\r\n",
                end.saturating_sub(1)
            )?;
        }
        write!(out, "\r\n")?;
        if method == "GET" {
            copy_range(source, start, end, &mut out)?;
        }
        out.flush()?;
    }
}

fn copy_range(
    source: &dyn Source,
    start: u64,
    end: u64,
    out: &mut TcpStream,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut at = start;
    while at < end {
        let n = usize::try_from(end - at).map_or(CHUNK, |left| left.min(CHUNK));
        source.read_at(at, &mut buf[..n])?;
        // ffmpeg closes the connection when it seeks elsewhere: that ends this range.
        out.write_all(&buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        total += n;
        if total > MAX_HEAD {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line.to_owned());
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// `bytes=a-` or `bytes=a-b` as `[a, end)` within `len`; what ffmpeg sends.
fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let (first, last) = value.strip_prefix("bytes=")?.split_once('-')?;
    let start: u64 = first.trim().parse().ok()?;
    let end = match last.trim() {
        "" => len,
        l => l.parse::<u64>().ok()?.saturating_add(1).min(len),
    };
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::source::MemorySource;
    use std::io::Read;

    fn get(url: &str, range: Option<&str>) -> (String, Vec<u8>) {
        let rest = url.strip_prefix("http://").unwrap();
        let (addr, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = TcpStream::connect(addr).unwrap();
        let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\n{range}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut all = Vec::new();
        // The server keeps the connection for the next request: read the head, then the body.
        let mut r = BufReader::new(s);
        let head = read_head(&mut r).unwrap().unwrap();
        let len: usize = header(&head, "content-length").unwrap().parse().unwrap();
        all.resize(len, 0);
        r.read_exact(&mut all).unwrap();
        (head[0].clone(), all)
    }

    #[test]
    fn serves_ranges_of_the_source_and_nothing_else() {
        let bytes: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let server = SourceServer::start(Arc::new(MemorySource::new(bytes.clone(), "m"))).unwrap();
        let (status, body) = get(server.url(), None);
        assert!(status.contains("200"));
        assert_eq!(body, bytes);
        let (status, body) = get(server.url(), Some("bytes=999990-"));
        assert!(status.contains("206"));
        assert_eq!(body, bytes[999_990..]);
        let (_, body) = get(server.url(), Some("bytes=10-19"));
        assert_eq!(body, bytes[10..20]);
        let (status, _) = get(&format!("{}x", server.url()), None);
        assert!(status.contains("404"), "{status}");
        let (status, _) = get(server.url(), Some("bytes=1000000-"));
        assert!(status.contains("416"), "{status}");
    }
}
