//! Fragmented MP4 input (ISO/IEC 14496-12 § 8.8): what browsers' MediaRecorder, OBS and
//! `ffmpeg -movflags frag_keyframe` write. The `moov` holds the tracks with empty sample
//! tables and, in `mvex`, each track's defaults (`trex`); the samples come in `moof` boxes,
//! each followed by its `mdat`. They are merged into the same [`Track`] samples a
//! progressive file gives, with the same bounds: every read inside its box, every count
//! checked against the bytes that hold it, every sample inside the file.

use super::reader::{find, Boxes, Reader};
use super::toplevel::{check_top_level_box_count, read_top_level_header, Limits};
use crate::error::{Error, FourCc, Result};
use crate::media::model::{Sample, Track};
use crate::media::source::{read_vec, Source};
use std::collections::HashMap;

/// `trex` (§ 8.8.3): a track's sample defaults for every fragment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleDefaults {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

/// `tfhd` flags (§ 8.8.7.1).
const BASE_DATA_OFFSET_PRESENT: u32 = 0x1;
const SAMPLE_DESCRIPTION_INDEX_PRESENT: u32 = 0x2;
const DEFAULT_SAMPLE_DURATION_PRESENT: u32 = 0x8;
const DEFAULT_SAMPLE_SIZE_PRESENT: u32 = 0x10;
const DEFAULT_SAMPLE_FLAGS_PRESENT: u32 = 0x20;
const DEFAULT_BASE_IS_MOOF: u32 = 0x2_0000;
/// `trun` flags (§ 8.8.8.1).
const DATA_OFFSET_PRESENT: u32 = 0x1;
const FIRST_SAMPLE_FLAGS_PRESENT: u32 = 0x4;
const SAMPLE_DURATION_PRESENT: u32 = 0x100;
const SAMPLE_SIZE_PRESENT: u32 = 0x200;
const SAMPLE_FLAGS_PRESENT: u32 = 0x400;
const SAMPLE_COMPOSITION_TIME_OFFSETS_PRESENT: u32 = 0x800;
/// sample_is_non_sync_sample in the sample flags (§ 8.8.3.1).
const SAMPLE_IS_NON_SYNC: u32 = 0x1_0000;

/// The `trex` defaults of every track an `mvex` names.
pub fn parse_mvex(mvex: &[u8]) -> Result<HashMap<u32, SampleDefaults>> {
    let mut out = HashMap::new();
    for b in Boxes::new(mvex, *b"mvex", None) {
        let b = b?;
        if &b.fourcc != b"trex" {
            continue;
        }
        let mut r = Reader::new(b.body, *b"trex", None);
        r.version_flags()?;
        let id = r.u32()?;
        r.skip(4)?; // default_sample_description_index
        let defaults = SampleDefaults {
            duration: r.u32()?,
            size: r.u32()?,
            flags: r.u32()?,
        };
        out.insert(id, defaults);
    }
    Ok(out)
}

/// What one walk over the fragments keeps per track: where its decode time has got to.
struct Walk<'a> {
    file_len: u64,
    limits: &'a Limits,
    defaults: &'a HashMap<u32, SampleDefaults>,
    /// Every track_ID of the `moov`, used or skipped: a fragment of a skipped track is
    /// passed over, one of an unknown track is an error.
    known: &'a [u32],
    next_dts: HashMap<u32, u64>,
}

/// Reads every `moof` of the file and appends its samples to `tracks`.
pub fn read_fragments(
    src: &dyn Source,
    limits: &Limits,
    tracks: &mut [Track],
    known: &[u32],
    defaults: &HashMap<u32, SampleDefaults>,
) -> Result<()> {
    let len = src.len();
    let mut walk = Walk {
        file_len: len,
        limits,
        defaults,
        known,
        next_dts: HashMap::new(),
    };
    let mut offset = 0u64;
    let mut seen = 0u32;
    while len.saturating_sub(offset) >= 8 {
        seen += 1;
        check_top_level_box_count(seen, limits)?;
        let header = read_top_level_header(src, offset, len, seen == 1)?;
        let end = offset
            .checked_add(header.size)
            .filter(|&end| end <= len)
            .ok_or(Error::Truncated {
                fourcc: FourCc(header.fourcc),
                offset,
                needed: header.size,
                file_len: len,
            })?;
        if &header.fourcc == b"moof" {
            let body_len = header.size - header.header_len;
            if body_len > limits.max_moov_bytes {
                return Err(Error::Limit {
                    fourcc: FourCc(*b"moof"),
                    track: None,
                    what: "moof size",
                    value: body_len,
                    limit: limits.max_moov_bytes,
                });
            }
            let body = read_vec(src, offset + header.header_len, body_len)?;
            walk.moof(&body, offset, tracks)?;
        }
        offset = end;
    }
    Ok(())
}

