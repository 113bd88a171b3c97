//! A TCP proxy on 127.0.0.1 that adds a fixed latency to every HTTP request: the store of
//! a bench as far away as a real one (S3 from an instance in its region answers a small
//! request in about 20 ms). Used by `benches/progressive.sh`.
//!
//! ```text
//! cargo run --release --example latency_proxy -- 127.0.0.1:9000 20
//! ```
//! prints `listening 127.0.0.1:PORT`, then forwards every connection to the upstream. A
//! request is held back `MS` milliseconds before its first byte goes on: the first bytes a
//! client sends on a connection, and the first it sends after the server has answered
//! (keep-alive connections carry one request after another), are a new request's.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [upstream, ms] = args.as_slice() else {
        eprintln!("usage: latency_proxy UPSTREAM_ADDR DELAY_MS");
        std::process::exit(2);
    };
    let upstream: SocketAddr = upstream
        .parse()
        .map_err(|e| std::io::Error::other(format!("{upstream}: {e}")))?;
    let delay = Duration::from_millis(
        ms.parse()
            .map_err(|e| std::io::Error::other(format!("{ms}: {e}")))?,
    );
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        std::thread::spawn(move || {
            if let Err(e) = serve(client, upstream, delay) {
                eprintln!("latency_proxy: {e}");
            }
        });
    }
    Ok(())
}

/// Pumps one connection both ways until either side closes it.
fn serve(client: TcpStream, upstream: SocketAddr, delay: Duration) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    // Set when the server has sent anything since the client last did: the client's next
    // bytes start a new request.
    let answered = Arc::new(AtomicBool::new(true));
    let back = {
        let (mut from, mut to) = (server.try_clone()?, client.try_clone()?);
        let answered = Arc::clone(&answered);
        std::thread::spawn(move || {
            pump(&mut from, &mut to, &|| {
                answered.store(true, Ordering::SeqCst)
            });
        })
    };
    let (mut from, mut to) = (client, server);
    pump(&mut from, &mut to, &|| {
        if answered.swap(false, Ordering::SeqCst) {
            std::thread::sleep(delay);
        }
    });
    let _ = back.join();
    Ok(())
}

/// Copies `from` to `to`, calling `before` ahead of each chunk, until `from` ends; then
/// closes both directions so the other pump ends too.
fn pump(from: &mut TcpStream, to: &mut TcpStream, before: &dyn Fn()) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                before();
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
