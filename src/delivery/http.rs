//! What the edge ([`crate::delivery::edge`]) and the playback API ([`crate::delivery::api`])
//! share: the access log, the listener loop (limits and graceful shutdown in
//! [`crate::delivery::listen`]), and the viewer's address.
//!
//! Both are [`axum::Router`]s so that one listener can carry both (`hlspipe serve`, and later
//! `hlspipe dev` with its upload and player pages): merge them, wrap the result in
//! [`with_access_log`], and run it with [`serve`].
//!
//! Why axum over bare hyper 1: the edge and the API need routing (a wildcard title path, a
//! fallback for CDN paths), extractors for the peer address, JSON bodies, middleware for the
//! log and the bearer check, and graceful shutdown. axum gives exactly those on top of hyper 1
//! and tokio with little more than hyper itself in the build (no TLS, no HTTP/2 here: the
//! connections are served by hyper's HTTP/1.1 builder, see [`crate::delivery::listen`]), and a
//! `Router` is the natural unit for `dev` to mount. Everything beyond routing (ranges,
//! conditional requests, CORS, the signing check) is written here, against the RFCs, rather than
//! taken from tower-http, so that each rule can cite the CloudFront behaviour it imitates.

pub use crate::clock::Clock;
pub use crate::delivery::listen::Limits;
use axum::extract::{ConnectInfo, Request};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::Router;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Where access log lines go: one line per request in the Combined Log Format (Apache's
/// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`), which every log tool reads.
#[derive(Clone, Default)]
pub struct AccessLog {
    sink: Option<Arc<Mutex<Box<dyn Write + Send>>>>,
}

impl AccessLog {
    /// No access log.
    pub fn off() -> AccessLog {
        AccessLog { sink: None }
    }

    /// Lines written to `writer`, each flushed as it is written so that a reader (a test, `tail
    /// -f`) sees every request as soon as it is answered.
    pub fn to_writer(writer: impl Write + Send + 'static) -> AccessLog {
        AccessLog {
            sink: Some(Arc::new(Mutex::new(Box::new(writer)))),
        }
    }

    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    fn write_line(&self, line: &str) {
        let Some(sink) = &self.sink else { return };
        let mut sink = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A full disk must not take the server down; the request was answered anyway.
        if let Err(e) = sink.write_all(line.as_bytes()).and_then(|()| sink.flush()) {
            tracing::warn!(error = %e, "access log write failed");
        }
    }
}

/// Wraps `router` so that every request it answers is written to `log`.
///
/// The byte count is the response's `Content-Length` (what was promised, `-` when none or for
/// `HEAD`): a viewer that hangs up mid-segment is not subtracted.
pub fn with_access_log(router: Router, log: AccessLog, clock: Clock) -> Router {
    if !log.is_on() {
        return router;
    }
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let (log, clock) = (log.clone(), clock.clone());
        async move {
            let received = clock();
            let ip = peer_ip(req.extensions());
            let is_head = req.method() == axum::http::Method::HEAD;
            let request_line = format!(
                "{} {} {:?}",
                req.method(),
                req.uri()
                    .path_and_query()
                    .map_or_else(|| req.uri().path(), |pq| pq.as_str()),
                req.version()
            );
            let referer = header_text(&req, header::REFERER);
            let user_agent = header_text(&req, header::USER_AGENT);
            let response = next.run(req).await;
            let bytes = match response.headers().get(header::CONTENT_LENGTH) {
                Some(len) if !is_head && len != "0" => len.to_str().unwrap_or("-").to_owned(),
                _ => "-".to_owned(),
            };
            log.write_line(&format!(
                "{ip} - - [{}] \"{}\" {} {bytes} \"{}\" \"{}\"\n",
                clf_time(received),
                escape(&request_line),
                response.status().as_u16(),
                escape(&referer),
                escape(&user_agent),
            ));
            response
        }
    }))
}

fn header_text(req: &Request, name: header::HeaderName) -> String {
    req.headers().get(name).map_or_else(
        || "-".to_owned(),
        |v| String::from_utf8_lossy(v.as_bytes()).into_owned(),
    )
}

/// Apache's escaping for logged request data: `"` and `\` backslashed, control and non-ASCII
/// bytes as `\xhh`, so a request cannot forge a log line.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out
}

/// `10/Oct/2000:13:55:36 +0000`, rearranged from the IMF-fixdate `httpdate` writes
/// (`Tue, 10 Oct 2000 13:55:36 GMT`).
fn clf_time(unix: u64) -> String {
    let date =
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix));
    let parts: Vec<&str> = date.split_whitespace().collect();
    match parts.as_slice() {
        [_, day, month, year, time, _] => format!("{day}/{month}/{year}:{time} +0000"),
        _ => date,
    }
}

/// The viewer's address, as the connection saw it. Present when the router runs under
/// [`serve`] (which installs `ConnectInfo<SocketAddr>`); otherwise `0.0.0.0`, which matches no
/// policy `IpAddress` narrower than `/0`, so a mis-mounted edge fails closed.
pub fn peer_ip(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

/// Runs `router` on `listener` until `shutdown` completes, with the default [`Limits`]; see
/// [`serve_with`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, Limits::default()).await
}

/// Runs `router` on `listener` over HTTP/1.1 until `shutdown` completes. Request heads must
/// arrive within `limits.header_timeout`, silent connections are closed after
/// `limits.idle_timeout`, at most `limits.max_connections` are open at once, and after
/// `shutdown` requests in flight get `limits.shutdown_grace` to finish. The peer address of
/// each connection is made available to the handlers, which the edge needs for
/// `AWS:SourceIp`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    crate::delivery::listen::run(listener, router, shutdown, limits).await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what `docker stop`, systemd and Kubernetes send).
///
/// The handlers are installed by this call, not at the first poll: a signal that arrives
/// after it (once the server has said it listens) is never missed, even when the accept
/// loop is busy before it first polls the returned future.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut one), Err(e)) | (Err(e), Ok(mut one)) => {
                tracing::warn!(error = %e, "cannot listen for one of SIGINT and SIGTERM");
                one.recv().await;
            }
            (Err(e), Err(_)) => {
                tracing::warn!(error = %e, "cannot listen for signals; the server runs until killed");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A JSON answer of the API, never cached (`Cache-Control: no-store`: it carries cookies or
/// a title's state).
pub(crate) fn json_response(
    status: axum::http::StatusCode,
    value: &serde_json::Value,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r = (status, axum::Json(value)).into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

/// `{"error": message}` with `status`.
pub(crate) fn json_error(
    status: axum::http::StatusCode,
    message: &str,
) -> axum::response::Response {
    json_response(status, &serde_json::json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_log_time() {
        assert_eq!(clf_time(971_186_136), "10/Oct/2000:13:55:36 +0000");
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
    }

    #[test]
    fn logged_text_cannot_break_the_line() {
        assert_eq!(escape("a\"b\\c\n\u{e9}"), "a\\\"b\\\\c\\x0a\\xc3\\xa9");
    }
}