impl Walk<'_> {
    /// One `moof` (§ 8.8.4) starting at `moof_start` in the file.
    fn moof(&mut self, body: &[u8], moof_start: u64, tracks: &mut [Track]) -> Result<()> {
        // Without an explicit base or default-base-is-moof, the first track fragment's data
        // starts at the moof and each next one where the previous one's data ended
        // (§ 8.8.7.1).
        let mut previous_end: Option<u64> = None;
        for traf in Boxes::new(body, *b"moof", None) {
            let traf = traf?;
            if &traf.fourcc == b"traf" {
                previous_end = Some(self.traf(traf.body, moof_start, previous_end, tracks)?);
            }
        }
        Ok(())
    }

    /// One `traf` (§ 8.8.6); returns where its data ended.
    fn traf(
        &mut self,
        body: &[u8],
        moof_start: u64,
        previous_end: Option<u64>,
        tracks: &mut [Track],
    ) -> Result<u64> {
        let tfhd = super::reader::require(body, *b"traf", None, b"tfhd")?;
        let mut r = Reader::new(tfhd.body, *b"tfhd", None);
        let (_, flags) = r.version_flags()?;
        let id = r.u32()?;
        let t = Some(id);
        if !self.known.contains(&id) {
            return Err(Error::malformed(
                b"tfhd",
                t,
                format!("track_ID {id} is not a track of the moov"),
            ));
        }
        let explicit_base = if flags & BASE_DATA_OFFSET_PRESENT != 0 {
            Some(r.u64()?)
        } else {
            None
        };
        if flags & SAMPLE_DESCRIPTION_INDEX_PRESENT != 0 {
            r.skip(4)?;
        }
        let mut defaults = self.defaults.get(&id).copied().unwrap_or_default();
        if flags & DEFAULT_SAMPLE_DURATION_PRESENT != 0 {
            defaults.duration = r.u32()?;
        }
        if flags & DEFAULT_SAMPLE_SIZE_PRESENT != 0 {
            defaults.size = r.u32()?;
        }
        if flags & DEFAULT_SAMPLE_FLAGS_PRESENT != 0 {
            defaults.flags = r.u32()?;
        }
        let base = match (explicit_base, previous_end) {
            (Some(base), _) => base,
            (None, Some(end)) if flags & DEFAULT_BASE_IS_MOOF == 0 => end,
            _ => moof_start,
        };
        let mut dts = match find(body, *b"traf", t, b"tfdt")? {
            Some(tfdt) => {
                let mut r = Reader::new(tfdt.body, *b"tfdt", t);
                let (version, _) = r.version_flags()?;
                if version == 1 {
                    r.u64()?
                } else {
                    u64::from(r.u32()?)
                }
            }
            None => self.next_dts.get(&id).copied().unwrap_or(0),
        };
        let mut track = tracks.iter_mut().find(|tr| tr.id == id);
        let mut data_pos = base;
        for trun in Boxes::new(body, *b"traf", t) {
            let trun = trun?;
            if &trun.fourcc == b"trun" {
                let run = Run { base, defaults, t };
                // A skipped track's samples are read (to check them) but not kept.
                let mut scratch = Vec::new();
                let samples = match track.as_deref_mut() {
                    Some(track) => &mut track.samples,
                    None => &mut scratch,
                };
                (data_pos, dts) = self.trun(trun.body, &run, data_pos, dts, samples)?;
            }
        }
        self.next_dts.insert(id, dts);
        Ok(data_pos)
    }

    /// One `trun` (§ 8.8.8): appends its samples; returns the data position and decode
    /// time after them.
    fn trun(
        &self,
        body: &[u8],
        run: &Run,
        mut data_pos: u64,
        mut dts: u64,
        samples: &mut Vec<Sample>,
    ) -> Result<(u64, u64)> {
        let t = run.t;
        let mut r = Reader::new(body, *b"trun", t);
        let (version, flags) = r.version_flags()?;
        let fields = [
            SAMPLE_DURATION_PRESENT,
            SAMPLE_SIZE_PRESENT,
            SAMPLE_FLAGS_PRESENT,
            SAMPLE_COMPOSITION_TIME_OFFSETS_PRESENT,
        ]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count();
        let optional = 4
            * (usize::from(flags & DATA_OFFSET_PRESENT != 0)
                + usize::from(flags & FIRST_SAMPLE_FLAGS_PRESENT != 0));
        // The count is checked against the bytes that hold the entries before anything
        // is sized by it.
        let count = r.u32()? as usize;
        let needed = count
            .checked_mul(4 * fields)
            .and_then(|n| n.checked_add(optional));
        if needed.is_none_or(|n| n > r.remaining()) {
            return Err(r.error(format!(
                "sample count {count} needs more than the {} bytes the box holds",
                r.remaining()
            )));
        }
        if flags & DATA_OFFSET_PRESENT != 0 {
            data_pos = run
                .base
                .checked_add_signed(i64::from(r.i32()?))
                .ok_or_else(|| r.error("data_offset points before the start of the file"))?;
        }
        let first_flags = if flags & FIRST_SAMPLE_FLAGS_PRESENT != 0 {
            Some(r.u32()?)
        } else {
            None
        };
        let total = samples.len() as u64 + count as u64;
        if total > self.limits.max_samples_per_track {
            return Err(Error::Limit {
                fourcc: FourCc(*b"trun"),
                track: t,
                what: "sample count",
                value: total,
                limit: self.limits.max_samples_per_track,
            });
        }
        samples.reserve(count.min(1 << 16));
        for i in 0..count {
            let first = first_flags.filter(|_| i == 0);
            let (duration, size, sample_flags, cts_offset) =
                trun_entry(&mut r, (version, flags), run, first)?;
            let end = data_pos
                .checked_add(u64::from(size))
                .filter(|&end| end <= self.file_len)
                .ok_or_else(|| {
                    r.error(format!(
                        "sample {i} at offset {data_pos} ({size} bytes) lies past the end of the \
                         file ({} bytes)",
                        self.file_len
                    ))
                })?;
            samples.push(Sample {
                offset: data_pos,
                size,
                dts,
                duration,
                cts_offset,
                sync: sample_flags & SAMPLE_IS_NON_SYNC == 0,
            });
            data_pos = end;
            dts = dts
                .checked_add(u64::from(duration))
                .ok_or_else(|| r.error("decode time overflows"))?;
        }
        Ok((data_pos, dts))
    }
}

