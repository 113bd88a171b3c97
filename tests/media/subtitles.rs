//! Subtitle renditions: `tx3g` (mov_text) tracks and SRT/WebVTT side files become
//! segmented WebVTT, cut where the video is cut, listed in the master as
//! `EXT-X-MEDIA TYPE=SUBTITLES` and read back by ffmpeg.

use crate::support::{fixture, hlspipe, run_tool};
use hlspipe::media::package::{package, package_with_subtitles, Input, Settings, SubtitleInput};
use hlspipe::media::source::{FileSource, Source};
use hlspipe::testing::check::{check_master_playlist, check_media_playlist};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn input(name: &str, etag: Option<&str>) -> Input {
    let source: Arc<dyn Source> = Arc::new(FileSource::open(&fixture(name)).unwrap());
    Input {
        source,
        etag: etag.map(str::to_string),
    }
}

/// The body of the object at `key` in a packaged title (everything it makes is bytes).
fn body(title: &hlspipe::media::package::PackagedTitle, key: &str) -> String {
    let object = title
        .media
        .iter()
        .chain(&title.playlists)
        .chain(std::iter::once(&title.master))
        .find(|o| o.key == key)
        .unwrap_or_else(|| panic!("no object {key}"));
    String::from_utf8(object.body.as_bytes().expect("made here").to_vec()).unwrap()
}

/// The EXTINF lines of a media playlist.
fn extinfs(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .filter(|l| l.starts_with("#EXTINF:"))
        .collect()
}

#[test]
fn mov_text_tracks_become_webvtt_renditions_cut_like_the_video() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run_tool(
        hlspipe()
            .arg("package")
            .arg(fixture("h264_aac_subs.mp4"))
            .arg(&out),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let master_text = read(&out.join("master.m3u8"));
    let master = check_master_playlist(&master_text).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(master.subtitle_groups, ["subs"]);
    let subs: Vec<&str> = master_text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES"))
        .collect();
    assert_eq!(subs.len(), 2, "{master_text}");
    assert!(
        subs[0].contains("LANGUAGE=\"en\",NAME=\"English\",AUTOSELECT=YES"),
        "{}",
        subs[0]
    );
    assert!(
        subs[1].contains("LANGUAGE=\"fr\",NAME=\"Français\",AUTOSELECT=YES"),
        "{}",
        subs[1]
    );
    for l in master_text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
    {
        assert!(l.ends_with(",SUBTITLES=\"subs\""), "{l}");
        // WebVTT is not a codec of the variant's segments.
        assert!(!l.contains("wvtt") && !l.contains("tx3g"), "{l}");
    }
    let video = read(&out.join(&master.variant_uris[0]));
    let uri = |lang: &str| {
        master
            .media_uris
            .iter()
            .find(|u| u.contains(&format!("/subs_{lang}/")))
            .unwrap_or_else(|| panic!("no subs_{lang} in {:?}", master.media_uris))
            .clone()
    };
    let en_playlist = out.join(uri("en"));
    let en = read(&en_playlist);
    check_media_playlist(&en).unwrap_or_else(|e| panic!("{e:#?}"));
    // Same segments, same durations, hence the same TARGETDURATION as the video.
    assert_eq!(extinfs(&en), extinfs(&video));
    assert!(en.contains("#EXT-X-TARGETDURATION:6\n"), "{en}");
    let dir = en_playlist.parent().unwrap();
    assert_eq!(
        read(&dir.join("seg_00001.vtt")),
        "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n\
         00:00:00.500 --> 00:00:01.500\nHello &amp; welcome\n\n\
         00:00:05.500 --> 00:00:06.500\nAcross the cut\n\n"
    );
    // The cue across the 6 s cut is in both segments; the empty tx3g samples between
    // cues are no cues.
    assert_eq!(
        read(&dir.join("seg_00002.vtt")),
        "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n\
         00:00:05.500 --> 00:00:06.500\nAcross the cut\n\n\
         00:00:07.000 --> 00:00:07.800\nGoodbye\n\n"
    );
    assert_ffmpeg_reads_subtitles(&out.join("master.m3u8"), &["en", "fr"]);
    // The manifest says what became of every track, the text tracks included.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let text: Vec<(u64, &str, &str)> = manifest["tracks"]
        .as_array()
        .unwrap_or_else(|| panic!("{manifest}"))
        .iter()
        .filter(|t| t["kind"] == "subtitles")
        .map(|t| {
            (
                t["track"].as_u64().unwrap(),
                t["became"].as_str().unwrap(),
                t["rendition"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        text,
        [(3, "rendition", "subs_en"), (4, "rendition", "subs_fr")]
    );
}

/// ffmpeg's HLS demuxer reads WebVTT renditions only with `-strict experimental`; then
/// ffprobe must list each with its language, and converting them must print nothing.
fn assert_ffmpeg_reads_subtitles(master: &Path, languages: &[&str]) {
    let probe = run_tool(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-strict",
                "experimental",
                "-select_streams",
                "s",
            ])
            .args([
                "-show_entries",
                "stream=codec_name:stream_tags=language",
                "-of",
                "csv=p=0",
            ])
            .arg(master),
    );
    let listed = String::from_utf8_lossy(&probe.stdout);
    // Streams are listed under their program too, without tags there.
    let mut got: Vec<&str> = listed.lines().filter(|l| l.contains(',')).collect();
    got.sort();
    got.dedup();
    let want: Vec<String> = languages.iter().map(|l| format!("webvtt,{l}")).collect();
    assert_eq!(got, want, "{}", String::from_utf8_lossy(&probe.stderr));
    let decode = run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-strict", "experimental", "-i"])
            .arg(master)
            .args(["-map", "0", "-c:s", "webvtt", "-f", "null", "-"]),
    );
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&decode.stderr)
    );
}

