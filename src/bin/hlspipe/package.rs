//! `hlspipe package INPUT... OUT_DIR`

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Input MP4 files (several = one bit-rate ladder of the same content), then the output directory.
    #[arg(required = true, num_args = 2..)]
    paths: Vec<PathBuf>,
    /// Target segment duration in seconds; cuts happen at the first video sync sample at or after it.
    #[arg(long, default_value_t = 6.0)]
    segment_duration: f64,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("package: being built in this commit series")
}
