//! `hlspipe package --ladder`: rungs made with ffmpeg from one 1080p upload, packaged with
//! the source as one title. Every rung decodes with the source's frame count, every video
//! rendition has the same segment boundaries, each rung's average bit rate is near its
//! target, the same input gives the same bytes, and what cannot work says why.

use crate::support::{hlspipe_isolated, ladder_source_1080p as source_1080p, stderr};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn package(args: &[&str], out: &Path) -> std::process::Output {
    hlspipe_isolated()
        .arg("package")
        .args(args)
        .arg(source_1080p())
        .arg(out)
        .output()
        .expect("hlspipe runs")
}

/// `hlspipe package ARGS INPUT OUT` must succeed; the master playlist it wrote.
fn packaged_master(args: &[&str], input: &Path, out: &Path) -> String {
    let run = hlspipe_isolated()
        .arg("package")
        .args(args)
        .arg(input)
        .arg(out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    std::fs::read_to_string(out.join("master.m3u8")).unwrap()
}

/// Each video rendition's folder, by name, from the master.
fn video_renditions(out: &Path) -> BTreeMap<String, PathBuf> {
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    master
        .lines()
        .filter(|l| l.ends_with("/index.m3u8") && l.contains("/video_"))
        .map(|l| {
            let dir = out.join(l.trim_end_matches("/index.m3u8"));
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            (name, dir)
        })
        .collect()
}

fn extinfs(rendition: &Path) -> Vec<String> {
    std::fs::read_to_string(rendition.join("index.m3u8"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("#EXTINF:"))
        .map(str::to_owned)
        .collect()
}

/// The rendition's init segment and media segments joined, as a player appends them.
fn joined(rendition: &Path, into: &Path) -> (PathBuf, u64) {
    let mut bytes = std::fs::read(rendition.join("init.mp4")).unwrap();
    let mut media = 0u64;
    let mut segments: Vec<PathBuf> = std::fs::read_dir(rendition)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "m4s"))
        .collect();
    segments.sort();
    for s in segments {
        let b = std::fs::read(s).unwrap();
        media += b.len() as u64;
        bytes.extend(b);
    }
    let path = into.join(format!(
        "{}.mp4",
        rendition.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&path, bytes).unwrap();
    (path, media)
}

/// Frames ffmpeg decodes from `file`, and its stderr (empty when clean).
fn decoded_frames(file: &Path) -> (u64, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    (
        text.trim().parse().unwrap_or(0),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn auto_ladder_from_1080p_has_five_aligned_rungs_that_decode_at_their_rates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("title");
    let run = package(&["--ladder", "auto", "--segment-duration", "2"], &out);
    assert!(run.status.success(), "{}", stderr(&run));
    let renditions = video_renditions(&out);
    let names: Vec<&str> = renditions.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "video_1080p",
            "video_234p",
            "video_360p",
            "video_540p",
            "video_720p"
        ],
        "the source (1080p) and four rungs"
    );
    // The same segment boundaries on every rung: a player switches at any segment.
    let reference = extinfs(&renditions["video_1080p"]);
    assert_eq!(reference.len(), 2, "{reference:?}");
    for (name, dir) in &renditions {
        assert_eq!(extinfs(dir), reference, "{name}");
    }
    let (source_frames, _) = decoded_frames(source_1080p());
    assert_eq!(source_frames, 120);
    let nominal = [
        ("video_234p", 145.0),
        ("video_360p", 365.0),
        ("video_540p", 2000.0),
        ("video_720p", 3000.0),
    ];
    for (name, kbps) in nominal {
        let (file, media_bytes) = joined(&renditions[name], dir.path());
        let (frames, errors) = decoded_frames(&file);
        assert_eq!(frames, source_frames, "{name}: frames");
        assert!(errors.is_empty(), "{name}: {errors}");
        let measured = media_bytes as f64 * 8.0 / 4.0 / 1000.0;
        assert!(
            (measured - kbps).abs() <= kbps * 0.10,
            "{name}: {measured:.0} kb/s against a target of {kbps} kb/s"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let transcode = &manifest["transcode"];
    assert_eq!(transcode["source_kept"], true);
    assert_eq!(
        transcode["rungs"].as_array().unwrap().len(),
        4,
        "{transcode}"
    );
    assert!(transcode["ffmpeg"]
        .as_str()
        .unwrap()
        .starts_with("ffmpeg version"));
    assert!(transcode["settings"]
        .as_str()
        .unwrap()
        .contains("ladder=auto"));
    // The poster and the thumbnail sprite with its track, in the version's folder.
    assert_eq!(transcode["poster"], "poster.jpg");
    assert_eq!(transcode["thumbnails"], "thumbnails.vtt");
    let version_dir = renditions["video_1080p"].parent().unwrap().to_owned();
    let size = |name: &str| -> String {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(version_dir.join(name))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(size("poster.jpg"), "640,360");
    assert_eq!(
        size("thumbnails.jpg"),
        "640,90",
        "four thumbnails of 160x90, one a second"
    );
    let vtt = std::fs::read_to_string(version_dir.join("thumbnails.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    assert_eq!(vtt.matches("thumbnails.jpg#xywh=").count(), 4, "{vtt}");
    assert!(
        vtt.contains("00:00:03.000 --> 00:00:04.000\nthumbnails.jpg#xywh=480,0,160,90"),
        "{vtt}"
    );
}

#[test]
fn without_the_source_every_rung_is_cut_at_the_target_and_the_same_input_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--ladder",
        "720p:2500k,360p:700k",
        "--keep-source",
        "off",
        "--segment-duration",
        "1.5",
        // Two chunks: the chunked encode is as repeatable as the whole one.
        "--chunk-seconds",
        "2",
    ];
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let run = package(&args, out);
        assert!(run.status.success(), "{}", stderr(&run));
    }
    let renditions = video_renditions(&a);
    assert_eq!(
        renditions.keys().collect::<Vec<_>>(),
        ["video_360p", "video_720p"]
    );
    for dir in renditions.values() {
        assert_eq!(
            extinfs(dir),
            ["#EXTINF:1.50000,", "#EXTINF:1.50000,", "#EXTINF:1.00000,"],
            "{}",
            dir.display()
        );
    }
    // The audio is the source's, in a rendition of its own.
    assert!(std::fs::read_to_string(a.join("master.m3u8"))
        .unwrap()
        .contains("TYPE=AUDIO"));
    // Byte-identical titles: the same version, the same objects.
    let listing = |root: &Path| -> BTreeMap<String, Vec<u8>> {
        let mut all = BTreeMap::new();
        let mut stack = vec![root.join("v")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(root).unwrap().display().to_string();
                    all.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        all
    };
    let (la, lb) = (listing(&a), listing(&b));
    assert_eq!(la.keys().collect::<Vec<_>>(), lb.keys().collect::<Vec<_>>());
    for (k, v) in &la {
        assert!(lb[k] == *v, "{k} differs between two runs");
    }
    assert_eq!(
        std::fs::read(a.join("master.m3u8")).unwrap(),
        std::fs::read(b.join("master.m3u8")).unwrap()
    );
}

#[test]
fn a_ladder_needs_one_input_and_an_ffmpeg_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let run = hlspipe_isolated()
        .args(["package", "--ladder", "auto"])
        .arg(source_1080p())
        .arg(source_1080p())
        .arg(&out)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("a ladder is made from one input"),
        "{}",
        stderr(&run)
    );
    let run = hlspipe_isolated()
        .env("HLSPIPE_FFMPEG", "/nonexistent/ffmpeg")
        .args(["package", "--ladder", "auto"])
        .arg(source_1080p())
        .arg(&out)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("/nonexistent/ffmpeg"),
        "{}",
        stderr(&run)
    );
    assert!(!out.join("master.m3u8").exists());
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("\"failed\"") && manifest.contains("nonexistent"),
        "{manifest}"
    );
    let run = hlspipe_isolated()
        .args(["package", "--ladder", "720p"])
        .arg(source_1080p())
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(2),
        "a usage error: {}",
        stderr(&run)
    );
    assert!(stderr(&run).contains("LINESp:RATE"), "{}", stderr(&run));
}

