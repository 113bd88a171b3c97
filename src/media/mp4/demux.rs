//! Reads an MP4/MOV file's `moov` into a [`Movie`]: usable tracks with their codec
//! configuration and a fully resolved sample table.
//!
//! Reads go through [`Source::read_at`]: a short scan of the top-level box headers,
//! then one read of `moov`. Sample data is never read here.

use super::fragments::{parse_mvex, SampleDefaults};
use super::reader::{find, require, BoxHeader, BoxRef, Boxes, Reader};
pub use super::toplevel::Limits;
use super::toplevel::{check_top_level_box_count, read_top_level_header};
use crate::error::{Error, FourCc, Result};
use crate::media::aac::AudioSpecificConfig;
use crate::media::dovi::{self, DoviConfig};
use crate::media::eac3::{Ec3Config, ACMOD_CHANNELS};
use crate::media::model::{
    AudioFormat, Codec, Movie, Sample, SkippedTrack, Track, TrackKind, MAX_TICKS,
};
use crate::media::source::{read_vec, Source};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Demuxes one input. `input` is its index in the title (see [`Track::input`]).
pub fn demux(src: &dyn Source, input: usize, limits: &Limits) -> Result<Movie> {
    let moov = locate_moov(src, limits)?;
    let moov_bytes = read_vec(src, moov.body_offset, moov.body_len)?;
    let mut hasher = Sha256::new();
    hasher.update(b"hlspipe-moov-v1");
    hasher.update(src.len().to_be_bytes());
    hasher.update(&moov_bytes);
    let fingerprint: [u8; 32] = hasher.finalize().into();
    let parsed = parse_moov(&moov_bytes, input, src.len(), limits)?;
    let mut movie = parsed.movie;
    if let Some(defaults) = &parsed.fragment_defaults {
        // Subtitle tracks take their samples from the fragments too: read with the media
        // tracks, then set apart again.
        let media = movie.tracks.len();
        movie.tracks.append(&mut movie.text_tracks);
        super::fragments::read_fragments(
            src,
            limits,
            &mut movie.tracks,
            &parsed.track_ids,
            defaults,
        )?;
        movie.text_tracks = movie.tracks.split_off(media);
    }
    for t in &mut movie.tracks {
        check_times(t)?;
        crate::media::edit::apply(t);
    }
    // A track with no samples (an empty track, or one no fragment filled) is not media.
    let (tracks, empty): (Vec<Track>, Vec<Track>) = movie
        .tracks
        .into_iter()
        .partition(|t| !t.samples.is_empty());
    movie.tracks = tracks;
    let (text, empty_text): (Vec<Track>, Vec<Track>) = std::mem::take(&mut movie.text_tracks)
        .into_iter()
        .partition(|t| !t.samples.is_empty());
    movie.text_tracks = text;
    for t in &mut movie.tracks {
        mp3_channels_from_first_frame(src, t)?;
    }
    movie
        .skipped
        .extend(empty.into_iter().chain(empty_text).map(|t| SkippedTrack {
            id: t.id,
            reason: "the track has no samples".into(),
            uncarried: None,
        }));
    if movie.tracks.is_empty() {
        let why = if movie.skipped.is_empty() {
            "the file has no tracks".to_string()
        } else {
            movie
                .skipped
                .iter()
                .map(|s| format!("track {}: {}", s.id, s.reason))
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(Error::NoUsableTrack(why));
    }
    movie.fingerprint = fingerprint;
    Ok(movie)
}

/// MP3 has no configuration record: its channel mode is in every frame header, and the
/// sample entry's channelcount is what the writer chose (ffmpeg writes 2 for mono). The
/// first frame's 4-byte header is read (the one sample-data read of the demuxer, bounded to
/// those bytes) and its mode decides; a header that does not parse keeps the entry's count.
fn mp3_channels_from_first_frame(src: &dyn Source, track: &mut Track) -> Result<()> {
    let is_mp3 = matches!(
        track.codec,
        Codec::Audio {
            format: AudioFormat::Mp3,
            ..
        }
    );
    let Some(first) = track.samples.first().filter(|s| is_mp3 && s.size >= 4) else {
        return Ok(());
    };
    let mut head = [0u8; 4];
    src.read_at(first.offset, &mut head)
        .map_err(|e| Error::Io {
            what: src.name().to_string(),
            source: e,
        })?;
    if let Some(channels) = mpeg_audio_channels(head) {
        track.channels = channels;
    }
    Ok(())
}

/// Channels of an MPEG-1/2 audio frame header (ISO/IEC 11172-3 § 2.4.1.3, ISO/IEC 13818-3
/// § 2.4.1.3): syncword (12 bits, the last one the ID bit, or MPEG 2.5's 11), layer not
/// `00`, then in the fourth byte the mode: `11` is single channel, the others two channels.
fn mpeg_audio_channels(header: [u8; 4]) -> Option<u16> {
    let [b0, b1, _, b3] = header;
    let sync = b0 == 0xff && b1 & 0xe0 == 0xe0;
    let version_ok = (b1 >> 3) & 0x3 != 0x1;
    let layer_ok = (b1 >> 1) & 0x3 != 0;
    (sync && version_ok && layer_ok).then_some(if b3 >> 6 == 0x3 { 1 } else { 2 })
}

/// The `moov`'s tracks, and for a fragmented file the `trex` defaults and every track_ID
/// (fragments of skipped tracks are passed over, fragments of unknown ones are errors).
struct ParsedMoov {
    movie: Movie,
    fragment_defaults: Option<HashMap<u32, SampleDefaults>>,
    track_ids: Vec<u32>,
}

struct Located {
    body_offset: u64,
    body_len: u64,
}

/// Finds `moov` by walking the top-level boxes (ISO/IEC 14496-12 § 4.2), reading
/// only each box's header, so a large `mdat` before it costs nothing.
fn locate_moov(src: &dyn Source, limits: &Limits) -> Result<Located> {
    let len = src.len();
    if len == 0 {
        return Err(Error::NotMp4(format!("{} is empty (0 bytes)", src.name())));
    }
    let mut offset = 0u64;
    let mut seen = 0u32;
    let mut saw_mdat = false;
    while offset < len {
        seen += 1;
        check_top_level_box_count(seen, limits)?;
        let left = len - offset;
        if left < 8 {
            // Trailing padding after the last box is tolerated; anything else is not.
            break;
        }
        let header = read_top_level_header(src, offset, len, seen == 1)?;
        let (fourcc, size) = (header.fourcc, header.size);
        let end = offset
            .checked_add(size)
            .ok_or_else(|| Error::malformed(&fourcc, None, format!("size {size} overflows")))?;
        if &fourcc == b"moov" {
            return moov_body(&header, offset, end, len, limits);
        }
        if &fourcc == b"mdat" {
            saw_mdat = true;
        }
        if end > len {
            // A box that runs past the end before any moov: the upload was cut short
            // (moov-at-end files lose their moov first) or the size is a lie.
            return Err(Error::Truncated {
                fourcc: FourCc(fourcc),
                offset,
                needed: size,
                file_len: len,
            });
        }
        offset = end;
    }
    Err(if saw_mdat {
        Error::missing(b"moov", None)
    } else {
        Error::NotMp4(format!("{} has no 'moov' box", src.name()))
    })
}

/// Where the body of the `moov` box from `offset` to `end` lies, once it is known to be
/// whole inside the file and within the size limit.
fn moov_body(
    header: &BoxHeader,
    offset: u64,
    end: u64,
    file_len: u64,
    limits: &Limits,
) -> Result<Located> {
    let (size, header_len) = (header.size, header.header_len);
    if end > file_len {
        return Err(Error::Truncated {
            fourcc: FourCc(header.fourcc),
            offset,
            needed: size,
            file_len,
        });
    }
    if size - header_len > limits.max_moov_bytes {
        return Err(Error::Limit {
            fourcc: FourCc(header.fourcc),
            track: None,
            what: "moov size",
            value: size - header_len,
            limit: limits.max_moov_bytes,
        });
    }
    Ok(Located {
        body_offset: offset + header_len,
        body_len: size - header_len,
    })
}

fn parse_moov(moov: &[u8], input: usize, file_len: u64, limits: &Limits) -> Result<ParsedMoov> {
    let mvhd = require(moov, *b"moov", None, b"mvhd")?;
    let movie_timescale = parse_mvhd(mvhd.body)?;
    let fragment_defaults = match find(moov, *b"moov", None, b"mvex")? {
        Some(mvex) => Some(parse_mvex(mvex.body)?),
        None => None,
    };
    let chapters = chapter_track_ids(moov);
    let mut movie = Movie {
        tracks: Vec::new(),
        text_tracks: Vec::new(),
        skipped: Vec::new(),
        ignored: Vec::new(),
        notes: Vec::new(),
        fingerprint: [0; 32],
    };
    let mut track_ids = Vec::new();
    for b in Boxes::new(moov, *b"moov", None) {
        let b = b?;
        if &b.fourcc != b"trak" {
            continue;
        }
        if track_ids.len() >= limits.max_tracks {
            return Err(Error::Limit {
                fourcc: FourCc(*b"moov"),
                track: None,
                what: "track count",
                value: track_ids.len() as u64 + 1,
                limit: limits.max_tracks as u64,
            });
        }
        let outcome = parse_trak(b.body, input, movie_timescale, file_len, limits)?;
        track_ids.push(file_outcome(&mut movie, outcome, &chapters));
    }
    Ok(ParsedMoov {
        movie,
        fragment_defaults,
        track_ids,
    })
}

/// Files one track's outcome in the movie (media, subtitles, skipped with a reason, or
/// ignored by design) and returns its track_ID. A chapter track is text (often tx3g),
/// never a subtitle rendition.
fn file_outcome(movie: &mut Movie, outcome: TrakOutcome, chapters: &[u32]) -> u32 {
    let chapter = |id: u32| SkippedTrack {
        id,
        reason: "a chapter track (ignored)".into(),
        uncarried: None,
    };
    match outcome {
        TrakOutcome::Usable(t, _) if chapters.contains(&t.id) => {
            movie.ignored.push(chapter(t.id));
            t.id
        }
        TrakOutcome::Usable(t, note) => {
            let id = t.id;
            movie.notes.extend(note.map(|n| format!("track {id}: {n}")));
            match t.kind {
                TrackKind::Subtitles => movie.text_tracks.push(*t),
                _ => movie.tracks.push(*t),
            }
            id
        }
        TrakOutcome::Skipped(s) if chapters.contains(&s.id) => {
            movie.ignored.push(chapter(s.id));
            s.id
        }
        TrakOutcome::Skipped(s) => {
            let id = s.id;
            movie.skipped.push(s);
            id
        }
        TrakOutcome::Ignored(s) => {
            let id = s.id;
            movie.ignored.push(s);
            id
        }
    }
}

fn parse_mvhd(body: &[u8]) -> Result<u32> {
    let mut r = Reader::new(body, *b"mvhd", None);
    let (version, _) = r.version_flags()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    if timescale == 0 {
        return Err(r.error("timescale is 0"));
    }
    Ok(timescale)
}

enum TrakOutcome {
    /// The track, and a note on how its edit list was read when it was honoured in part.
    Usable(Box<Track>, Option<String>),
    Skipped(SkippedTrack),
    /// Not media by design, listed but never warned about: see [`IGNORED_HANDLERS`] and
    /// [`chapter_track_ids`].
    Ignored(SkippedTrack),
}

/// Handlers of tracks that are not media and are ignored (DESIGN.md "Media rules":
/// timecode, chapter and data tracks): QuickTime timecode (`tmcd`), timed metadata (`meta`:
/// camera telemetry, Apple `mebx`), camera motion (`camm`), hint tracks (`hint`) and MPEG-4
/// systems streams (`odsm`, `sdsm`).
const IGNORED_HANDLERS: [&[u8; 4]; 6] = [b"tmcd", b"meta", b"camm", b"hint", b"odsm", b"sdsm"];

/// The track_IDs that a `chap` track reference of any track names: chapter tracks (QTFF
/// "Track Reference Atom"; ffmpeg writes them for MP4 as well as MOV). They hold text, but
/// titles of chapters, not subtitles. A `tref` that cannot be read names no chapters: it
/// never stops the file from packaging.
fn chapter_track_ids(moov: &[u8]) -> Vec<u32> {
    // More references than a file can have tracks are a hostile file's, not chapters.
    const MAX_CHAPTER_TRACKS: usize = 1024;
    let mut ids = Vec::new();
    let traks = Boxes::new(moov, *b"moov", None)
        .map_while(|b| b.ok())
        .filter(|b| &b.fourcc == b"trak");
    for trak in traks {
        let Ok(Some(tref)) = find(trak.body, *b"trak", None, b"tref") else {
            continue;
        };
        let chaps = Boxes::new(tref.body, *b"tref", None)
            .map_while(|b| b.ok())
            .filter(|b| &b.fourcc == b"chap");
        for chap in chaps {
            let room = MAX_CHAPTER_TRACKS.saturating_sub(ids.len());
            ids.extend(
                chap.body
                    .chunks_exact(4)
                    .take(room)
                    .map(|id| u32::from_be_bytes([id[0], id[1], id[2], id[3]])),
            );
        }
    }
    ids
}

fn parse_trak(
    trak: &[u8],
    input: usize,
    movie_timescale: u32,
    file_len: u64,
    limits: &Limits,
) -> Result<TrakOutcome> {
    let tkhd = require(trak, *b"trak", None, b"tkhd")?;
    let (id, matrix) = parse_tkhd(tkhd.body)?;
    let t = Some(id);
    let mdia = require(trak, *b"trak", t, b"mdia")?;
    let kind = match track_kind(mdia.body, id)? {
        Ok(kind) => kind,
        Err(not_media) => return Ok(not_media),
    };
    let mdhd = require(mdia.body, *b"mdia", t, b"mdhd")?;
    let (timescale, language) = parse_mdhd(mdhd.body, t)?;
    let minf = require(mdia.body, *b"mdia", t, b"minf")?;
    let stbl = require(minf.body, *b"minf", t, b"stbl")?;
    let stsd = require(stbl.body, *b"stbl", t, b"stsd")?;
    let entry = match parse_stsd(stsd.body, kind, t)? {
        Ok(e) => e,
        Err(reason) => {
            // Cover art is a one-picture "video" track of a music file, not its picture.
            let still = first_entry_fourcc(stsd.body).filter(|f| STILL_IMAGES.contains(&f));
            return Ok(TrakOutcome::Skipped(SkippedTrack {
                id,
                reason: match still {
                    Some(f) => format!("'{}' is a still image (cover art)", FourCc(f)),
                    None => reason,
                },
                // Losing a subtitle track loses neither picture nor sound.
                uncarried: (still.is_none() && kind != TrackKind::Subtitles).then_some(kind),
            }));
        }
    };
    // Empty for a fragmented file: its samples come with the fragments, and a track that
    // stays empty is set aside once they are read.
    let samples = parse_sample_table(stbl.body, t, file_len, limits)?;
    let edit = read_edit(trak, t, movie_timescale, timescale)?;
    Ok(TrakOutcome::Usable(
        Box::new(Track {
            input,
            id,
            kind,
            codec: entry.codec,
            sample_entry: entry.raw,
            timescale,
            language,
            width: entry.width,
            height: entry.height,
            matrix,
            transfer: entry.transfer,
            channels: entry.channels,
            sample_rate: entry.sample_rate,
            media_start: edit.media_start,
            empty_delay: edit.empty_delay,
            media_end: edit.media_end,
            samples,
        }),
        edit.note,
    ))
}

/// What the track's handler (`hdlr`, ISO/IEC 14496-12 § 8.4.3) says it carries, or the
/// outcome of a track that is not media: ignored by design, or skipped with the reason.
fn track_kind(mdia: &[u8], id: u32) -> Result<std::result::Result<TrackKind, TrakOutcome>> {
    let t = Some(id);
    let hdlr = require(mdia, *b"mdia", t, b"hdlr")?;
    let handler = {
        let mut r = Reader::new(hdlr.body, *b"hdlr", t);
        r.version_flags()?;
        r.skip(4)?;
        r.fourcc()?
    };
    let not_media = |reason: String| SkippedTrack {
        id,
        reason,
        uncarried: None,
    };
    Ok(match &handler {
        b"vide" => Ok(TrackKind::Video),
        b"soun" => Ok(TrackKind::Audio),
        // QuickTime and 3GPP timed text (3GPP TS 26.245 § 5.16: 'text'; ffmpeg's mp4
        // muxer writes 'sbtl' for mov_text), and ISO/IEC 14496-30's 'subt'.
        b"text" | b"sbtl" | b"subt" => Ok(TrackKind::Subtitles),
        other if IGNORED_HANDLERS.contains(&other) => Err(TrakOutcome::Ignored(not_media(
            format!("a '{}' track (ignored)", FourCc(*other)),
        ))),
        other => Err(TrakOutcome::Skipped(not_media(format!(
            "handler '{}' is neither video nor audio",
            FourCc(*other)
        )))),
    })
}

/// The track's edit list (`edts`/`elst`), resolved; none is the whole media from 0.
fn read_edit(trak: &[u8], t: Option<u32>, movie_ts: u32, media_ts: u32) -> Result<Edit> {
    match find(trak, *b"trak", t, b"edts")? {
        Some(edts) => match find(edts.body, *b"edts", t, b"elst")? {
            Some(elst) => parse_elst(elst.body, t, movie_ts, media_ts),
            None => Ok(Edit::default()),
        },
        None => Ok(Edit::default()),
    }
}

/// track_ID and the transformation matrix (ISO/IEC 14496-12 § 8.3.2).
/// The common name of a sample entry type people upload, for messages: `mp4v` means little
/// to someone whose camera wrote it.
fn codec_name(fourcc: &[u8; 4]) -> &'static str {
    match fourcc {
        b"mp4v" => " (MPEG-4 Part 2)",
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => " (ProRes)",
        b"AVdh" | b"AVdn" => " (DNxHD)",
        b"jpeg" | b"mjpa" | b"mjpb" => " (Motion JPEG)",
        b"vp09" => " (VP9)",
        b"av01" => " (AV1)",
        b"dvh1" | b"dvhe" => " (Dolby Vision)",
        b"s263" | b"h263" => " (H.263)",
        b"ac-3" => " (AC-3)",
        b"ec-3" => " (E-AC-3)",
        b".mp3" => " (MP3)",
        b"Opus" => " (Opus)",
        b"fLaC" => " (FLAC)",
        b"alac" => " (ALAC)",
        b"sowt" | b"twos" | b"lpcm" | b"ipcm" | b"fpcm" | b"in24" | b"in32" | b"fl32" | b"fl64"
        | b"raw " => " (PCM)",
        b"samr" | b"sawb" => " (AMR)",
        _ => "",
    }
}

