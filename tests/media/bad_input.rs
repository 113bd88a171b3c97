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

/// A track is never dropped silently (the real-uploads issue): an input whose only picture
/// or only sound has a codec hlspipe cannot carry yet exits 1 naming the track and codec,
/// writes no master, and leaves a `failed` manifest that says why. Regression: MPEG-4 Part 2
/// and ProRes video and camera PCM audio were packaged with exit 0 as titles without picture
/// or sound.
#[test]
fn uncarriable_only_video_or_audio_is_refused_by_name_regression_titles_without_sound() {
    let root = crate::support::repo_root().join("fixtures/refused");
    let cases = crate::support::tsv_rows(&root.join("expected.tsv"));
    assert!(cases.len() >= 3, "{cases:?}");
    for row in cases {
        let (file, message) = (root.join(&row[0]), &row[1]);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let output = hlspipe()
            .arg("package")
            .arg(&file)
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{}: {stderr}", row[0]);
        assert!(
            stderr.contains(&row[0]) && stderr.contains(message.as_str()),
            "{}: wanted '{message}' in {stderr}",
            row[0]
        );
        assert!(!out.join("master.m3u8").exists(), "{}", row[0]);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["state"], "failed", "{manifest}");
        assert!(
            manifest["error"]
                .as_str()
                .unwrap_or("")
                .contains(message.as_str()),
            "{manifest}"
        );
    }
}

/// A second audio track that cannot be carried beside one that can is left out, and the
/// CLI and the manifest say which and why: the title keeps its picture and its AAC sound.
#[test]
fn an_uncarriable_second_audio_track_is_left_out_with_a_warning_not_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let output = hlspipe()
        .arg("package")
        .arg(fixture("aac_and_pcm.mov"))
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let warning = "track 3 skipped: audio codec 'sowt' (PCM) cannot be carried yet";
    assert!(stderr.contains(warning), "{stderr}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["warnings"].to_string().contains(warning),
        "{manifest}"
    );
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    assert!(
        master.contains("mp4a.40.2") && master.contains("avc1."),
        "{master}"
    );
}
