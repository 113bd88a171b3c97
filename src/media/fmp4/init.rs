//! The init segment: `ftyp` + `moov` with one track and `mvex`/`trex`.

use super::boxes::{u16, u32, u64, unity_matrix, write_box, write_full_box};
use crate::media::model::{Codec, Track, TrackKind};

/// Track ID of the single track in every rendition we write.
pub(crate) const TRACK_ID: u32 = 1;

/// Builds `init.mp4` for one track. The sample entry is the source's (video) or a
/// clean rebuild (audio), so the decoder gets the source's configuration unchanged.
pub fn create_init_segment(track: &Track) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 + track.sample_entry.len());
    write_box(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso6");
        u32(o, 0);
        for brand in [b"iso6", b"cmfc", b"mp41"] {
            o.extend_from_slice(brand);
        }
    });
    write_box(&mut out, b"moov", |o| {
        write_mvhd(o);
        write_box(o, b"trak", |o| {
            write_tkhd(o, track);
            if let Some(edit) = presentation_edit(track) {
                write_box(o, b"edts", |o| write_elst(o, edit));
            }
            write_box(o, b"mdia", |o| {
                write_mdhd(o, track);
                write_hdlr(o, track.kind);
                write_box(o, b"minf", |o| {
                    match track.kind {
                        // vmhd flags must be 1 (ISO/IEC 14496-12 § 12.1.2.2).
                        TrackKind::Video => write_full_box(o, b"vmhd", 0, 1, |o| {
                            o.extend_from_slice(&[0; 8]);
                        }),
                        TrackKind::Audio => write_full_box(o, b"smhd", 0, 0, |o| u32(o, 0)),
                    }
                    write_box(o, b"dinf", |o| {
                        write_full_box(o, b"dref", 0, 0, |o| {
                            u32(o, 1);
                            // Flag 1: the media is in the same file (§ 8.7.2.2).
                            write_full_box(o, b"url ", 0, 1, |_| {});
                        })
                    });
                    write_stbl(o, track);
                });
            });
        });
        write_box(o, b"mvex", |o| {
            write_full_box(o, b"trex", 0, 0, |o| {
                u32(o, TRACK_ID);
                u32(o, 1); // default_sample_description_index
                u32(o, 0);
                u32(o, 0);
                u32(o, 0);
            })
        });
    });
    out
}

/// Where presentation starts in the track's media, kept as an edit list in the init
/// segment (ISO/IEC 14496-12 § 8.6.6; segment_duration 0 = the whole fragmented track;
/// CMAF, ISO/IEC 23000-19 § 7.5.13, allows this one edit): AAC priming to skip, the
/// composition delay of B-frames, a trim point. Players that honour it (Chromium's MSE,
/// Safari, ffmpeg) shift audio and video alike, so they stay in sync; composition offsets
/// stay the source's, non-negative, which every demuxer reads the same way.
fn presentation_edit(track: &Track) -> Option<i64> {
    (track.media_start > 0).then_some(track.media_start)
}

fn write_elst(o: &mut Vec<u8>, media_time: i64) {
    write_full_box(o, b"elst", 1, 0, |o| {
        u32(o, 1);
        u64(o, 0);
        u64(o, media_time as u64);
        u32(o, 0x0001_0000); // media_rate 1.0
    });
}

fn write_mvhd(o: &mut Vec<u8>) {
    // Times and durations are 0: the init segment must not depend on the clock, and a
    // fragmented movie's duration comes from its fragments.
    write_full_box(o, b"mvhd", 0, 0, |o| {
        u32(o, 0);
        u32(o, 0);
        u32(o, 1000);
        u32(o, 0);
        u32(o, 0x0001_0000); // rate 1.0
        u16(o, 0x0100); // volume 1.0
        o.extend_from_slice(&[0; 10]);
        unity_matrix(o);
        o.extend_from_slice(&[0; 24]);
        u32(o, TRACK_ID + 1); // next_track_ID
    });
}

fn write_tkhd(o: &mut Vec<u8>, track: &Track) {
    // Flags 3: track_enabled | track_in_movie (§ 8.3.2.3).
    write_full_box(o, b"tkhd", 0, 3, |o| {
        u32(o, 0);
        u32(o, 0);
        u32(o, TRACK_ID);
        u32(o, 0);
        u32(o, 0); // duration
        o.extend_from_slice(&[0; 8]);
        u16(o, 0); // layer
        u16(o, 0); // alternate_group
        u16(
            o,
            if track.kind == TrackKind::Audio {
                0x0100
            } else {
                0
            },
        );
        u16(o, 0);
        // The source's matrix: a portrait phone video keeps its quarter turn.
        for m in track.matrix {
            o.extend_from_slice(&m.to_be_bytes());
        }
        u32(o, u32::from(track.width) << 16);
        u32(o, u32::from(track.height) << 16);
    });
}

fn write_mdhd(o: &mut Vec<u8>, track: &Track) {
    write_full_box(o, b"mdhd", 0, 0, |o| {
        u32(o, 0);
        u32(o, 0);
        u32(o, track.timescale);
        u32(o, 0);
        u16(o, pack_language(&track.language));
        u16(o, 0);
    });
}

/// ISO 639-2/T code packed as three 5-bit letters (§ 8.4.2.3).
fn pack_language(lang: &str) -> u16 {
    let b = lang.as_bytes();
    if b.len() != 3 || !b.iter().all(u8::is_ascii_lowercase) {
        return pack_language("und");
    }
    b.iter()
        .fold(0u16, |acc, &c| (acc << 5) | u16::from(c - 0x60))
}

fn write_hdlr(o: &mut Vec<u8>, kind: TrackKind) {
    let (handler, name): (&[u8; 4], &[u8]) = match kind {
        TrackKind::Video => (b"vide", b"VideoHandler\0"),
        TrackKind::Audio => (b"soun", b"SoundHandler\0"),
    };
    write_full_box(o, b"hdlr", 0, 0, |o| {
        u32(o, 0);
        o.extend_from_slice(handler);
        o.extend_from_slice(&[0; 12]);
        o.extend_from_slice(name);
    });
}

fn write_stbl(o: &mut Vec<u8>, track: &Track) {
    write_box(o, b"stbl", |o| {
        write_full_box(o, b"stsd", 0, 0, |o| {
            u32(o, 1);
            match &track.codec {
                Codec::Aac { asc } => o.extend_from_slice(&super::boxes::mp4a_sample_entry(
                    track.channels,
                    track.sample_rate,
                    asc,
                )),
                Codec::Audio { format, config } => {
                    o.extend_from_slice(&super::boxes::audio_sample_entry(
                        &format.entry(),
                        track.channels,
                        track.sample_rate,
                        config,
                    ))
                }
                _ => o.extend_from_slice(&track.sample_entry),
            }
        });
        // Empty tables: the samples live in the fragments (§ 8.8.1).
        write_full_box(o, b"stts", 0, 0, |o| u32(o, 0));
        write_full_box(o, b"stsc", 0, 0, |o| u32(o, 0));
        write_full_box(o, b"stsz", 0, 0, |o| {
            u32(o, 0);
            u32(o, 0);
        });
        write_full_box(o, b"stco", 0, 0, |o| u32(o, 0));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_packing() {
        // 'eng' = 0x15C7 (§ 8.4.2.3 example values).
        assert_eq!(pack_language("eng"), 0x15C7);
        assert_eq!(pack_language("und"), 0x55C4);
        assert_eq!(pack_language("EN"), 0x55C4);
    }
}