/// Sample entries that hold a still picture: cover art in music files.
const STILL_IMAGES: [&[u8; 4]; 4] = [b"jpeg", b"png ", b"mjpa", b"mjpb"];

/// The type of the first sample entry of an `stsd` body (version and flags, entry count,
/// then the entry's size and type), if the body is long enough to hold it.
fn first_entry_fourcc(stsd: &[u8]) -> Option<[u8; 4]> {
    stsd.get(12..16).and_then(|f| f.try_into().ok())
}

fn parse_tkhd(body: &[u8]) -> Result<(u32, [i32; 9])> {
    let mut r = Reader::new(body, *b"tkhd", None);
    let (version, _) = r.version_flags()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let id = r.u32()?;
    if id == 0 {
        return Err(r.error("track_ID is 0"));
    }
    // reserved, duration, reserved[2], layer, alternate_group, volume, reserved.
    r.skip(4 + if version == 1 { 8 } else { 4 } + 8 + 2 + 2 + 2 + 2)?;
    let mut matrix = [0i32; 9];
    for m in &mut matrix {
        *m = r.i32()?;
    }
    Ok((id, matrix))
}

/// Transfer characteristics from a `colr` box of type `nclx` (ISO/IEC 14496-12 § 12.1.5)
/// or QuickTime's `nclc`: colour_primaries, then transfer_characteristics (ITU-T H.273).
/// Other colour types (ICC profiles) say nothing usable here.
fn parse_colr(body: &[u8], t: Option<u32>) -> Result<Option<u16>> {
    let mut r = Reader::new(body, *b"colr", t);
    match &r.fourcc()? {
        b"nclx" | b"nclc" => {
            r.u16()?;
            Ok(Some(r.u16()?))
        }
        _ => Ok(None),
    }
}

