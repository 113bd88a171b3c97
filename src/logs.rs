//! Structured logs of the event surfaces (`hlspipe worker`, `reprocess`, the Lambda
//! function): JSON, one object a line on standard error, with the event's fields at the
//! top level, which is what CloudWatch Logs Insights and most log shippers index.

/// Installs the JSON subscriber. The level is the first of `level_vars` that is set
/// (`error`, `warn`, `info`, `debug`, `trace`, any case); `info` otherwise. Lambda's
/// advanced logging controls set `AWS_LAMBDA_LOG_LEVEL`.
#[cfg(feature = "service")]
pub fn init_json(level_vars: &[&str]) {
    let level = level_vars
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|l| l.trim().parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A name from outside (an upload's key, a title) as it goes into a log line: a backslash and
/// every control character are written as in a Rust string literal (`\\`, `\n`, `\u{1b}`), so
/// that one name can neither split a line nor pass for two. Printable non-ASCII stays as it
/// is: `Épisode 1` is logged as `Épisode 1`.
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '\\' || c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_name;

    #[test]
    fn a_newline_in_an_upload_name_cannot_split_a_log_line() {
        assert_eq!(escape_name("a\nb.mp4"), "a\\nb.mp4");
        assert_eq!(escape_name("x\u{1b}[31m\r\\"), "x\\u{1b}[31m\\r\\\\");
        assert_eq!(
            escape_name("My Show/Épisode 1.MOV"),
            "My Show/Épisode 1.MOV"
        );
    }
}
