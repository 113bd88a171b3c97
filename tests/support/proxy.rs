//! A fault-injecting HTTP/1.1 proxy between an S3 client and the test server. For
//! each request a script decides: forward it, drop the connection halfway through
//! the request, or answer `503 SlowDown` the way S3 does when asked to slow down.
//! Every connection carries one request (`Connection: close` both ways), so the
//! script sees every request and every retry.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Forward,
    /// Read half the request body (or none), then close the connection.
    Drop,
    /// `503 Slow Down` with S3's XML error body.
    SlowDown,
    /// `500 Internal Error` with S3's XML error body.
    InternalError,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward, one such request at a time (across every proxy) from the request's first
    /// byte to the answer's last: a server that checks a write's condition and then writes,
    /// as two steps (moto), then applies conditional writes as S3 does, atomically.
    OneAtATime,
    /// Forward; a `404` answer becomes `403 AccessDenied`, as S3 answers a HEAD or GET of a
    /// missing key to a caller without `s3:ListBucket` (Amazon S3 API Reference, HeadObject,
    /// "Permissions").
    DenyMissing,
}

/// What the script is told about a request.
#[derive(Debug, Clone)]
pub struct Request {
    /// 0 for the first request through the proxy.
    pub index: usize,
    pub method: String,
    pub path: String,
    /// The request's header lines, as sent (`If-Match: "…"`).
    pub headers: Vec<String>,
}

impl Request {
    /// The value of header `name` (any case), if the request has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

#[derive(Default)]
pub struct Counts {
    pub requests: AtomicUsize,
    pub dropped: AtomicUsize,
    pub slowed: AtomicUsize,
    pub errors: AtomicUsize,
    pub delayed: AtomicUsize,
    pub denied: AtomicUsize,
}

type Script = dyn Fn(&Request) -> Fault + Send + Sync;

pub struct Proxy {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start(
        upstream: SocketAddr,
        script: impl Fn(&Request) -> Fault + Send + Sync + 'static,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy: bind");
        let addr = listener.local_addr().expect("proxy: local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let script: Arc<Script> = Arc::new(script);
        let thread = {
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (script, counts) = (Arc::clone(&script), Arc::clone(&counts));
                    std::thread::spawn(move || {
                        let _ = serve(conn, upstream, &*script, &counts);
                    });
                }
            })
        };
        Proxy {
            addr,
            counts,
            stop,
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads an HTTP head (through the blank line) as lines without their CRLF.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return if lines.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

/// The head again, with `Connection: close` instead of any connection header.
fn rewrite(head: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in head.iter().enumerate() {
        let is_conn = line
            .split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("connection"));
        if i == 0 || !is_conn {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    script: &Script,
    counts: &Counts,
) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client_w = client;
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let mut parts = head[0].split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    assert!(
        header(&head, "transfer-encoding").is_none(),
        "proxy: chunked request bodies are not supported ({method} {path})"
    );
    let body_len: u64 = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let index = counts.requests.fetch_add(1, Ordering::SeqCst);
    let fault = script(&Request {
        index,
        method: method.clone(),
        path,
        headers: head[1..].to_vec(),
    });
    match fault {
        Fault::Drop => {
            counts.dropped.fetch_add(1, Ordering::SeqCst);
            io::copy(&mut (&mut reader).take(body_len / 2), &mut io::sink())?;
            client_w.shutdown(Shutdown::Both)?;
        }
        Fault::SlowDown => {
            counts.slowed.fetch_add(1, Ordering::SeqCst);
            io::copy(&mut (&mut reader).take(body_len), &mut io::sink())?;
            // The error S3 sends (Amazon S3 API Reference, "Error responses": SlowDown).
            s3_error(
                &mut client_w,
                &method,
                "503 Slow Down",
                "SlowDown",
                "Please reduce your request rate.",
            )?;
        }
        Fault::InternalError => {
            counts.errors.fetch_add(1, Ordering::SeqCst);
            io::copy(&mut (&mut reader).take(body_len), &mut io::sink())?;
            s3_error(
                &mut client_w,
                &method,
                "500 Internal Server Error",
                "InternalError",
                "We encountered an internal error. Please try again.",
            )?;
        }
        Fault::Delay(pause) => {
            counts.delayed.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(pause);
            forward(&head, &mut reader, body_len, upstream, &mut client_w)?;
        }
        Fault::Forward => forward(&head, &mut reader, body_len, upstream, &mut client_w)?,
        Fault::OneAtATime => {
            static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
            forward(&head, &mut reader, body_len, upstream, &mut client_w)?;
        }
        Fault::DenyMissing => {
            let mut up_r = send_upstream(&head, &mut reader, body_len, upstream)?;
            let resp = read_head(&mut up_r)?.ok_or(io::ErrorKind::UnexpectedEof)?;
            if resp[0].split(' ').nth(1) == Some("404") {
                counts.denied.fetch_add(1, Ordering::SeqCst);
                s3_error(
                    &mut client_w,
                    &method,
                    "403 Forbidden",
                    "AccessDenied",
                    "Access Denied",
                )?;
            } else {
                relay(&resp, up_r, &mut client_w)?;
            }
        }
    }
    Ok(())
}

/// An S3 error answer (Amazon S3 API Reference, "Error responses"), then the close.
fn s3_error(
    client_w: &mut TcpStream,
    method: &str,
    status: &str,
    code: &str,
    message: &str,
) -> io::Result<()> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>HLSPIPETEST</RequestId><HostId>proxy</HostId>\
         </Error>"
    );
    let send_body = method != "HEAD";
    write!(
        client_w,
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{}",
        body.len(),
        if send_body { body.as_str() } else { "" }
    )?;
    client_w.flush()?;
    client_w.shutdown(Shutdown::Both)
}

/// Sends the request on to `upstream` and its answer back.
fn forward(
    head: &[String],
    reader: &mut BufReader<TcpStream>,
    body_len: u64,
    upstream: SocketAddr,
    client_w: &mut TcpStream,
) -> io::Result<()> {
    let mut up_r = send_upstream(head, reader, body_len, upstream)?;
    let resp = read_head(&mut up_r)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    relay(&resp, up_r, client_w)
}

/// Sends the request to `upstream`; the reader of its answer.
fn send_upstream(
    head: &[String],
    reader: &mut BufReader<TcpStream>,
    body_len: u64,
    upstream: SocketAddr,
) -> io::Result<BufReader<TcpStream>> {
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&rewrite(head))?;
    io::copy(&mut reader.take(body_len), &mut up)?;
    Ok(BufReader::new(up))
}

/// The upstream's answer (`resp`, its head, already read) back to the client.
fn relay(
    resp: &[String],
    mut up_r: BufReader<TcpStream>,
    client_w: &mut TcpStream,
) -> io::Result<()> {
    client_w.write_all(&rewrite(resp))?;
    // Connection: close upstream: the response body runs to the end of the stream.
    io::copy(&mut up_r, client_w)?;
    client_w.flush()?;
    client_w.shutdown(Shutdown::Both)
}