fn parse_mdhd(body: &[u8], t: Option<u32>) -> Result<(u32, String)> {
    let mut r = Reader::new(body, *b"mdhd", t);
    let (version, _) = r.version_flags()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    r.skip(if version == 1 { 8 } else { 4 })?;
    if timescale == 0 {
        return Err(r.error("timescale is 0"));
    }
    // ISO/IEC 14496-12 § 8.4.2.3: three 5-bit letters, each + 0x60. QuickTime files
    // may instead carry a Macintosh language code (< 0x400); those read as `und`.
    let packed = r.u16()?;
    let language = if packed < 0x400 {
        "und".to_string()
    } else {
        let letters = [
            (((packed >> 10) & 0x1f) as u8).wrapping_add(0x60),
            (((packed >> 5) & 0x1f) as u8).wrapping_add(0x60),
            ((packed & 0x1f) as u8).wrapping_add(0x60),
        ];
        if letters.iter().all(u8::is_ascii_lowercase) {
            String::from_utf8_lossy(&letters).into_owned()
        } else {
            "und".to_string()
        }
    };
    Ok((timescale, language))
}

struct Entry {
    codec: Codec,
    raw: Vec<u8>,
    width: u16,
    height: u16,
    transfer: Option<u16>,
    channels: u16,
    sample_rate: u32,
}

/// Parses the first sample entry. The outer `Result` is a malformed file; the inner
/// `Err` is a well-formed track we do not package (unsupported codec), with the reason.
fn parse_stsd(
    body: &[u8],
    kind: TrackKind,
    t: Option<u32>,
) -> Result<std::result::Result<Entry, String>> {
    let mut r = Reader::new(body, *b"stsd", t);
    r.version_flags()?;
    let count = r.u32()?;
    if count == 0 {
        return Err(r.error("no sample entries"));
    }
    let first = match Boxes::new(r.rest(), *b"stsd", t).next() {
        Some(b) => b?,
        None => return Err(Error::malformed(b"stsd", t, "no sample entries")),
    };
    match kind {
        TrackKind::Video => parse_visual_entry(first, t),
        TrackKind::Audio => parse_audio_entry(first, t),
        TrackKind::Subtitles => Ok(parse_text_entry(first)),
    }
}

/// A subtitle sample entry: `tx3g` is carried (its samples become WebVTT cues); others
/// (QuickTime `text`, `wvtt`, `stpp`) are skipped with the reason.
fn parse_text_entry(entry: BoxRef<'_>) -> std::result::Result<Entry, String> {
    if &entry.fourcc != b"tx3g" {
        return Err(format!(
            "subtitle format '{}' cannot be carried yet (tx3g/mov_text can)",
            FourCc(entry.fourcc)
        ));
    }
    Ok(Entry {
        codec: Codec::Tx3g,
        raw: Vec::new(),
        width: 0,
        height: 0,
        transfer: None,
        channels: 0,
        sample_rate: 0,
    })
}

fn parse_visual_entry(
    entry: BoxRef<'_>,
    t: Option<u32>,
) -> Result<std::result::Result<Entry, String>> {
    let fourcc = entry.fourcc;
    let config_box: &[u8; 4] = match &fourcc {
        b"avc1" | b"avc3" => b"avcC",
        b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => b"hvcC",
        b"vp09" => b"vpcC",
        b"av01" | b"dav1" => b"av1C",
        b"encv" => return Ok(Err("encrypted video (encv) is not supported".into())),
        other => {
            return Ok(Err(format!(
                "video codec '{}'{} cannot be carried yet (H.264, HEVC, VP9 and AV1 can)",
                FourCc(*other),
                codec_name(other)
            )))
        }
    };
    // VisualSampleEntry (ISO/IEC 14496-12 § 12.1.3): 6 reserved, data_reference_index,
    // 16 bytes pre_defined/reserved, width, height, then 50 more bytes before children.
    let mut r = Reader::new(entry.body, fourcc, t);
    r.skip(6 + 2 + 16)?;
    let width = r.u16()?;
    let height = r.u16()?;
    r.skip(50)?;
    let children = r.rest();
    let config = require(children, fourcc, t, config_box)?;
    let transfer = match find(children, fourcc, t, b"colr")? {
        Some(colr) => parse_colr(colr.body, t)?,
        None => None,
    };
    let dovi = parse_dovi(children, &fourcc, t)?;
    if config.body.len() < 4 {
        return Err(Error::malformed(
            config_box,
            t,
            "configuration record too short",
        ));
    }
    if width == 0 || height == 0 {
        return Err(Error::malformed(&fourcc, t, "video width or height is 0"));
    }
    let codec = visual_codec(fourcc, config_box, config, dovi, t)?;
    let transfer = match &codec {
        Codec::Vp9 { vpcc } if transfer.is_none() => vpcc.get(8).map(|&tc| u16::from(tc)),
        _ => dovi_transfer(dovi.as_ref(), transfer),
    };
    Ok(Ok(Entry {
        codec,
        raw: entry.raw.to_vec(),
        width,
        height,
        transfer,
        channels: 0,
        sample_rate: 0,
    }))
}

/// The codec of a visual entry from its configuration record (`avcC`, `hvcC`, `vpcC` or
/// `av1C`, at least 4 bytes), each checked as far as the CODECS string needs it.
fn visual_codec(
    fourcc: [u8; 4],
    config_box: &[u8; 4],
    config: BoxRef<'_>,
    dovi: Option<DoviConfig>,
    t: Option<u32>,
) -> Result<Codec> {
    Ok(if config_box == b"vpcC" {
        // VPCodecConfigurationBox (VP Codec ISO Media File Format Binding § 2.2): a full
        // box, then profile, level, bitDepth(4) chromaSubsampling(3) fullRange(1),
        // colourPrimaries, transferCharacteristics, matrixCoefficients.
        if config.body.len() < 4 + 6 {
            return Err(Error::malformed(b"vpcC", t, "record too short"));
        }
        Codec::Vp9 {
            vpcc: config.body.to_vec(),
        }
    } else if config_box == b"av1C" {
        // AV1CodecConfigurationRecord (AV1 ISOBMFF binding § 2.3.3): marker(1) version(7),
        // then profile, level, tier and the colour format bits.
        if config.body[0] != 0x81 {
            return Err(Error::malformed(b"av1C", t, "marker and version are not 1"));
        }
        Codec::Av1 {
            fourcc,
            av1c: config.body.to_vec(),
            dovi,
        }
    } else if config_box == b"avcC" {
        if config.body[0] != 1 {
            return Err(Error::malformed(
                b"avcC",
                t,
                format!("configurationVersion {} is not 1", config.body[0]),
            ));
        }
        Codec::H264 {
            fourcc,
            avcc: config.body.to_vec(),
        }
    } else {
        if config.body.len() < 23 {
            return Err(Error::malformed(
                b"hvcC",
                t,
                "configuration record too short",
            ));
        }
        Codec::H265 {
            fourcc,
            hvcc: config.body.to_vec(),
            dovi,
        }
    })
}

