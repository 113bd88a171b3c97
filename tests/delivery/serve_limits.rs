//! `hlspipe serve` against clients that misbehave: half-sent requests, silent connections,
//! more connections than allowed, HTTP/2, and SIGTERM while they are connected. Bounds are
//! generous (a loaded 2-core machine); each test fails by hanging far past them, not by a
//! few milliseconds.

use crate::support::edge::{Server, TOKEN};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A connection that has sent the start of a request and never finishes it.
fn half_request(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: edge.test\r\nUser-Agent: sl")
        .unwrap();
    stream
}

/// What the server sends before it closes the connection; `None` if it is still open after
/// `wait` (or reset it, which also counts as closed: `Some` of what came before).
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(_) => return Some(got),
        }
    }
}

#[test]
fn no_header_read_timeout_half_open_connections_are_closed() {
    let server = Server::start(&["--token", TOKEN, "--header-timeout", "1"]);
    let mut slow: Vec<TcpStream> = (0..50).map(|_| half_request(&server)).collect();
    // A connection that sends nothing at all is held to the same limit.
    slow.push(TcpStream::connect(server.addr).unwrap());
    for (i, stream) in slow.iter_mut().enumerate() {
        let answer = read_until_closed(stream, Duration::from_secs(30));
        let answer = answer.unwrap_or_else(|| panic!("connection {i} still open after 30 s"));
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    // The server itself is fine.
    assert_eq!(server.get("/healthz", &[]).status, 200);
}

#[test]
fn no_header_read_timeout_sigterm_with_slow_clients_exits_within_the_grace_period() {
    // Header and idle limits far beyond the 10 s `terminate` waits: only the shutdown can
    // end these connections in time.
    let mut server = Server::start(&[
        "--token",
        TOKEN,
        "--header-timeout",
        "300",
        "--idle-timeout",
        "300",
        "--shutdown-grace",
        "1",
    ]);
    let mut clients: Vec<TcpStream> = (0..50).map(|_| half_request(&server)).collect();
    clients.push(TcpStream::connect(server.addr).unwrap());
    // A kept-alive connection that has had its answer and sits idle.
    let mut kept = TcpStream::connect(server.addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: edge.test\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    clients.push(kept);
    assert_eq!(server.get("/healthz", &[]).status, 200);

    let status = server.terminate(); // panics after 10 s
    assert!(status.success(), "{status:?}");
    for stream in &mut clients {
        assert!(read_until_closed(stream, Duration::from_secs(10)).is_some());
    }
}

#[test]
fn no_header_read_timeout_the_connection_cap_holds() {
    let server = Server::start(&["--token", TOKEN, "--max-connections", "4"]);
    let mut held: Vec<TcpStream> = (0..4).map(|_| half_request(&server)).collect();
    // Connections are taken in order, so the fifth finds every slot used.
    let mut extra = TcpStream::connect(server.addr).unwrap();
    let answer = read_until_closed(&mut extra, Duration::from_secs(30)).expect("closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
    assert!(text.contains("Retry-After: 1\r\n"), "{text}");

    // A slot freed is a slot reused: once the server has seen one client leave, it serves
    // again (polled: the server notices the close asynchronously).
    drop(held.pop());
    let mut status = 0;
    for _ in 0..300 {
        status = server.get("/healthz", &[]).status;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 200);
}

#[test]
fn no_header_read_timeout_a_connection_where_no_byte_moves_is_closed_after_the_idle_timeout() {
    // The header limit is far away: only the idle limit can close this connection in time.
    let server = Server::start(&[
        "--token",
        TOKEN,
        "--header-timeout",
        "300",
        "--idle-timeout",
        "1",
    ]);
    let mut kept = TcpStream::connect(server.addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: edge.test\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut kept, Duration::from_secs(30)).expect("closed");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

#[test]
fn http2_is_not_served() {
    // HTTP/2 with prior knowledge (RFC 9113 § 3.3): the preface, then an empty SETTINGS frame.
    // An HTTP/2 server answers with its own SETTINGS frame; this one is HTTP/1.1 only.
    let server = Server::start(&["--token", TOKEN]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(30)).expect("closed");
    let is_h2_settings = answer.len() >= 9 && answer[3] == 0x04;
    assert!(
        !is_h2_settings && (answer.is_empty() || answer.starts_with(b"HTTP/1.1 ")),
        "{answer:?}"
    );
}
