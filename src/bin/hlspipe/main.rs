//! The `hlspipe` command. It only wires: parse arguments, call the library, print,
//! exit 0 (success), 1 (failure) or 2 (usage; clap's own code).

mod package;
mod process_event;

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
    /// Handle one event file (S3, SQS-wrapped S3, EventBridge, s3:TestEvent) against the store.
    ProcessEvent(process_event::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Package(args) => package::run(args),
        Command::ProcessEvent(args) => process_event::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hlspipe: {e:#}");
            ExitCode::from(1)
        }
    }
}