/// The Dolby Vision configuration among a visual sample entry's children (see
/// [`DoviConfig`]). `dvh1`, `dvhe` and `dav1` entries must have one (Dolby Vision in ISOBMFF
/// § 3.2); in an `hvc1`, `hev1` or `av01` entry it is optional, and one that cannot be read
/// is passed over: the base layer still plays, only the Dolby Vision announcement is lost.
fn parse_dovi(children: &[u8], fourcc: &[u8; 4], t: Option<u32>) -> Result<Option<DoviConfig>> {
    let mut found = None;
    for b in dovi::CONFIG_BOXES {
        if let Some(config) = find(children, *fourcc, t, b)? {
            found = Some((b, config));
            break;
        }
    }
    let required = matches!(fourcc, b"dvh1" | b"dvhe" | b"dav1");
    match found {
        Some((b, config)) => match DoviConfig::parse(config.body) {
            Ok(dovi) => Ok(Some(dovi)),
            Err(reason) if required => Err(Error::malformed(b, t, reason)),
            Err(_) => Ok(None),
        },
        None if required => Err(Error::missing(b"dvcC", t)),
        None => Ok(None),
    }
}

/// VIDEO-RANGE of a Dolby Vision track: without a compatible base layer (profile 5, 10.0)
/// it is PQ whatever `colr` says (that layer is not meant to be shown without Dolby
/// Vision); otherwise the base layer's own `colr`, or when it has none (or says
/// "unspecified", 2) the transfer its compatibility id names.
fn dovi_transfer(dovi: Option<&DoviConfig>, colr: Option<u16>) -> Option<u16> {
    match (dovi, colr) {
        (Some(d), _) if d.compatibility == 0 => d.transfer().or(colr),
        (Some(d), None | Some(2)) => d.transfer().or(colr),
        _ => colr,
    }
}

/// The pixel aspect ratio (hSpacing, vSpacing) of a visual sample entry's `pasp` box
/// (ISO/IEC 14496-12 § 12.1.4), from the entry as stored in [`Track::sample_entry`]
/// (header, 78 bytes of VisualSampleEntry fields, then children). `None` without one, for
/// zero spacings, or for ratios beyond 1:8..8:1, which no camera or editor writes.
pub fn pixel_aspect_ratio(sample_entry: &[u8]) -> Option<(u32, u32)> {
    let fourcc: [u8; 4] = sample_entry.get(4..8)?.try_into().ok()?;
    let children = sample_entry.get(8 + 78..)?;
    let pasp = find(children, fourcc, None, b"pasp").ok()??;
    let mut r = Reader::new(pasp.body, *b"pasp", None);
    let (h, v) = (r.u32().ok()?, r.u32().ok()?);
    let sane =
        h > 0 && v > 0 && u64::from(h) <= 8 * u64::from(v) && u64::from(v) <= 8 * u64::from(h);
    sane.then_some((h, v))
}

fn parse_audio_entry(
    entry: BoxRef<'_>,
    t: Option<u32>,
) -> Result<std::result::Result<Entry, String>> {
    let fourcc = entry.fourcc;
    let config_box: &[u8; 4] = match &fourcc {
        b"mp4a" => b"esds",
        b"ac-3" => b"dac3",
        b"ec-3" => b"dec3",
        b"Opus" => b"dOps",
        b"fLaC" => b"dfLa",
        b"alac" => b"alac",
        b"enca" => return Ok(Err("encrypted audio (enca) is not supported".into())),
        other => {
            return Ok(Err(format!(
                "audio codec '{}'{} cannot be carried yet (AAC, AC-3, E-AC-3, MP3, Opus, FLAC \
                 and ALAC can)",
                FourCc(*other),
                codec_name(other)
            )))
        }
    };
    let (entry_channels, mut sample_rate, children) = parse_sound_description(entry, t)?;
    // QuickTime puts the configuration inside a `wave` box.
    let config = match find(children, fourcc, t, config_box)? {
        Some(c) => c,
        None => match find(children, fourcc, t, b"wave")? {
            Some(wave) => require(wave.body, *b"wave", t, config_box)?,
            None => return Err(Error::missing(config_box, t)),
        },
    };
    // Looking for a channel layout never fails a track whose configuration was found.
    let wave = find(children, fourcc, t, b"wave").ok().flatten();
    // CHANNELS comes from the codec's own configuration when it says (below); else from a
    // QuickTime channel layout; the sample entry's count is the last resort.
    let mut channels =
        layout_channels(children, wave.map(|w| w.body), fourcc, t).unwrap_or(entry_channels);
    let codec = match audio_codec(config, t, &mut channels, &mut sample_rate)? {
        Ok(codec) => codec,
        Err(reason) => return Ok(Err(reason)),
    };
    if sample_rate == 0 {
        return Err(Error::malformed(&fourcc, t, "sample rate is 0"));
    }
    Ok(Ok(Entry {
        codec,
        raw: entry.raw.to_vec(),
        width: 0,
        height: 0,
        transfer: None,
        channels,
        sample_rate,
    }))
}

/// The codec of an audio entry from its configuration box (`esds`, `dac3`, `dec3`, `dOps`,
/// `dfLa` or `alac`), with the channels and rate that configuration states written over
/// what the entry said. The inner `Err` is an `mp4a` whose object type is not carried.
fn audio_codec(
    config: BoxRef<'_>,
    t: Option<u32>,
    channels: &mut u16,
    sample_rate: &mut u32,
) -> Result<std::result::Result<Codec, String>> {
    let passed = |format: AudioFormat| Codec::Audio {
        format,
        config: config.raw.to_vec(),
    };
    Ok(Ok(match &config.fourcc {
        b"esds" => match parse_esds(config.body, t)? {
            EsdsAudio::Aac(asc) => {
                aac_rate_and_channels(&asc, sample_rate, channels);
                Codec::Aac { asc }
            }
            EsdsAudio::Mp3 => passed(AudioFormat::Mp3),
            EsdsAudio::Unsupported(reason) => return Ok(Err(reason)),
        },
        b"dac3" => {
            *channels = ac3_channels(config.body).unwrap_or(*channels);
            passed(AudioFormat::Ac3)
        }
        b"dec3" => {
            *channels = eac3_channels(config.body).unwrap_or(*channels);
            passed(AudioFormat::Eac3)
        }
        b"dOps" => {
            // OutputChannelCount is the second byte of the OpusSpecificBox; Opus always
            // decodes at 48 kHz (RFC 7845 § 5.1), whatever rate the entry names.
            *channels = config.body.get(1).map_or(*channels, |&c| u16::from(c));
            *sample_rate = 48_000;
            passed(AudioFormat::Opus)
        }
        b"dfLa" => {
            *channels = flac_channels(config.body).unwrap_or(*channels);
            passed(AudioFormat::Flac)
        }
        _ => {
            *channels = alac_channels(config.body).unwrap_or(*channels);
            passed(AudioFormat::Alac)
        }
    }))
}

/// Channels of a QuickTime `chan` box (QTFF "Audio Channel Layout Atom"), in the entry or
/// its `wave`: a full box, then mChannelLayoutTag, mChannelBitmap,
/// mNumberChannelDescriptions and 20-byte descriptions. The tag's low 16 bits are the
/// channel count of a predefined layout; tag 0 (kAudioChannelLayoutTag_UseChannelDescriptions)
/// counts the descriptions, which must all be in the box; tag 0x10000
/// (kAudioChannelLayoutTag_UseChannelBitmap) counts the bitmap's bits. `None` when there is
/// no such box or it says nothing usable: a broken layout never stops a track.
fn layout_channels(
    children: &[u8],
    wave: Option<&[u8]>,
    fourcc: [u8; 4],
    t: Option<u32>,
) -> Option<u16> {
    let chan = match find(children, fourcc, t, b"chan") {
        Ok(Some(chan)) => chan,
        _ => find(wave?, *b"wave", t, b"chan").ok()??,
    };
    chan_channels(chan.body)
}

