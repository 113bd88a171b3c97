//! Structured logs of the event surfaces (`hlspipe worker`, `reprocess`, the Lambda
//! function): JSON, one object a line on standard error, with the event's fields at the
//! top level, which is what CloudWatch Logs Insights and most log shippers index.

/// Installs the JSON subscriber. The level is the first of `level_vars` that is set
/// (`error`, `warn`, `info`, `debug`, `trace`, any case); `info` otherwise. Lambda's
/// advanced logging controls set `AWS_LAMBDA_LOG_LEVEL`.
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