/// A camera's MOV with PCM sound: refused without the transcoding stage (naming the track and
/// how to get it through), a playable title with AAC sound and the source's picture with it.
#[test]
fn a_camera_mov_with_pcm_sound_gets_aac_from_the_transcoding_stage() {
    let dir = tempfile::tempdir().unwrap();
    let camera = crate::support::repo_root().join("fixtures/refused/camera_pcm.mov");
    let refused = hlspipe_isolated()
        .arg("package")
        .arg(&camera)
        .arg(dir.path().join("plain"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("'sowt' (PCM)") && stderr(&refused).contains("--ladder"),
        "{}",
        stderr(&refused)
    );

    let out = dir.path().join("title");
    let master = packaged_master(
        &["--ladder", "auto", "--segment-duration", "2"],
        &camera,
        &out,
    );
    assert!(
        master.contains("TYPE=AUDIO") && master.contains("mp4a.40.2"),
        "{master}"
    );
    assert!(
        master.contains("RESOLUTION=320x180"),
        "the source's picture: {master}"
    );
    crate::support::assert_decodes(&out.join("master.m3u8"));
    // Both streams come out of the title: picture and sound.
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
        ])
        .arg(out.join("master.m3u8"))
        .output()
        .unwrap();
    let kinds = String::from_utf8_lossy(&probe.stdout);
    assert!(
        kinds.contains("video") && kinds.contains("audio"),
        "{kinds}"
    );
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("sowt"),
        "the PCM track is listed: {manifest}"
    );
}