fn chan_channels(body: &[u8]) -> Option<u16> {
    let word = |i: usize| -> Option<u32> {
        let b = body.get(i..i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (tag, bitmap, descriptions) = (word(4)?, word(8)?, word(12)?);
    let count = match tag {
        0 => {
            let fits = (body.len() - 16) / 20;
            (descriptions as usize <= fits).then_some(descriptions)?
        }
        0x1_0000 => bitmap.count_ones(),
        tag => tag & 0xffff,
    };
    u16::try_from(count).ok().filter(|&c| c > 0)
}

/// FLACSpecificBox (FLAC in ISOBMFF § 3.3.2): a full box, then metadata blocks, the first a
/// STREAMINFO (type 0, 34 bytes) whose byte 12 holds (channels - 1) in bits 3..1.
fn flac_channels(dfla: &[u8]) -> Option<u16> {
    let header = *dfla.get(4)?;
    if header & 0x7f != 0 {
        return None;
    }
    let packed = *dfla.get(8 + 12)?;
    Some(u16::from((packed >> 1) & 0x7) + 1)
}

/// The ALACSpecificConfig after the `alac` box's version and flags (Apple Lossless Audio
/// Codec "Magic Cookie"): frameLength(32), compatibleVersion, bitDepth, pb, mb, kb, then
/// numChannels.
fn alac_channels(alac: &[u8]) -> Option<u16> {
    alac.get(4 + 9).map(|&c| u16::from(c)).filter(|&c| c > 0)
}

/// AudioSampleEntry (ISO/IEC 14496-12 § 12.2.3): channel count, sample rate and the child
/// boxes. In QuickTime files the first reserved u16 is the sound description version: 1
/// adds 16 bytes, 2 adds 36 and carries the rate as a 64-bit float.
fn parse_sound_description<'a>(entry: BoxRef<'a>, t: Option<u32>) -> Result<(u16, u32, &'a [u8])> {
    let mut r = Reader::new(entry.body, entry.fourcc, t);
    r.skip(6 + 2)?;
    let qt_version = r.u16()?;
    r.skip(6)?;
    let mut channels = r.u16()?;
    r.skip(2 + 4)?;
    let mut sample_rate = r.u32()? >> 16;
    match qt_version {
        0 => {}
        1 => r.skip(16)?,
        2 => {
            r.skip(4)?;
            let rate = f64::from_bits(r.u64()?);
            channels = r.u32()?.min(u32::from(u16::MAX)) as u16;
            r.skip(20)?;
            if rate.is_finite() && rate > 0.0 && rate < 1e7 {
                sample_rate = rate as u32;
            }
        }
        v => return Err(r.error(format!("unknown sound description version {v}"))),
    }
    Ok((channels, sample_rate, r.rest()))
}

/// The AudioSpecificConfig is what the decoder follows (ISO/IEC 14496-14 § 5.6: the
/// sample entry's channelcount and samplerate are not used for MPEG-4 audio). Writers
/// leave channelcount at 2 for 5.1 and for mono, so the config's channels win, parametric
/// stereo counted (a mono core with PS plays as stereo); the entry's count stands only
/// when the config does not say. The rate from the entry is kept unless it is 0, then the
/// config's output rate (with SBR twice the core rate).
fn aac_rate_and_channels(asc: &[u8], sample_rate: &mut u32, channels: &mut u16) {
    if let Ok(config) = AudioSpecificConfig::parse(asc) {
        if *sample_rate == 0 {
            *sample_rate = config.output_sample_rate().unwrap_or(0);
        }
        *channels = config.output_channels().unwrap_or(*channels);
    }
}

/// AC3SpecificBox (ETSI TS 102 366 § F.4): fscod(2) bsid(5) bsmod(3) acmod(3) lfeon(1),
/// read from a big-endian word, first bit at bit 31.
fn ac3_channels(dac3: &[u8]) -> Option<u16> {
    let bits = u32::from_be_bytes([*dac3.first()?, *dac3.get(1)?, *dac3.get(2)?, 0]);
    let acmod = (bits >> 19) & 0x7;
    let lfe = (bits >> 18) & 1;
    Some(ACMOD_CHANNELS[acmod as usize] + lfe as u16)
}

/// EC3SpecificBox (ETSI TS 102 366 § F.6): the first independent substream's channels and
/// those its dependent substreams add; see [`Ec3Config`].
fn eac3_channels(dec3: &[u8]) -> Option<u16> {
    Ec3Config::parse(dec3).ok().map(|c| c.channels)
}

/// Reads an MPEG-4 descriptor header (ISO/IEC 14496-1 § 8.3.3): tag and a size in
/// up to four 7-bit groups.
fn descriptor<'a>(r: &mut Reader<'a>) -> Result<(u8, Reader<'a>)> {
    let tag = r.u8()?;
    let mut size = 0usize;
    for _ in 0..4 {
        let b = r.u8()?;
        size = (size << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            break;
        }
    }
    let body = r.bytes(size)?;
    Ok((tag, Reader::new(body, *b"esds", None)))
}

/// What an `esds` describes.
enum EsdsAudio {
    Aac(Vec<u8>),
    Mp3,
    Unsupported(String),
}

fn parse_esds(body: &[u8], t: Option<u32>) -> Result<EsdsAudio> {
    let mut r = Reader::new(body, *b"esds", t);
    r.version_flags()?;
    let (tag, mut es) = descriptor(&mut r)?;
    if tag != 0x03 {
        return Err(Error::malformed(
            b"esds",
            t,
            format!("expected ES_Descriptor, found tag {tag:#x}"),
        ));
    }
    es.skip(2)?; // ES_ID
    let flags = es.u8()?;
    if flags & 0x80 != 0 {
        es.skip(2)?;
    }
    if flags & 0x40 != 0 {
        let n = es.u8()?;
        es.skip(usize::from(n))?;
    }
    if flags & 0x20 != 0 {
        es.skip(2)?;
    }
    let (tag, mut dc) = descriptor(&mut es)?;
    if tag != 0x04 {
        return Err(Error::malformed(
            b"esds",
            t,
            format!("expected DecoderConfigDescriptor, found tag {tag:#x}"),
        ));
    }
    let object_type = dc.u8()?;
    // 0x40: MPEG-4 audio; 0x66-0x68: MPEG-2 AAC profiles; 0x69 and 0x6B: MPEG-2 and
    // MPEG-1 audio, which in MP4 is Layer III (ISO/IEC 14496-1 table 5).
    match object_type {
        0x40 | 0x66..=0x68 => {}
        0x69 | 0x6B => return Ok(EsdsAudio::Mp3),
        _ => {
            return Ok(EsdsAudio::Unsupported(format!(
                "audio object type {object_type:#04x} in 'mp4a' cannot be carried yet"
            )))
        }
    }
    dc.skip(1 + 3 + 4 + 4)?;
    let (tag, mut dsi) = descriptor(&mut dc)?;
    if tag != 0x05 {
        return Err(Error::malformed(
            b"esds",
            t,
            "no DecoderSpecificInfo (AudioSpecificConfig)",
        ));
    }
    let asc = dsi.rest().to_vec();
    if asc.len() < 2 {
        return Err(Error::malformed(
            b"esds",
            t,
            "AudioSpecificConfig shorter than 2 bytes",
        ));
    }
    Ok(EsdsAudio::Aac(asc))
}

/// Resolves a track's sample table (`stbl`, ISO/IEC 14496-12 § 8.5) into one
/// [`Sample`] per sample: size, decode time, composition offset, sync flag and file
/// offset. Only the box headers and tables are read, never sample data.
fn parse_sample_table(
    stbl: &[u8],
    t: Option<u32>,
    file_len: u64,
    limits: &Limits,
) -> Result<Vec<Sample>> {
    // Sample sizes (stsz or compact stz2).
    let sizes = parse_sizes(stbl, t, file_len, limits)?;
    let mut samples = parse_decode_times(stbl, t, sizes.count)?;
    for (i, s) in samples.iter_mut().enumerate() {
        s.size = sizes.get(i);
    }
    apply_composition_offsets(stbl, t, &mut samples)?;
    mark_sync_samples(stbl, t, &mut samples)?;
    assign_offsets(stbl, t, file_len, &mut samples)?;
    Ok(samples)
}

/// Decode times (stts, § 8.6.1.2): one sample per counted delta, which must describe
/// exactly the `n` samples of the sample size table. Sizes and offsets are filled in
/// later; every sample starts as a sync sample.
fn parse_decode_times(stbl: &[u8], t: Option<u32>, n: usize) -> Result<Vec<Sample>> {
    let stts = require(stbl, *b"stbl", t, b"stts")?;
    let mut samples: Vec<Sample> = Vec::with_capacity(n.min(1 << 20));
    let mut r = Reader::new(stts.body, *b"stts", t);
    r.version_flags()?;
    let entries = r.entry_count(8)?;
    let mut dts = 0u64;
    for _ in 0..entries {
        let count = r.u32()? as usize;
        let delta = r.u32()?;
        if count > n - samples.len() {
            return Err(Error::malformed(
                b"stts",
                t,
                format!("describes more samples than the {n} in the sample size table"),
            ));
        }
        for _ in 0..count {
            samples.push(Sample {
                offset: 0,
                size: 0,
                dts,
                duration: delta,
                cts_offset: 0,
                sync: true,
            });
            dts = dts
                .checked_add(u64::from(delta))
                .ok_or_else(|| Error::malformed(b"stts", t, "decode time overflows"))?;
        }
    }
    if samples.len() != n {
        return Err(Error::malformed(
            b"stts",
            t,
            format!(
                "describes {} samples but the sample size table has {n}",
                samples.len()
            ),
        ));
    }
    Ok(samples)
}

