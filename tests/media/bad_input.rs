//! Bad input gets a clear error and loses nothing: every file in
//! `fixtures/corrupt/` makes `hlspipe package` exit 1 (not panic) with one line
//! naming the file, writes no `master.m3u8`, and leaves a `failed` manifest.

use crate::support::{corrupt_fixture, expected_corrupt, fixture, hlspipe};
use std::path::PathBuf;

fn corrupt_files() -> Vec<PathBuf> {
    expected_corrupt()
        .into_iter()
        .filter(|c| !c.must_package)
        .map(|c| corrupt_fixture(&c.file))
        .collect()
}

#[test]
fn every_corrupt_file_fails_cleanly_and_publishes_nothing() {
    let cases = expected_corrupt();
    assert!(
        cases.len() >= 10,
        "expected the corrupt fixtures, found {cases:?}"
    );
    for case in cases {
        let (file, must_fail, word) = (
            corrupt_fixture(&case.file),
            !case.must_package,
            case.message_contains,
        );
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let output = hlspipe()
            .arg("package")
            .arg(&file)
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !must_fail {
            assert!(output.status.success(), "{}: {stderr}", file.display());
            assert!(out.join("master.m3u8").is_file());
            continue;
        }
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: exit {:?}, stderr: {stderr}",
            file.display(),
            output.status.code()
        );
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            stderr.contains(name.as_ref()),
            "{}: error does not name the file: {stderr}",
            file.display()
        );
        assert!(
            stderr.to_lowercase().contains(&word.to_lowercase()),
            "{}: error should mention '{word}': {stderr}",
            file.display()
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{}: one clear line expected: {stderr}",
            file.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !out.join("master.m3u8").exists(),
            "{}: master.m3u8 written for a bad input",
            file.display()
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            manifest["state"],
            "failed",
            "{}: {manifest}",
            file.display()
        );
        assert!(
            manifest["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{manifest}"
        );
    }
}

#[test]
fn a_failed_reprocess_leaves_the_previous_version_playing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let ok = hlspipe()
        .arg("package")
        .arg(fixture("tiny_faststart.mp4"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let master = std::fs::read(out.join("master.m3u8")).unwrap();
    let bad = corrupt_files().into_iter().next().unwrap();
    let failed = hlspipe()
        .arg("package")
        .arg(&bad)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(
        std::fs::read(out.join("master.m3u8")).unwrap(),
        master,
        "master changed"
    );
}

#[test]
fn usage_errors_exit_2() {
    let output = hlspipe()
        .arg("package")
        .arg("only-one-path")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = hlspipe()
        .args(["package", "a.mp4", "out", "--segment-duration", "nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_missing_input_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let output = hlspipe()
        .arg("package")
        .arg(tmp.path().join("no-such.mp4"))
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such.mp4"), "{stderr}");
}
