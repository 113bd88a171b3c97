//! The `hlspipe` command. It only wires: parse arguments, call the library, print,
//! exit 0 (success), 1 (failure) or 2 (usage; clap's own code).

mod package;

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
    let result = match cli.command {
        Command::Package(args) => package::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hlspipe: {e:#}");
            ExitCode::from(1)
        }
    }
}