/// Composition offsets (ctts). Version 0 is unsigned by the letter of the spec,
/// but writers have long stored negative offsets in it; reading both as signed is
/// what every major demuxer does (ISO/IEC 14496-12 § 8.6.1.3). Entries past the last
/// sample are ignored.
fn apply_composition_offsets(stbl: &[u8], t: Option<u32>, samples: &mut [Sample]) -> Result<()> {
    let Some(ctts) = find(stbl, *b"stbl", t, b"ctts")? else {
        return Ok(());
    };
    let n = samples.len();
    let mut r = Reader::new(ctts.body, *b"ctts", t);
    r.version_flags()?;
    let entries = r.entry_count(8)?;
    let mut i = 0usize;
    for _ in 0..entries {
        let count = r.u32()? as usize;
        let offset = r.i32()?;
        let end = i.saturating_add(count).min(n);
        for s in &mut samples[i..end] {
            s.cts_offset = offset;
        }
        i = end;
    }
    Ok(())
}

/// Sync samples (stss); absent means every sample is a sync sample (§ 8.6.2.1).
fn mark_sync_samples(stbl: &[u8], t: Option<u32>, samples: &mut [Sample]) -> Result<()> {
    let Some(stss) = find(stbl, *b"stbl", t, b"stss")? else {
        return Ok(());
    };
    let n = samples.len();
    for s in samples.iter_mut() {
        s.sync = false;
    }
    let mut r = Reader::new(stss.body, *b"stss", t);
    r.version_flags()?;
    let entries = r.entry_count(4)?;
    for _ in 0..entries {
        let number = r.u32()? as usize;
        match number.checked_sub(1).and_then(|i| samples.get_mut(i)) {
            Some(s) => s.sync = true,
            None => {
                return Err(Error::malformed(
                    b"stss",
                    t,
                    format!("sync sample number {number} is outside 1..={n}"),
                ))
            }
        }
    }
    Ok(())
}

struct Sizes<'a> {
    count: usize,
    fixed: u32,
    table: &'a [u8],
    field_bits: u8,
}

impl Sizes<'_> {
    fn get(&self, i: usize) -> u32 {
        if self.fixed != 0 {
            return self.fixed;
        }
        // Indices are < count, and the table was checked to hold count entries.
        match self.field_bits {
            32 => {
                let b = &self.table[i * 4..i * 4 + 4];
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            }
            16 => {
                let b = &self.table[i * 2..i * 2 + 2];
                u32::from(u16::from_be_bytes([b[0], b[1]]))
            }
            8 => u32::from(self.table[i]),
            _ => {
                let b = self.table[i / 2];
                u32::from(if i.is_multiple_of(2) { b >> 4 } else { b & 0xf })
            }
        }
    }
}

/// Sample sizes: `stsz` (§ 8.7.3.2) or, without it, the compact `stz2` (§ 8.7.3.3).
/// Their sample count is the track's; it is checked against the limit before anything
/// is sized by it.
fn parse_sizes<'a>(
    stbl: &'a [u8],
    t: Option<u32>,
    file_len: u64,
    limits: &Limits,
) -> Result<Sizes<'a>> {
    if let Some(stsz) = find(stbl, *b"stbl", t, b"stsz")? {
        return parse_stsz(stsz.body, t, file_len, limits);
    }
    if let Some(stz2) = find(stbl, *b"stbl", t, b"stz2")? {
        return parse_stz2(stz2.body, t, limits);
    }
    Err(Error::missing(b"stsz", t))
}

fn check_sample_count(fourcc: &[u8; 4], count: u64, t: Option<u32>, limits: &Limits) -> Result<()> {
    if count > limits.max_samples_per_track {
        return Err(Error::Limit {
            fourcc: FourCc(*fourcc),
            track: t,
            what: "sample count",
            value: count,
            limit: limits.max_samples_per_track,
        });
    }
    Ok(())
}

/// `stsz`: one size for every sample, or a table of 32-bit sizes.
fn parse_stsz<'a>(
    body: &'a [u8],
    t: Option<u32>,
    file_len: u64,
    limits: &Limits,
) -> Result<Sizes<'a>> {
    let mut r = Reader::new(body, *b"stsz", t);
    r.version_flags()?;
    let fixed = r.u32()?;
    let count = r.u32()?;
    check_sample_count(b"stsz", u64::from(count), t, limits)?;
    let count = count as usize;
    if fixed != 0 {
        // Every sample has the same size: the count is bounded by the file, since
        // all those bytes must be in it.
        if u64::from(fixed).saturating_mul(count as u64) > file_len {
            return Err(Error::malformed(
                b"stsz",
                t,
                format!("{count} samples of {fixed} bytes cannot fit in a {file_len}-byte file"),
            ));
        }
        return Ok(Sizes {
            count,
            fixed,
            table: &[],
            field_bits: 32,
        });
    }
    let table_len = count
        .checked_mul(4)
        .filter(|&l| l <= r.remaining())
        .ok_or_else(|| {
            Error::malformed(
                b"stsz",
                t,
                format!(
                    "sample count {count} needs more than the {} bytes the box holds",
                    r.remaining()
                ),
            )
        })?;
    Ok(Sizes {
        count,
        fixed: 0,
        table: r.bytes(table_len)?,
        field_bits: 32,
    })
}

/// `stz2`: a table of 4-, 8- or 16-bit sizes (4-bit sizes two to a byte).
fn parse_stz2<'a>(body: &'a [u8], t: Option<u32>, limits: &Limits) -> Result<Sizes<'a>> {
    let mut r = Reader::new(body, *b"stz2", t);
    r.version_flags()?;
    r.skip(3)?;
    let field_bits = r.u8()?;
    let count = r.u32()?;
    check_sample_count(b"stz2", u64::from(count), t, limits)?;
    let count = count as usize;
    let table_len = match field_bits {
        4 => count.div_ceil(2),
        8 => count,
        16 => count.saturating_mul(2),
        other => return Err(r.error(format!("field_size {other} is not 4, 8 or 16"))),
    };
    if table_len > r.remaining() {
        return Err(r.error(format!(
            "sample count {count} needs more than the box holds"
        )));
    }
    Ok(Sizes {
        count,
        fixed: 0,
        table: r.bytes(table_len)?,
        field_bits,
    })
}

/// Expands `stsc` over the chunk offsets (`stco`/`co64`) to give every sample its
/// file offset, and checks every sample lies inside the file (§ 8.7.4, § 8.7.5).
fn assign_offsets(
    stbl: &[u8],
    t: Option<u32>,
    file_len: u64,
    samples: &mut [Sample],
) -> Result<()> {
    let chunks = parse_chunk_offsets(stbl, t)?;
    let entries = parse_sample_to_chunk(stbl, t)?;
    let n = samples.len();
    let mut next = 0usize;
    for (e, &(_, per_chunk)) in entries.iter().enumerate() {
        let (first_chunk, last_chunk) = stsc_chunk_run(&entries, e, chunks.offsets.len(), t)?;
        for chunk in first_chunk..=last_chunk {
            if next >= n {
                break;
            }
            let offset = *chunks.offsets.get(chunk - 1).ok_or_else(|| {
                Error::malformed(
                    b"stsc",
                    t,
                    format!("chunk {chunk} has no offset in stco/co64"),
                )
            })?;
            next = place_chunk_samples(samples, next, per_chunk, offset, &chunks, t, file_len)?;
        }
    }
    if next != n {
        return Err(Error::malformed(
            b"stsc",
            t,
            format!("places {next} samples in chunks but the track has {n}"),
        ));
    }
    Ok(())
}

/// The chunks (numbered from 1) that `stsc` entry `e` covers, of `chunk_count` in the
/// track: from its first_chunk to just before the next entry's, the last entry to the
/// last chunk (§ 8.7.4). first_chunk must start at 1 and increase, and an entry that
/// covers any chunk must put samples in it.
fn stsc_chunk_run(
    entries: &[(u32, u32)],
    e: usize,
    chunk_count: usize,
    t: Option<u32>,
) -> Result<(usize, usize)> {
    let (first_chunk, per_chunk) = entries[e];
    let prev_first = if e == 0 { 0 } else { entries[e - 1].0 };
    if first_chunk == 0 || first_chunk <= prev_first || (e == 0 && first_chunk != 1) {
        return Err(Error::malformed(
            b"stsc",
            t,
            format!("entry {e} has first_chunk {first_chunk} out of order"),
        ));
    }
    let last_chunk = match entries.get(e + 1) {
        Some(&(f, _)) => f.saturating_sub(1) as usize,
        None => chunk_count,
    };
    if per_chunk == 0 && first_chunk as usize <= last_chunk {
        return Err(Error::malformed(
            b"stsc",
            t,
            format!("entry {e} has 0 samples per chunk"),
        ));
    }
    Ok((first_chunk as usize, last_chunk))
}