fn side(name: &str, bytes: &[u8], etag: &str) -> SubtitleInput {
    SubtitleInput {
        name: name.into(),
        bytes: bytes.to_vec(),
        etag: Some(etag.into()),
    }
}

#[test]
fn side_files_become_renditions_with_language_forced_and_sdh_from_their_names() {
    let srt_1252 = b"1\r\n00:00:01,000 --> 00:00:02,000\r\nCaf\xE9 \x93cr\xE8me\x94\r\n";
    let vtt = "WEBVTT\n\nNOTE dropped\n\n00:00:06.500 --> 00:00:07.000 line:0\n<i>Ja</i>\n";
    let files = [
        side("uploads/tiny.fr.srt", srt_1252, "e1"),
        side("uploads/tiny.pt-br.forced.vtt", vtt.as_bytes(), "e2"),
        side(
            "uploads/tiny.en.sdh.srt",
            b"00:00:00,100 --> 00:00:00,900\nHi\n",
            "e3",
        ),
        side("uploads/tiny.de.srt", b"this is not SRT\n", "e4"),
    ];
    let title = package_with_subtitles(
        &[input("h264_aac_faststart.mp4", Some("v1"))],
        &files,
        &Settings::default(),
    )
    .unwrap();
    let master = body(&title, "master.m3u8");
    check_master_playlist(&master).unwrap_or_else(|e| panic!("{e:#?}"));
    let v = &title.version;
    let expected = [
        format!("#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"v/{v}/subs_fr/index.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"fr\",NAME=\"Français\",AUTOSELECT=YES"),
        format!("#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"v/{v}/subs_pt-BR/index.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"pt-BR\",NAME=\"Português (Brasil) (forced)\",DEFAULT=YES,AUTOSELECT=YES,FORCED=YES"),
        format!("#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"v/{v}/subs_en/index.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English (SDH)\",AUTOSELECT=YES,CHARACTERISTICS=\"public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound\""),
    ];
    let got: Vec<&str> = master
        .lines()
        .filter(|l| l.contains("TYPE=SUBTITLES"))
        .collect();
    assert_eq!(got, expected, "{master}");
    let fr = body(&title, &format!("v/{v}/subs_fr/seg_00001.vtt"));
    assert!(
        fr.ends_with("00:00:01.000 --> 00:00:02.000\nCafé \u{201C}crème\u{201D}\n\n"),
        "{fr}"
    );
    let pt = body(&title, &format!("v/{v}/subs_pt-BR/seg_00002.vtt"));
    assert!(
        pt.ends_with("\n00:00:06.500 --> 00:00:07.000 line:0\n<i>Ja</i>\n\n"),
        "{pt}"
    );
    let warnings = title.warnings.join("\n");
    assert!(
        warnings.contains("uploads/tiny.fr.srt: not UTF-8") && warnings.contains("Windows-1252"),
        "{warnings}"
    );
    assert!(
        warnings.contains("uploads/tiny.de.srt: subtitles left out: line 1:"),
        "{warnings}"
    );
}

