//! Codec and container signalling end to end, on the fixtures `fixtures/entries/build.py`
//! rewrote: what the master says (CODECS, CHANNELS, VIDEO-RANGE, SUPPLEMENTAL-CODECS) is what
//! `fixtures/generate.sh` recorded in `expected.tsv`, and the configuration a player needs
//! reaches the init segment as ffprobe (an independent reader) sees it in the source.

use crate::package::{package, read, variant_uri};
use crate::support::{expected_media, ffprobe_entries, fixture, hlspipe};
use std::path::{Path, PathBuf};

/// The value of attribute `name` on an `#EXT-X-…:` line, quotes removed; `None` when absent.
/// Quoted values may hold commas (CODECS), so the line is split outside quotes only.
fn attribute(line: &str, name: &str) -> Option<String> {
    let (_, list) = line.split_once(':')?;
    let mut fields = Vec::new();
    let (mut field, mut quoted) = (String::new(), false);
    for c in list.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
        .into_iter()
        .find_map(|f| f.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// The first line of `master` that starts with `tag`.
fn first_line<'a>(master: &'a str, tag: &str) -> &'a str {
    master
        .lines()
        .find(|l| l.starts_with(tag))
        .unwrap_or_else(|| panic!("no {tag} in {master}"))
}

/// The init segment and first media segment of the rendition whose media playlist is
/// `playlist`, concatenated into one file ffprobe reads as an MP4.
fn first_fragment(playlist: &Path, dir: &Path) -> PathBuf {
    let rendition = playlist.parent().unwrap();
    let mut bytes = std::fs::read(rendition.join("init.mp4")).unwrap();
    bytes.extend(std::fs::read(rendition.join("seg_00001.m4s")).unwrap());
    let name = rendition
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let path = dir.join(format!("{name}.mp4"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The first audio rendition's media playlist, from its `EXT-X-MEDIA` line.
fn audio_playlist(out: &Path, master: &str) -> PathBuf {
    let media = first_line(master, "#EXT-X-MEDIA:TYPE=AUDIO");
    out.join(attribute(media, "URI").unwrap())
}

#[test]
fn master_attributes_are_what_generate_sh_made_each_fixture() {
    let rows: Vec<_> = expected_media()
        .into_iter()
        .filter_map(|e| e.master.clone().map(|m| (e, m)))
        .collect();
    assert!(
        rows.len() >= 11,
        "expected.tsv records the master of {rows:?}"
    );
    for (e, want) in rows {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        package(&[&e.file], &out, &[]);
        let master = read(&out.join("master.m3u8"));
        let variant = first_line(&master, "#EXT-X-STREAM-INF:");
        let audio = first_line(&master, "#EXT-X-MEDIA:TYPE=AUDIO");
        let got = (
            attribute(variant, "CODECS").unwrap_or_default(),
            attribute(audio, "CHANNELS").unwrap_or_default(),
            attribute(variant, "VIDEO-RANGE").unwrap_or_else(|| "SDR".into()),
            attribute(variant, "SUPPLEMENTAL-CODECS").unwrap_or_default(),
        );
        let wanted = (
            want.codecs,
            want.channels,
            want.video_range,
            want.supplemental_codecs,
        );
        assert_eq!(got, wanted, "{}: {master}", e.file);
        // The I-frame variant announces the same video.
        let iframe = first_line(&master, "#EXT-X-I-FRAME-STREAM-INF:");
        assert_eq!(
            attribute(iframe, "SUPPLEMENTAL-CODECS"),
            attribute(variant, "SUPPLEMENTAL-CODECS"),
            "{}",
            e.file
        );
    }
}

/// The Dolby Vision record (dvcC/dvvC) and the sample entry type travel with the copied
/// video sample entry: ffprobe reads the same profile, level and compatibility from the
/// packaged rendition as from the source.
#[test]
fn dolby_vision_configuration_reaches_the_init_segment() {
    let keys = "stream=codec_tag_string:stream_side_data=dv_profile,dv_level,\
                dv_bl_signal_compatibility_id,rpu_present_flag,el_present_flag,bl_present_flag";
    for name in ["dv_p5.mp4", "dv_p81.mp4", "dv_p84.mp4", "dv_p10.mp4"] {
        let source = ffprobe_entries(&fixture(name), "v:0", keys);
        assert!(source.contains_key("dv_profile"), "{name}: {source:?}");
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        package(&[name], &out, &[]);
        let master = read(&out.join("master.m3u8"));
        let packaged = first_fragment(&out.join(variant_uri(&master)), tmp.path());
        assert_eq!(ffprobe_entries(&packaged, "v:0", keys), source, "{name}");
    }
}

/// ffmpeg reads SBR and PS from the AudioSpecificConfig (48 kHz out of a 24 kHz core,
/// stereo out of a mono one); the packaged audio says the same.
#[test]
fn he_aac_configuration_reaches_the_init_segment() {
    let keys = "stream=codec_name,sample_rate,channels";
    for name in [
        "he_aac.mp4",
        "he_aac_compat.mp4",
        "he_aac_v2.mp4",
        "he_aac_v2_compat.mp4",
    ] {
        let source = ffprobe_entries(&fixture(name), "a:0", keys);
        assert_eq!(source["sample_rate"], "48000", "{name}: {source:?}");
        assert_eq!(source["channels"], "2", "{name}: {source:?}");
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        package(&[name], &out, &[]);
        let master = read(&out.join("master.m3u8"));
        let packaged = first_fragment(&audio_playlist(&out, &master), tmp.path());
        assert_eq!(ffprobe_entries(&packaged, "a:0", keys), source, "{name}");
    }
}

/// A QuickTime file as editors write it packages whole: the 96 kHz sound description
/// version 2 with its esds inside `wave` and a `chan` layout, the picture's `pasp` (4:3
/// pixels) and `clap` carried in the copied sample entry, and its timecode and chapter tracks
/// ignored without a warning (they are not media the title loses), though still listed.
#[test]
fn quicktime_mov_passes_v2_sound_pasp_and_clap_and_ignores_timecode_and_chapters_silently() {
    let name = "mov_quicktime.mov";
    let source = fixture(name);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let output = hlspipe()
        .arg("package")
        .arg(&source)
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let warnings = &manifest["warnings"];
    assert!(
        warnings.is_null() || warnings.as_array().is_some_and(|w| w.is_empty()),
        "{manifest}"
    );
    // Every track is still listed, with what became of it.
    let became: Vec<(u64, &str)> = manifest["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .map(|t| {
            let what = t["rendition"].as_str().or(t["reason"].as_str());
            (t["track"].as_u64().unwrap(), what.unwrap_or_default())
        })
        .collect();
    assert_eq!(
        became,
        [
            (1, "video_180p"),
            (2, "audio_und"),
            (3, "a chapter track (ignored)"),
            (4, "a 'tmcd' track (ignored)")
        ],
        "{manifest}"
    );

    let master = read(&out.join("master.m3u8"));
    let video = first_fragment(&out.join(variant_uri(&master)), tmp.path());
    let sar = "stream=sample_aspect_ratio";
    let want = ffprobe_entries(&source, "v:0", sar);
    assert_eq!(want["sample_aspect_ratio"], "4:3");
    assert_eq!(ffprobe_entries(&video, "v:0", sar), want);
    // RESOLUTION as displayed: 320 samples of 4:3 pixels are 427 wide, as ffprobe's
    // display aspect ratio (64:27) says.
    let size = ffprobe_entries(&source, "v:0", "stream=width,height,display_aspect_ratio");
    assert_eq!(size["display_aspect_ratio"], "64:27");
    let width: u32 = size["width"].parse().unwrap();
    let height: u32 = size["height"].parse().unwrap();
    let displayed = format!("{}x{height}", (width * 4 + 1) / 3);
    let variant = first_line(&master, "#EXT-X-STREAM-INF:");
    assert_eq!(
        attribute(variant, "RESOLUTION").as_deref(),
        Some(displayed.as_str())
    );
    // ffmpeg 5.1 does not export a clean aperture: the box itself must be in the init
    // segment, byte for byte.
    let bytes = std::fs::read(&source).unwrap();
    let at = bytes.windows(4).position(|w| w == b"clap").unwrap() - 4;
    let clap = &bytes[at..at + 40];
    let rendition = out.join(variant_uri(&master));
    let init = std::fs::read(rendition.with_file_name("init.mp4")).unwrap();
    assert!(init.windows(clap.len()).any(|w| w == clap), "clap lost");

    let audio = first_fragment(&audio_playlist(&out, &master), tmp.path());
    let keys = "stream=codec_name,sample_rate,channels";
    let want = ffprobe_entries(&source, "a:0", keys);
    assert_eq!(want["sample_rate"], "96000");
    assert_eq!(ffprobe_entries(&audio, "a:0", keys), want);
}