/// A track's chunk offsets and the box they came from (`stco` or `co64`), which errors
/// about a sample's position name.
struct ChunkOffsets {
    offsets: Vec<u64>,
    fourcc: &'static [u8; 4],
}

/// Chunk offsets: 32-bit `stco` or, without it, 64-bit `co64` (§ 8.7.5).
fn parse_chunk_offsets(stbl: &[u8], t: Option<u32>) -> Result<ChunkOffsets> {
    if let Some(stco) = find(stbl, *b"stbl", t, b"stco")? {
        let mut r = Reader::new(stco.body, *b"stco", t);
        r.version_flags()?;
        let n = r.entry_count(4)?;
        let mut offsets = Vec::with_capacity(n);
        for _ in 0..n {
            offsets.push(u64::from(r.u32()?));
        }
        return Ok(ChunkOffsets {
            offsets,
            fourcc: b"stco",
        });
    }
    if let Some(co64) = find(stbl, *b"stbl", t, b"co64")? {
        let mut r = Reader::new(co64.body, *b"co64", t);
        r.version_flags()?;
        let n = r.entry_count(8)?;
        let mut offsets = Vec::with_capacity(n);
        for _ in 0..n {
            offsets.push(r.u64()?);
        }
        return Ok(ChunkOffsets {
            offsets,
            fourcc: b"co64",
        });
    }
    Err(Error::missing(b"stco", t))
}

/// Sample-to-chunk entries (`stsc`, § 8.7.4) as (first_chunk, samples_per_chunk).
/// sample_description_index is skipped: only the first sample entry of `stsd` is used.
fn parse_sample_to_chunk(stbl: &[u8], t: Option<u32>) -> Result<Vec<(u32, u32)>> {
    let stsc = require(stbl, *b"stbl", t, b"stsc")?;
    let mut r = Reader::new(stsc.body, *b"stsc", t);
    r.version_flags()?;
    let n_entries = r.entry_count(12)?;
    let mut entries = Vec::with_capacity(n_entries);
    for _ in 0..n_entries {
        let first_chunk = r.u32()?;
        let per_chunk = r.u32()?;
        r.skip(4)?;
        entries.push((first_chunk, per_chunk));
    }
    Ok(entries)
}

/// Gives up to `per_chunk` samples from index `next` their offsets in the chunk at
/// `offset`: a chunk's samples are stored back to back (§ 8.7.4). Returns the index of
/// the next sample to place.
fn place_chunk_samples(
    samples: &mut [Sample],
    mut next: usize,
    per_chunk: u32,
    mut offset: u64,
    chunks: &ChunkOffsets,
    t: Option<u32>,
    file_len: u64,
) -> Result<usize> {
    for _ in 0..per_chunk {
        let Some(s) = samples.get_mut(next) else {
            break;
        };
        s.offset = offset;
        let end = offset.checked_add(u64::from(s.size));
        match end {
            Some(end) if end <= file_len => offset = end,
            _ => {
                return Err(Error::malformed(
                    chunks.fourcc,
                    t,
                    format!(
                        "sample {} at offset {offset} (+{} bytes) runs past the end of \
                         the file ({file_len} bytes): the file is truncated or the chunk \
                         offset is wrong",
                        next + 1,
                        s.size
                    ),
                ))
            }
        }
        next += 1;
    }
    Ok(next)
}

/// Refuses a track whose times pass [`MAX_TICKS`] (a hostile `stts`, `tfdt` or `elst`), so
/// that no later sum of times can overflow.
fn check_times(t: &Track) -> Result<()> {
    // Every sample: a fragment's `tfdt` can jump anywhere, forwards or back.
    let end = t.decode_end();
    let edits = [t.media_start, t.empty_delay, t.media_end.unwrap_or(0)]
        .iter()
        .map(|v| v.unsigned_abs())
        .max()
        .unwrap_or(0);
    let value = end.max(edits);
    if value > MAX_TICKS {
        return Err(Error::Limit {
            fourcc: FourCc(*b"trak"),
            track: Some(t.id),
            what: "time in ticks (decode times, durations, edits)",
            value,
            limit: MAX_TICKS,
        });
    }
    Ok(())
}

/// An edit list, resolved (ISO/IEC 14496-12 § 8.6.6), in the media timescale.
#[derive(Debug, Default, PartialEq, Eq)]
struct Edit {
    /// Media time of the first edit that plays media.
    media_start: i64,
    /// Length of the leading empty edits (a delayed start).
    empty_delay: i64,
    /// Media time where presentation ends, when the edits end before the media.
    media_end: Option<i64>,
    /// Said when edits after the first are not honoured as written.
    note: Option<String>,
}

