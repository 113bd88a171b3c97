//! The accept loop under [`crate::delivery::http::serve`]: HTTP/1.1 only, with a time limit on
//! request heads, an idle limit, a cap on open connections and a shutdown that ends within a
//! grace period whatever the clients do.
//!
//! hyper's `http1` connection builder is driven directly rather than through `axum::serve`:
//! axum's loop speaks HTTP/2 as well whenever hyper-util is built with `http2` (the AWS SDK's
//! HTTPS client turns that on), and it has no header timeout, no cap and no bound on shutdown.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long clients may take and how many may be connected. The defaults are what
/// `hlspipe serve` and `hlspipe dev` use unless told otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request's line and headers must have arrived this long after the server started
    /// waiting for them: from the accept, or from the end of the previous response on a
    /// kept-alive connection (which is therefore also how long such a connection may sit idle
    /// between requests). Default 10 s: a request head is a few hundred bytes, and a player
    /// asks for its next segment within a segment's duration (6 s).
    pub header_timeout: Duration,
    /// A connection on which no byte has moved either way for this long is closed: a client
    /// that stopped reading its response or stopped sending its body. Default 60 s.
    pub idle_timeout: Duration,
    /// Connections open at once. One more is answered `503 Service Unavailable` with
    /// `Retry-After: 1` and closed, without reading its request. Default 512: below the usual
    /// soft limit of 1024 open files, with room for the store's files and the logs.
    pub max_connections: usize,
    /// After the shutdown signal: no new connections; idle ones, and ones that have not sent
    /// a byte, are closed at once; requests in flight get this long to finish, then every
    /// connection still open is dropped. Default 5 s: under the 10 s `docker stop` and systemd
    /// give before SIGKILL.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then winds down as [`Limits`]
/// says. Each request carries `ConnectInfo<SocketAddr>`, the peer's address.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let mut open = JoinSet::new();
    let mut last_full_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // The shutdown first: a busy listener must not keep it from being seen.
            biased;
            () = &mut shutdown => break,
            Some(_) = open.join_next(), if !open.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                };
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let conn = Connection { router: router.clone(), peer, limits, slot };
                        open.spawn(conn.serve(stream, stopping.clone()));
                    }
                    Err(_) => {
                        if last_full_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                            tracing::warn!(max = limits.max_connections, %peer,
                                "connection cap reached: answering 503 and closing");
                            last_full_warning = Some(Instant::now());
                        }
                        tokio::spawn(refuse(stream));
                    }
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    wind_down(open, limits.shutdown_grace).await;
    Ok(())
}

/// Waits up to `grace` for the connections to end, then drops the rest.
async fn wind_down(mut open: JoinSet<()>, grace: Duration) {
    let drained =
        tokio::time::timeout(grace, async { while open.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            connections = open.len(),
            grace_secs = grace.as_secs_f64(),
            "closing connections still open after the shutdown grace period"
        );
        open.shutdown().await;
    }
}

/// Errors of `accept` are about one connection (reset before it was taken) or about the
/// process (out of file descriptors); for the second, pausing lets connections close.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        tracing::debug!(error = %e, "accept");
    } else {
        tracing::warn!(error = %e, "accept failed; pausing 100 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The answer past the cap: written at once, then the connection is closed after reading
/// (and discarding) what the client sends for at most a second, so that closing with unread
/// bytes does not turn into a reset that would destroy the 503 before the client reads it.
async fn refuse(mut stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
        Retry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\n\
        too many connections\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await?;
        let mut discard = [0u8; 4096];
        while stream.read(&mut discard).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// One accepted connection and what it holds.
struct Connection {
    router: Router,
    peer: SocketAddr,
    limits: Limits,
    /// Released when the connection ends.
    slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, stream: TcpStream, mut stopping: watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let (router, peer) = (self.router, self.peer);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move {
                tower_service::Service::call(&mut router, req.map(axum::body::Body::new)).await
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .serve_connection(io, service);
        tokio::pin!(conn);
        let idle = self.limits.idle_timeout;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended");
                    }
                    break;
                }
                // Idle (kept-alive, or nothing sent yet): closed now; mid-request: closed
                // after its response.
                Ok(()) = stopping.changed(), if !*stopping.borrow() => {
                    conn.as_mut().graceful_shutdown();
                }
                () = tokio::time::sleep_until(activity.last() + idle) => {
                    if activity.last() + idle <= Instant::now() {
                        tracing::debug!(%peer, "closing a connection idle for {idle:?}");
                        break;
                    }
                }
            }
        }
        drop(self.slot);
    }
}

/// When a connection last moved a byte.
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A stream that notes in [`Activity`] every read or write that moved bytes.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