/// Video the packager cannot carry (MPEG-4 Part 2; ProRes with PCM from an editing suite):
/// with the transcoding stage every rung is encoded from it (read by ffprobe), and the sound
/// becomes AAC (copied when it is AAC already).
#[test]
fn mpeg4_part2_and_prores_uploads_become_playable_h264_titles() {
    let prores = crate::support::repo_root().join("fixtures/refused/prores_pcm.mov");
    let dir = tempfile::tempdir().unwrap();
    let run = hlspipe_isolated()
        .args(["package", "--ladder", "360p:600k"])
        .arg(&prores)
        .arg(dir.path().join("prores"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    crate::support::assert_decodes(&dir.path().join("prores/master.m3u8"));
    let master = std::fs::read_to_string(dir.path().join("prores/master.m3u8")).unwrap();
    assert!(
        master.contains("avc1.") && master.contains("mp4a.40.2"),
        "{master}"
    );

    let mp4v = crate::support::repo_root().join("fixtures/refused/mpeg4_part2.mp4");
    let out = dir.path().join("title");
    let master = packaged_master(
        &["--ladder", "auto", "--segment-duration", "1"],
        &mp4v,
        &out,
    );
    // 320x180 is below every auto rung: one rendition at its own size, H.264.
    assert!(
        master.contains("avc1.") && master.contains("RESOLUTION=320x180"),
        "{master}"
    );
    assert!(
        master.contains("TYPE=AUDIO") && master.contains("mp4a.40.2"),
        "{master}"
    );
    crate::support::assert_decodes(&out.join("master.m3u8"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["transcode"]["source_kept"], false, "{manifest}");
}

/// Each rung looks like the source scaled to its size: SSIM at least 0.95 (`ffmpeg -lavfi
/// ssim`, the source scaled with the same filter), on clean test-card content where SSIM
/// measures the encode (the grain of the rate test would measure the grain).
#[test]
fn every_rung_of_an_auto_ladder_keeps_the_picture_ssim_at_least_0_95() {
    let source = crate::support::ladder_source_720p_16s();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("title");
    let run = hlspipe_isolated()
        .args(["package", "--ladder", "auto", "--segment-duration", "2"])
        .arg(source)
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let renditions = video_renditions(&out);
    for name in ["video_234p", "video_360p", "video_540p"] {
        let (file, _) = joined(&renditions[name], dir.path());
        let probe = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output()
            .unwrap();
        let size = String::from_utf8_lossy(&probe.stdout)
            .trim()
            .replace(',', ":");
        let ssim = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-i"])
            .arg(&file)
            .arg("-i")
            .arg(source)
            .arg("-lavfi")
            .arg(format!(
                "[1:v]scale={size}:flags=bicubic[ref];[0:v][ref]ssim"
            ))
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&ssim.stderr);
        let all: f64 = log
            .split("All:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no SSIM in {log}"));
        assert!(all >= 0.95, "{name}: SSIM {all}");
    }
}

/// The manifest's `transcode` record.
fn transcode_record(out: &Path) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    manifest["transcode"].clone()
}

