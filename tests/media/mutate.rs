//! A reduced fuzzing campaign that runs in the suite: real fixtures (progressive, fragmented,
//! trimmed, every audio format) broken thousands of ways by a seeded generator (lying box sizes
//! and counts, extreme field values, flipped bytes, truncations) and packaged in process, with
//! overflow checks on. An error is fine; a panic, or an accepted body that cannot be read
//! back from its input, is a bug. The seed and the mutation are printed on failure, so a
//! failure replays exactly.
//!
//! `HLSPIPE_MUTATIONS=N` sets the mutations per fixture (default 1000); the long campaign is
//! `cargo fuzz` on `fuzz/fuzz_targets/demux.rs` (`bash scripts/fuzz.sh`).

use crate::support::fixture;
use hlspipe::media::package::{package, Input, Settings};
use hlspipe::media::source::{MemorySource, Source};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

const FIXTURES: [&str; 7] = [
    "tiny_faststart.mp4",
    "fragmented.mp4",
    "fragmented_moov_first_gop.mp4",
    "trimmed_mid_gop.mp4",
    "delayed_audio.mp4",
    "h264_eac3.mp4",
    "h264_opus.mp4",
];

/// xorshift64*: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Offsets that look like box headers: a 32-bit size that fits the file, then four
/// printable characters. Mutating there reaches the parser's bounds checks, not only the
/// payload bytes it never reads.
fn box_headers(data: &[u8]) -> Vec<usize> {
    (0..data.len().saturating_sub(8))
        .filter(|&i| {
            let size = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            (8..=data.len() as u32).contains(&size)
                && data[i + 4..i + 8]
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
        })
        .collect()
}

const EXTREMES: [u32; 8] = [
    0,
    1,
    7,
    8,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

/// One mutation of `data`, described for the failure message.
fn mutate(data: &mut Vec<u8>, headers: &[usize], rng: &mut Rng) -> String {
    let pick = |rng: &mut Rng| headers[rng.below(headers.len())];
    match rng.below(6) {
        0 if !headers.is_empty() => {
            // A box size that lies (past its parent, past the file, 0 = to the end, 1 = 64-bit).
            let at = pick(rng);
            let v = EXTREMES[rng.below(EXTREMES.len())];
            if at + 4 <= data.len() {
                data[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            format!("size of box at {at} = {v:#x}")
        }
        1 if !headers.is_empty() => {
            // A field just inside a box (version/flags, counts, offsets, timescales).
            let at = pick(rng) + 8 + 4 * rng.below(6);
            let v = EXTREMES[rng.below(EXTREMES.len())];
            if at + 4 <= data.len() {
                data[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            format!("field at {at} = {v:#x}")
        }
        2 => {
            let at = rng.below(data.len());
            data.truncate(at);
            format!("truncated at {at}")
        }
        _ => {
            let n = 1 + rng.below(8);
            let mut flips = Vec::new();
            for _ in 0..n {
                let at = rng.below(data.len());
                let bit = 1u8 << rng.below(8);
                data[at] ^= bit;
                flips.push(at);
            }
            format!("flipped bits at {flips:?}")
        }
    }
}

/// Packages `data` the way the fuzz target does: never a panic, and every accepted body
/// readable from the input. `Ok(true)` when the packager accepted it.
fn package_bytes(data: Vec<u8>) -> Result<bool, String> {
    let source: Arc<dyn Source> = Arc::new(MemorySource::new(data, "mutated"));
    let input = Input {
        source: Arc::clone(&source),
        etag: None,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        package(std::slice::from_ref(&input), &Settings::default())
    }));
    match outcome {
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
        Ok(Err(_)) => Ok(false),
        Ok(Ok(title)) => {
            for obj in title.media.iter().chain(&title.playlists) {
                obj.body
                    .to_vec(std::slice::from_ref(&source))
                    .map_err(|e| format!("accepted body {} unreadable: {e}", obj.key))?;
            }
            Ok(true)
        }
    }
}

/// One to three mutations of `original`, chosen by `seed`, and what they were.
fn mutated(original: &[u8], headers: &[usize], seed: u64) -> (Vec<u8>, Vec<String>) {
    let mut rng = Rng(seed);
    let mut data = original.to_vec();
    let mut what = Vec::new();
    for _ in 0..1 + rng.below(3) {
        if data.is_empty() {
            break;
        }
        what.push(mutate(&mut data, headers, &mut rng));
    }
    (data, what)
}

/// Found by this campaign: fragments whose `tfdt` jumped near 2^63 overflowed the segment
/// planner's time sums (a panic in a debug build, wrapped times in release). Tracks whose
/// times pass 2^53 ticks are now refused by the demuxer.
#[test]
fn regression_fragment_times_near_i64_max_are_refused_not_overflowed() {
    let original = std::fs::read(fixture("fragmented.mp4")).unwrap();
    let headers = box_headers(&original);
    for seed in [0x9e37_79b8_7f4a_74df_u64, 0x9e37_79b8_7f4a_73f2] {
        let (data, what) = mutated(&original, &headers, seed);
        let result = package_bytes(data);
        assert!(result.is_ok(), "seed {seed:#x} ({what:?}): {result:?}");
    }
}

#[test]
fn thousands_of_broken_fixtures_fail_cleanly_progressive_and_fragmented() {
    let per_fixture: usize = std::env::var("HLSPIPE_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut accepted = 0usize;
    let mut refused = 0usize;
    for (k, name) in FIXTURES.iter().enumerate() {
        let original = std::fs::read(fixture(name)).unwrap();
        let headers = box_headers(&original);
        assert!(headers.len() > 10, "{name}: {} box headers", headers.len());
        for i in 0..per_fixture {
            let seed = 0x9e37_79b9_7f4a_7c15 ^ ((k as u64) << 32 | i as u64);
            let (data, what) = mutated(&original, &headers, seed);
            // Count what the packager made of it, to show the campaign reaches both paths.
            match package_bytes(data) {
                Ok(true) => accepted += 1,
                Ok(false) => refused += 1,
                Err(e) => panic!("{name}, seed {seed:#x} ({what:?}): {e}"),
            }
        }
    }
    eprintln!("mutations: {accepted} packaged, {refused} refused cleanly");
    assert!(accepted > 0 && refused > 0, "{accepted} {refused}");
}
