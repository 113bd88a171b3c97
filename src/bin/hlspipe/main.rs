//! The `hlspipe` command. It only wires: parse arguments, call the library, print,
//! exit 0 (success), 1 (failure) or 2 (usage; clap's own code).

mod dev;
mod dev_page;
mod package;
mod process_event;
mod reprocess;
mod serve;
mod serve_auth;
mod setup;
mod sign;
mod worker;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hlspipe",
    version,
    about = "MP4 to HLS without re-encoding, delivered behind CloudFront signed cookies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The embedded default: a local bucket, upload events, the worker, the edge, the
    /// playback API and a player page on one loopback listener. No AWS account needed.
    Dev(dev::Args),
    /// Package one title (one MP4, or several MP4s of one bit-rate ladder) into OUT_DIR.
    Package(package::Args),
    /// Handle one event file (S3, SQS-wrapped S3, EventBridge, s3:TestEvent) against the store.
    ProcessEvent(process_event::Args),
    /// Consume an SQS queue of upload events until SIGTERM/SIGINT (titles beyond Lambda's 15 min).
    Worker(worker::Args),
    /// Process every source under a prefix again, here or by enqueueing their upload events.
    Reprocess(reprocess::Args),
    /// Print CloudFront signed cookies covering one title's prefix (or an exact policy).
    SignCookies(sign::CookiesArgs),
    /// Print a CloudFront signed URL (canned, or custom over a title prefix).
    SignUrl(sign::UrlArgs),
    /// Say whether CloudFront would serve a request: `allow` (exit 0) or `deny: <reason>` (exit 1).
    Verify(sign::VerifyArgs),
    /// Serve the playback API and the edge (a local CloudFront stand-in) on one listener.
    Serve(Box<serve::Args>),
}

/// Short-lived commands that print and exit end quietly when their reader goes
/// away (`hlspipe … | head`), as Unix tools do: restore SIGPIPE's default action,
/// which Rust's runtime sets to "ignore". Servers keep it ignored, so a closed
/// socket is an error to handle, not a signal that ends the process.
fn quiet_on_broken_pipe() {
    // SAFETY: called once at start-up, before any thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// glibc raises its mmap threshold each time a large mapped block is freed, after
/// which multi-MiB buffers (upload parts, read-ahead blocks) come from per-thread
/// arenas that keep freed memory: peak RSS then grows far past what is live (about
/// 190 MiB instead of 115 MiB packaging a 35 Mb/s title from S3, benches/s3.sh).
/// A fixed threshold gives every buffer of 1 MiB or more its own mapping, returned
/// to the kernel when freed (mallopt(3), M_MMAP_THRESHOLD).
fn keep_large_buffers_out_of_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    keep_large_buffers_out_of_arenas();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Package(_)
            | Command::ProcessEvent(_)
            | Command::Reprocess(_)
            | Command::SignCookies(_)
            | Command::SignUrl(_)
            | Command::Verify(_)
    ) {
        quiet_on_broken_pipe();
    }
    let result = match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Package(args) => package::run(args),
        Command::ProcessEvent(args) => process_event::run(args),
        Command::Worker(args) => worker::run(args),
        Command::Reprocess(args) => reprocess::run(args),
        Command::SignCookies(args) => sign::run_cookies(args),
        Command::SignUrl(args) => sign::run_url(args),
        Command::Verify(args) => sign::run_verify(args),
        Command::Serve(args) => serve::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hlspipe: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, each said once: library errors already
/// include their cause in their message, context added here does not.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
