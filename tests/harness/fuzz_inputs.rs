//! Every committed fuzzing seed (`fuzz/seeds/<target>/`) and every input a fuzzing campaign
//! found a fault with (`fixtures/fuzz/<target>/`, kept as regression fixtures) through the
//! target's properties (`hlspipe::testing::fuzz`), in the test profile: overflow checks on.
//! `scripts/fuzz.sh` runs the campaigns themselves.

use hlspipe::testing::fuzz::{self, SIGNED_PREFIX, TARGETS};
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable folder entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_seed_and_found_input_keeps_its_target_s_properties() {
    let mut ran = 0;
    for target in TARGETS {
        let mut dirs = vec![
            root().join("fuzz/seeds").join(target),
            root().join("fixtures/fuzz").join(target),
        ];
        // What scripts/fuzz.sh adds to the events corpus (the demuxer's fixtures have tests
        // of their own).
        if target == "events" {
            dirs.push(root().join("fixtures/events"));
        }
        for dir in dirs {
            for file in files(&dir) {
                let data = std::fs::read(&file).expect("a readable input");
                // A panic names the input through the test's output.
                eprintln!("{target}: {}", file.display());
                assert!(fuzz::run(target, &data));
                ran += 1;
            }
        }
    }
    // Every target has seeds of its own; the demuxer's are the media fixtures, which
    // scripts/fuzz.sh adds to its corpus (and the events' fixtures too).
    for target in TARGETS.into_iter().filter(|t| *t != "demux") {
        assert!(
            !files(&root().join("fuzz/seeds").join(target)).is_empty(),
            "no seeds for {target}"
        );
    }
    assert!(ran >= 20, "{ran} inputs");
}

#[test]
fn the_signed_seeds_are_allowed_so_the_fuzzer_starts_inside_the_verifier() {
    let mut allowed = 0;
    for file in files(&root().join("fuzz/seeds/sign")) {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let data = std::fs::read(&file).expect("a readable seed");
        let is_allowed = fuzz::sign(&data);
        let signed = name.starts_with("cookies-") || name.starts_with("url-");
        assert_eq!(is_allowed, signed, "{name}");
        allowed += usize::from(is_allowed);
    }
    assert!(allowed >= 4, "{allowed} signed seeds allowed");
    // One byte of a signature changed: denied (the property the fuzzer looks for a break in).
    let seed = std::fs::read(root().join("fuzz/seeds/sign/cookies-ec-sha1")).expect("seed");
    let text = String::from_utf8(seed).expect("text");
    let at = text.find("CloudFront-Signature=").expect("a signature") + 25;
    let mut tampered = text.clone().into_bytes();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    assert!(!fuzz::sign(&tampered));
    assert!(text.starts_with(SIGNED_PREFIX));
}
