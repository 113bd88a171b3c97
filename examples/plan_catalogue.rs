//! The plan of a catalogue of up-to-date titles (`hlspipe reprocess --dry-run`'s work) over
//! an in-process store that makes the catalogue up as it is read
//! (`hlspipe::testing::catalogue`): the planner's own time and memory, apart from any
//! server's. Used by `benches/reprocess.sh`.
//!
//! ```text
//! cargo run --release --example plan_catalogue -- 100000
//! ```
//! prints `titles=… seconds=… titles_per_second=… peak_rss_mib=… up_to_date=…`.

use hlspipe::pipeline::catalogue::{plan, Scope, Status};
use hlspipe::pipeline::config::PipelineConfig;
use hlspipe::testing::catalogue::SyntheticCatalogue;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let titles: usize = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "100000".into())
        .parse()?;
    let config = PipelineConfig::default();
    let store = SyntheticCatalogue::new(titles, config.clone());
    let scope = Scope {
        prefix: "uploads/".into(),
        orphans: true,
        ..Scope::default()
    };
    let started = Instant::now();
    let (mut planned, mut up_to_date) = (0usize, 0usize);
    plan(&store, &config, &scope, &mut |p| {
        planned += 1;
        up_to_date += usize::from(p.status == Status::UpToDate);
        Ok(true)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "titles={planned} seconds={seconds:.2} titles_per_second={:.0} peak_rss_mib={:.1} up_to_date={up_to_date}",
        planned as f64 / seconds,
        peak_rss_kib() as f64 / 1024.0
    );
    if up_to_date != titles {
        return Err(format!("{up_to_date} of {titles} titles up to date").into());
    }
    Ok(())
}

/// The process's peak resident set (VmHWM), KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