#[test]
fn side_files_change_the_version_and_nothing_else_does_without_them() {
    let settings = Settings::default();
    let plain = package(&[input("h264_aac_faststart.mp4", Some("v1"))], &settings).unwrap();
    // Without side files the version is what it always was for this ETag.
    assert_eq!(
        plain.version,
        hlspipe::media::package::version_for_etags(&["v1"], &settings)
    );
    assert!(!body(&plain, "master.m3u8").contains("SUBTITLES"));
    let srt = b"00:00:01,000 --> 00:00:02,000\nHi\n";
    let with = |etag: &str| {
        package_with_subtitles(
            &[input("h264_aac_faststart.mp4", Some("v1"))],
            &[side("uploads/x.en.srt", srt, etag)],
            &settings,
        )
        .unwrap()
        .version
    };
    let (a, b) = (with("s1"), with("s2"));
    assert_ne!(a, plain.version);
    assert_ne!(a, b);
    assert_eq!(a, with("s1"));
    assert_eq!(
        a,
        hlspipe::media::package::version_for_sources(
            &["v1"],
            &[("uploads/x.en.srt".to_string(), "s1".to_string())],
            &settings
        )
    );
}

/// The cue lines (`start --> end` and text) of every WebVTT segment of a rendition, in order.
fn cue_lines(title: &hlspipe::media::package::PackagedTitle, rendition: &str) -> Vec<String> {
    title
        .media
        .iter()
        .filter(|o| o.key.contains(&format!("/{rendition}/")) && o.key.ends_with(".vtt"))
        .flat_map(|o| {
            let text = String::from_utf8(o.body.as_bytes().expect("made here").to_vec()).unwrap();
            text.lines()
                .skip_while(|l| !l.contains("-->"))
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Fragmented input (browser recorders, OBS) with text tracks: the subtitles' samples are in
/// the fragments, and they become the same renditions as from the progressive file. (ffmpeg's
/// fragmented remux moves every cue by 21 ms, which the output follows.)
#[test]
fn text_tracks_of_fragmented_input_become_the_same_renditions() {
    let settings = Settings::default();
    let plain = package(&[input("h264_aac_subs.mp4", None)], &settings).unwrap();
    let fragmented = package(&[input("h264_aac_subs_fragmented.mp4", None)], &settings).unwrap();
    let names = |t: &hlspipe::media::package::PackagedTitle| -> Vec<String> {
        t.renditions.iter().map(|r| r.name.clone()).collect()
    };
    assert_eq!(names(&fragmented), names(&plain));
    for rendition in ["subs_en", "subs_fr"] {
        let (a, b) = (
            cue_lines(&plain, rendition),
            cue_lines(&fragmented, rendition),
        );
        assert!(!a.is_empty(), "{rendition}");
        assert_eq!(a.len(), b.len(), "{rendition}: {a:?} vs {b:?}");
        for (x, y) in a.iter().zip(&b) {
            if x.contains("-->") {
                assert_eq!(
                    x.replace(".500", ".521")
                        .replace(".000", ".021")
                        .replace(".800", ".821"),
                    *y
                );
            } else {
                assert_eq!(x, y, "{rendition}: cue text");
            }
        }
    }
}