#[test]
fn chunked_and_whole_encodes_give_the_same_frames_durations_and_segments() {
    let source = crate::support::ladder_source_720p_16s();
    let (source_frames, _) = decoded_frames(source);
    assert_eq!(source_frames, 480);
    let dir = tempfile::tempdir().unwrap();
    for keep in ["on", "off"] {
        let mut titles = Vec::new();
        for chunks in ["0", "4"] {
            let out = dir.path().join(format!("keep-{keep}-chunks-{chunks}"));
            let args = [
                "--ladder",
                "360p:500k,234p:200k",
                "--keep-source",
                keep,
                "--segment-duration",
                "2",
                "--chunk-seconds",
                chunks,
                "--concurrency",
                "2",
            ];
            packaged_master(&args, source, &out);
            let expected_chunks = if chunks == "0" { 1 } else { 4 };
            assert_eq!(transcode_record(&out)["chunks"], expected_chunks, "{out:?}");
            titles.push(out);
        }
        let (whole, chunked) = (video_renditions(&titles[0]), video_renditions(&titles[1]));
        assert_eq!(
            whole.keys().collect::<Vec<_>>(),
            chunked.keys().collect::<Vec<_>>()
        );
        for (name, rendition) in &chunked {
            let extinf = extinfs(rendition);
            assert_eq!(extinf, extinfs(&whole[name]), "keep {keep}: {name}");
            assert_eq!(extinf.len(), 8, "keep {keep}: {name}: {extinf:?}");
            let (file, _) = joined(rendition, dir.path());
            let (frames, errors) = decoded_frames(&file);
            assert_eq!(frames, source_frames, "keep {keep}: {name}");
            assert!(errors.is_empty(), "keep {keep}: {name}: {errors}");
            let probed = Command::new("ffprobe")
                .args(["-v", "error", "-show_entries", "format=duration"])
                .args(["-of", "csv=p=0"])
                .arg(&file)
                .output()
                .unwrap();
            let secs: f64 = String::from_utf8_lossy(&probed.stdout)
                .trim()
                .parse()
                .unwrap();
            assert!((secs - 16.0).abs() < 0.05, "keep {keep}: {name}: {secs} s");
        }
    }
}

