//! The `hlspipe` command. It only wires: parse arguments, call the library, print,
//! exit 0 (success), 1 (failure) or 2 (usage; clap's own code).

mod package;
mod serve;
mod sign;

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
    /// Package one title (one MP4, or several MP4s of one bit-rate ladder) into OUT_DIR.
    Package(package::Args),
    /// Print CloudFront signed cookies covering one title's prefix (or an exact policy).
    SignCookies(sign::CookiesArgs),
    /// Print a CloudFront signed URL (canned, or custom over a title prefix).
    SignUrl(sign::UrlArgs),
    /// Say whether CloudFront would serve a request: `allow` (exit 0) or `deny: <reason>` (exit 1).
    Verify(sign::VerifyArgs),
    /// Serve the playback API and the edge (a local CloudFront stand-in) on one listener.
    Serve(serve::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Package(args) => package::run(args),
        Command::SignCookies(args) => sign::run_cookies(args),
        Command::SignUrl(args) => sign::run_url(args),
        Command::Verify(args) => sign::run_verify(args),
        Command::Serve(args) => serve::run(args),
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