/// One `trun` sample entry (§ 8.8.8.2): duration, size, flags and composition offset, each
/// read when the run's flags say it is present, else the defaults (`first` overrides the
/// flags of the run's first sample).
fn trun_entry(
    r: &mut Reader<'_>,
    (version, flags): (u8, u32),
    run: &Run,
    first: Option<u32>,
) -> Result<(u32, u32, u32, i32)> {
    let duration = read_or(r, flags, SAMPLE_DURATION_PRESENT, run.defaults.duration)?;
    let size = read_or(r, flags, SAMPLE_SIZE_PRESENT, run.defaults.size)?;
    let sample_flags = match (flags & SAMPLE_FLAGS_PRESENT != 0, first) {
        (true, _) => r.u32()?,
        (false, Some(first)) => first,
        _ => run.defaults.flags,
    };
    let cts_offset = if flags & SAMPLE_COMPOSITION_TIME_OFFSETS_PRESENT != 0 {
        let raw = r.u32()?;
        // Version 0 offsets are unsigned, version 1 signed (§ 8.8.8.2); both are kept in
        // the i32 the model holds.
        if version == 0 {
            i32::try_from(raw).unwrap_or(i32::MAX)
        } else {
            raw as i32
        }
    } else {
        0
    };
    Ok((duration, size, sample_flags, cts_offset))
}

/// The fixed inputs of one `trun`.
struct Run {
    base: u64,
    defaults: SampleDefaults,
    t: Option<u32>,
}

fn read_or(r: &mut Reader<'_>, flags: u32, present: u32, default: u32) -> Result<u32> {
    if flags & present != 0 {
        r.u32()
    } else {
        Ok(default)
    }
}