/// Reads an edit list: leading empty edits delay the track, the first media edit says
/// where presentation starts, and media edits that continue it (the next one starting
/// where it ends) where it ends. A later edit that jumps (a splice) or pauses is not
/// honoured: presentation runs on through the media, and the note says so.
fn parse_elst(body: &[u8], t: Option<u32>, movie_ts: u32, media_ts: u32) -> Result<Edit> {
    let mut r = Reader::new(body, *b"elst", t);
    let (version, _) = r.version_flags()?;
    let entry_size = if version == 1 { 20 } else { 12 };
    let n = r.entry_count(entry_size)?;
    let to_media = |movie: u64| {
        (u128::from(movie) * u128::from(media_ts) / u128::from(movie_ts.max(1)))
            .min(i64::MAX as u128) as i64
    };
    let mut edit = Edit::default();
    let mut delay_movie: u64 = 0;
    let mut playing: Option<(i64, i64)> = None; // media start and end of the run so far
    let mut jumps = 0u32;
    for _ in 0..n {
        let (duration, media_time) = if version == 1 {
            (r.u64()?, r.i64()?)
        } else {
            (u64::from(r.u32()?), i64::from(r.i32()?))
        };
        let rate = r.i32()?;
        match (media_time, playing) {
            (-1, None) => delay_movie = delay_movie.saturating_add(duration),
            (m, _) if m < -1 => return Err(r.error(format!("media_time {m} is negative"))),
            (m, None) => {
                // Duration 0 is "to the end of the media" in a fragmented file's empty moov.
                let end = (duration > 0).then(|| m.saturating_add(to_media(duration)));
                playing = Some((m, end.unwrap_or(i64::MAX)));
            }
            (m, Some((start, end))) if m == end && rate == 0x1_0000 => {
                playing = Some((start, end.saturating_add(to_media(duration))));
            }
            (_, Some(_)) => jumps += 1,
        }
    }
    if let Some((start, end)) = playing {
        edit.media_start = start;
        edit.empty_delay = to_media(delay_movie);
        edit.media_end = (jumps == 0 && end < i64::MAX).then_some(end);
        if jumps > 0 {
            edit.note = Some(format!(
                "the edit list cuts or pauses {jumps} time(s) after its start; \
                 presentation runs from the start through the end of the media"
            ));
        }
    }
    Ok(edit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `elst` body, version 1: (segment_duration in the movie timescale, media_time).
    fn elst(entries: &[(u64, i64)]) -> Vec<u8> {
        let mut b = vec![1, 0, 0, 0];
        b.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for &(d, m) in entries {
            b.extend_from_slice(&d.to_be_bytes());
            b.extend_from_slice(&m.to_be_bytes());
            b.extend_from_slice(&0x1_0000u32.to_be_bytes());
        }
        b
    }

    #[test]
    fn edit_lists_as_editors_write_them() {
        // Movie timescale 1000, media 12800.
        let read = |e: &[(u64, i64)]| parse_elst(&elst(e), None, 1000, 12800).unwrap();
        // A trim: starts 0.3 s in, lasts 5 s.
        let trim = read(&[(5000, 3840)]);
        assert_eq!(
            (trim.media_start, trim.media_end),
            (3840, Some(3840 + 64000))
        );
        assert_eq!((trim.empty_delay, trim.note), (0, None));
        // A delayed start: 0.5 s of nothing, then the media from 0 to its end (duration 0).
        let delayed = read(&[(500, -1), (0, 0)]);
        assert_eq!((delayed.empty_delay, delayed.media_end), (6400, None));
        // Two edits that continue each other are one.
        let joined = read(&[(1000, 0), (1000, 12800)]);
        assert_eq!((joined.media_end, joined.note), (Some(25600), None));
        // A splice (a cut in the middle) is not honoured, and said.
        let splice = read(&[(1000, 0), (1000, 38400)]);
        assert_eq!((splice.media_start, splice.media_end), (0, None));
        assert!(splice.note.unwrap().contains("cuts or pauses 1 time"));
        // No media edit at all: nothing to do.
        assert_eq!(read(&[(500, -1)]), Edit::default());
        // Hostile: a negative media time other than -1, a count past the box.
        assert!(parse_elst(&elst(&[(1, -5)]), None, 1000, 12800).is_err());
        let mut short = elst(&[(1, 0)]);
        short[7] = 200;
        assert!(parse_elst(&short, None, 1000, 12800).is_err());
    }

    #[test]
    fn ac3_and_eac3_channels_from_their_boxes() {
        // dac3: 48 kHz, bsid 8, acmod 7 (3/2), LFE on: 5.1.
        assert_eq!(ac3_channels(&[0x10, 0x3d, 0xc0]), Some(6));
        // acmod 1 (mono), no LFE, as ffmpeg writes for a mono source.
        assert_eq!(ac3_channels(&[0x10, 0x08, 0x40]), Some(1));
        // dec3 from ffmpeg for a mono source: one substream, acmod 1.
        assert_eq!(eac3_channels(&[0x03, 0x00, 0x20, 0x02, 0x00]), Some(1));
        // acmod 7 + LFE: 5.1.
        assert_eq!(eac3_channels(&[0x03, 0x00, 0x20, 0x0f, 0x00]), Some(6));
        assert_eq!(eac3_channels(&[0x03, 0x00]), None);
    }

    #[test]
    fn channel_layouts_flac_and_alac() {
        let chan = |tag: u32, bitmap: u32, descriptions: u32, extra: usize| {
            let mut b = vec![0u8; 4];
            for w in [tag, bitmap, descriptions] {
                b.extend_from_slice(&w.to_be_bytes());
            }
            b.resize(b.len() + extra, 0);
            b
        };
        // kAudioChannelLayoutTag_Mono (100 << 16 | 1), _Stereo, _MPEG_5_1_A (121 << 16 | 6).
        assert_eq!(chan_channels(&chan(100 << 16 | 1, 0, 0, 0)), Some(1));
        assert_eq!(chan_channels(&chan(101 << 16 | 2, 0, 0, 0)), Some(2));
        assert_eq!(chan_channels(&chan(121 << 16 | 6, 0, 0, 0)), Some(6));
        // A bitmap of L R C LFE Ls Rs; three descriptions, all present.
        assert_eq!(chan_channels(&chan(0x1_0000, 0x3f, 0, 0)), Some(6));
        assert_eq!(chan_channels(&chan(0, 0, 3, 60)), Some(3));
        // Descriptions the box does not hold, no channels, a short box: nothing.
        assert_eq!(chan_channels(&chan(0, 0, 3, 59)), None);
        assert_eq!(chan_channels(&chan(0, 0, u32::MAX, 0)), None);
        assert_eq!(chan_channels(&chan(0x1_0000, 0, 0, 0)), None);
        assert_eq!(chan_channels(&[0; 15]), None);
        // dfLa: full box, STREAMINFO header, then 34 bytes with channels - 1 = 5.
        let mut dfla = vec![0, 0, 0, 0, 0x80, 0, 0, 34];
        dfla.extend_from_slice(&[0; 34]);
        dfla[8 + 12] = 0x0a; // 20-bit rate ends, then 101 (6 channels), bps bit
        assert_eq!(flac_channels(&dfla), Some(6));
        assert_eq!(flac_channels(&dfla[..20]), None);
        dfla[4] = 0x84; // not a STREAMINFO first
        assert_eq!(flac_channels(&dfla), None);
        // alac: full box, frameLength, version, depth, pb, mb, kb, numChannels 2.
        let alac = [0, 0, 0, 0, 0, 0, 16, 0, 0, 16, 40, 10, 14, 2];
        assert_eq!(alac_channels(&alac), Some(2));
        assert_eq!(alac_channels(&alac[..13]), None);
    }

    fn boxed(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(fourcc);
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn dolby_vision_boxes_required_in_dvh1_optional_elsewhere() {
        // Profile 8, level 6, RPU + BL, compatibility 1, then 18 reserved bytes.
        let mut record = vec![1, 0, 0x10, 0x35, 0x10];
        record.resize(24, 0);
        let dvvc = boxed(b"dvvC", &record);
        let dovi = parse_dovi(&dvvc, b"hvc1", Some(1)).unwrap().unwrap();
        assert_eq!((dovi.profile, dovi.level, dovi.compatibility), (8, 6, 1));
        // dvh1 needs its record; hvc1 does without.
        let err = parse_dovi(&[], b"dvh1", Some(1)).unwrap_err();
        assert!(err.to_string().contains("dvcC"), "{err}");
        assert_eq!(parse_dovi(&[], b"hvc1", Some(1)).unwrap(), None);
        assert!(parse_dovi(&[], b"dav1", Some(1)).is_err());
        assert_eq!(parse_dovi(&[], b"av01", Some(1)).unwrap(), None);
        // A record cut short: an error in dvh1, passed over in hvc1.
        let short = boxed(b"dvcC", &record[..4]);
        assert!(parse_dovi(&short, b"dvh1", Some(1)).is_err());
        assert_eq!(parse_dovi(&short, b"hvc1", Some(1)).unwrap(), None);
        // A box whose size runs past its parent is a malformed file either way.
        let mut broken = dvvc.clone();
        broken[3] = 0xff;
        assert!(parse_dovi(&broken, b"hvc1", Some(1)).is_err());
    }

    #[test]
    fn dolby_vision_video_range() {
        let dovi = |profile: u8, compatibility: u8| {
            let packed =
                (u32::from(profile) << 25) | (0b101 << 16) | (u32::from(compatibility) << 12);
            let mut r = vec![1, 0];
            r.extend_from_slice(&packed.to_be_bytes());
            DoviConfig::parse(&r).unwrap()
        };
        // Profile 5 is PQ whatever colr says.
        assert_eq!(dovi_transfer(Some(&dovi(5, 0)), Some(1)), Some(16));
        assert_eq!(dovi_transfer(Some(&dovi(5, 0)), None), Some(16));
        // Profile 8: the base layer's colr, else (or when unspecified) its compatibility id.
        assert_eq!(dovi_transfer(Some(&dovi(8, 4)), Some(18)), Some(18));
        assert_eq!(dovi_transfer(Some(&dovi(8, 4)), None), Some(18));
        assert_eq!(dovi_transfer(Some(&dovi(8, 1)), Some(2)), Some(16));
        assert_eq!(dovi_transfer(Some(&dovi(8, 1)), Some(16)), Some(16));
        assert_eq!(dovi_transfer(None, Some(16)), Some(16));
        assert_eq!(dovi_transfer(None, None), None);
    }

    #[test]
    fn chapter_references_are_read_leniently() {
        let tref = boxed(b"tref", &boxed(b"chap", &[0, 0, 0, 3, 0, 0, 0, 4, 9]));
        let moov = boxed(b"trak", &tref);
        assert_eq!(chapter_track_ids(&moov), vec![3, 4]);
        let mut broken = moov.clone();
        broken[11] = 0x7f; // tref size past the trak
        assert_eq!(chapter_track_ids(&broken), Vec::<u32>::new());
    }

    #[test]
    fn pixel_aspect_ratio_from_the_entry() {
        let entry = |children: &[u8]| {
            let mut body = vec![0u8; 78];
            body.extend_from_slice(children);
            boxed(b"avc1", &body)
        };
        let pasp = |h: u32, v: u32| {
            let mut b = h.to_be_bytes().to_vec();
            b.extend_from_slice(&v.to_be_bytes());
            boxed(b"pasp", &b)
        };
        assert_eq!(pixel_aspect_ratio(&entry(&pasp(4, 3))), Some((4, 3)));
        assert_eq!(pixel_aspect_ratio(&entry(&pasp(1, 1))), Some((1, 1)));
        assert_eq!(pixel_aspect_ratio(&entry(&[])), None);
        assert_eq!(pixel_aspect_ratio(&entry(&pasp(0, 1))), None);
        assert_eq!(pixel_aspect_ratio(&entry(&pasp(100, 1))), None);
        assert_eq!(pixel_aspect_ratio(&entry(&pasp(4, 3))[..90]), None);
        assert_eq!(pixel_aspect_ratio(&[0; 7]), None);
    }

    #[test]
    fn mp3_channels_from_the_frame_header() {
        // MPEG-1 Layer III, 64 kb/s, 48 kHz: mode 11 (single channel), 00 (stereo), 01
        // (joint stereo), 10 (dual channel).
        assert_eq!(mpeg_audio_channels([0xff, 0xfb, 0x54, 0xc4]), Some(1));
        assert_eq!(mpeg_audio_channels([0xff, 0xfb, 0x54, 0x04]), Some(2));
        assert_eq!(mpeg_audio_channels([0xff, 0xfb, 0x54, 0x44]), Some(2));
        assert_eq!(mpeg_audio_channels([0xff, 0xfb, 0x54, 0x84]), Some(2));
        // MPEG-2 (ID 0) and MPEG 2.5 headers.
        assert_eq!(mpeg_audio_channels([0xff, 0xf3, 0x54, 0xc4]), Some(1));
        assert_eq!(mpeg_audio_channels([0xff, 0xe3, 0x54, 0xc4]), Some(1));
        // No sync word, reserved version, reserved layer: the entry's count stands.
        assert_eq!(mpeg_audio_channels([0x00, 0xfb, 0x54, 0xc4]), None);
        assert_eq!(mpeg_audio_channels([0xff, 0xeb, 0x54, 0xc4]), None);
        assert_eq!(mpeg_audio_channels([0xff, 0xf9, 0x54, 0xc4]), None);
    }
}