/// In chunks, the previews part decodes a file of the source's key frames alone: the same
/// poster and sprite, to the byte, as its ffmpeg command gives reading the whole source.
#[test]
fn chunked_previews_read_the_key_frames_alone_and_match_a_read_of_the_whole_source() {
    let dir = tempfile::tempdir().unwrap();
    let logged = dir.path().join("previews-args");
    let wrapper = dir.path().join("ffmpeg");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             case \"$*\" in *thumbnails.jpg*) printf '%s\\0' \"$@\" > '{}';; esac\n\
             exec ffmpeg \"$@\"\n",
            logged.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    let source = crate::support::ladder_source_720p_16s();
    let out = dir.path().join("title");
    let run = hlspipe_isolated()
        .env("HLSPIPE_FFMPEG", &wrapper)
        .args([
            "package",
            "--ladder",
            "234p:200k",
            "--segment-duration",
            "2",
        ])
        .args(["--chunk-seconds", "4"])
        .arg(source)
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(transcode_record(&out)["chunks"], 4);
    let args = std::fs::read(&logged).unwrap();
    let args: Vec<String> = args
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["-skip_frame:v", "nokey"]),
        "{args:?}"
    );
    // The same command on the source file itself, writing beside the title.
    let reference = dir.path().join("reference");
    std::fs::create_dir(&reference).unwrap();
    let again: Vec<String> = args
        .iter()
        .map(|a| {
            if a.starts_with("http://127.0.0.1:") {
                source.display().to_string()
            } else if a.ends_with(".jpg") {
                let name = Path::new(a).file_name().unwrap();
                reference.join(name).display().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    let ran = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(&again)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", stderr(&ran));
    let version = video_renditions(&out)
        .values()
        .next()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    for name in ["poster.jpg", "thumbnails.jpg"] {
        let made = std::fs::read(version.join(name)).unwrap();
        assert!(!made.is_empty());
        assert!(
            made == std::fs::read(reference.join(name)).unwrap(),
            "{name} differs from the whole source's"
        );
    }
}

#[test]
fn a_chunk_whose_ffmpeg_is_killed_mid_encode_runs_again_and_the_title_completes() {
    let dir = tempfile::tempdir().unwrap();
    // An ffmpeg that, the first time it encodes chunk 2, is killed (SIGKILL) a moment after
    // it starts, as the out-of-memory killer would.
    let mark = dir.path().join("killed-once");
    let wrapper = dir.path().join("ffmpeg");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             case \"$*\" in *chunk-00001*)\n\
               if [ ! -e '{mark}' ]; then\n\
                 touch '{mark}'\n\
                 ffmpeg \"$@\" & pid=$!\n\
                 sleep 0.5; kill -9 $pid; kill -9 $$\n\
               fi;;\n\
             esac\n\
             exec ffmpeg \"$@\"\n",
            mark = mark.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    let out = dir.path().join("title");
    let run = hlspipe_isolated()
        .env("HLSPIPE_FFMPEG", &wrapper)
        .env("RUST_LOG", "warn")
        .args([
            "package",
            "--ladder",
            "360p:500k",
            "--segment-duration",
            "2",
        ])
        .args(["--chunk-seconds", "4"])
        .arg(crate::support::ladder_source_720p_16s())
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(mark.exists(), "the wrapper never killed chunk 2");
    assert_eq!(transcode_record(&out)["chunks"], 4);
    let rung = &video_renditions(&out)["video_360p"];
    let (file, _) = joined(rung, dir.path());
    let (frames, errors) = decoded_frames(&file);
    assert_eq!(frames, 480);
    assert!(errors.is_empty(), "{errors}");
}

/// A camera file with 5.1 PCM: the title gets AAC stereo (the default) and AAC 5.1 as a
/// second audio rendition, both decoding, beside the source's picture.
#[test]
fn a_surround_source_gets_stereo_and_a_5_1_aac_rendition() {
    let camera = crate::support::generated_media(
        "camera_h264_pcm_5.1.mov",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "2",
            "-filter_complex",
            "[1:a]pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0[a]",
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "25",
            "-c:a",
            "pcm_s16le",
            "-f",
            "mov",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("title");
    let master = packaged_master(
        &["--ladder", "180p:200k", "--segment-duration", "1"],
        &camera,
        &out,
    );
    let audio: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .collect();
    assert_eq!(audio.len(), 2, "{master}");
    assert!(
        audio[0].contains("CHANNELS=\"2\"") && audio[0].contains("DEFAULT=YES"),
        "{master}"
    );
    assert!(audio[1].contains("CHANNELS=\"6\""), "{master}");
    let mut layouts = Vec::new();
    for line in master.lines().filter(|l| l.contains("/audio_")) {
        let uri = line
            .split("URI=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let playlist = out.join(uri);
        let (frames, errors) = decoded_frames(&playlist);
        assert_eq!(frames, 0, "no picture in {uri}");
        assert!(errors.is_empty(), "{uri}: {errors}");
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "a:0"])
            .args([
                "-show_entries",
                "stream=codec_name,channels",
                "-of",
                "csv=p=0",
            ])
            .arg(&playlist)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&probe.stdout);
        let text = text.lines().next().unwrap_or_default();
        layouts.push(text.to_owned());
    }
    assert_eq!(layouts, ["aac,2", "aac,6"]);
    crate::support::assert_decodes(&out.join("master.m3u8"));
}
