//! `CODECS` attribute values (RFC 6381 § 3, ISO/IEC 14496-15 Annex E) and the
//! `LANGUAGE` tags (RFC 5646) that a master playlist carries.

use crate::media::aac::AudioSpecificConfig;
use crate::media::model::{AudioFormat, Codec};
use crate::Error;

/// The RFC 6381 codec string for one track, built from its configuration record.
///
/// - H.264: `avc1.PPCCLL` / `avc3.PPCCLL` (ISO/IEC 14496-15 Annex E.2).
/// - H.265: `hvc1.` / `hev1.` profile, compatibility, tier+level, constraints (Annex E.3).
/// - AAC: `mp4a.40.<audioObjectType>` (RFC 6381 § 3.3, ISO/IEC 14496-3 § 1.6.2.1).
///
/// Short or inconsistent records are an error naming the record, never a panic.
pub fn codecs_string(codec: &Codec) -> Result<String, Error> {
    match codec {
        Codec::H264 { fourcc, avcc } => avc_string(fourcc, avcc),
        Codec::H265 {
            fourcc,
            dovi: Some(dovi),
            ..
        } if matches!(fourcc, b"dvh1" | b"dvhe") => Ok(dovi.codec_string(fourcc_str(fourcc))),
        Codec::H265 { fourcc, hvcc, .. } => hevc_string(fourcc, hvcc),
        Codec::Vp9 { vpcc } => vp9_string(vpcc),
        Codec::Av1 {
            fourcc: [b'd', b'a', b'v', b'1'],
            dovi: Some(dovi),
            ..
        } => Ok(dovi.codec_string("dav1")),
        Codec::Av1 {
            fourcc: [b'a', b'v', b'0', b'1'],
            av1c,
            ..
        } => av1_string(av1c),
        Codec::Av1 { fourcc, .. } => Err(Error::malformed(
            fourcc,
            None,
            "not an AV1 sample entry with its configuration (av01, or dav1 with dvvC)",
        )),
        Codec::Aac { asc } => aac_string(asc),
        // RFC 6381 § 3.3 and the Apple HLS authoring specification's codec table: MP3 is
        // MPEG-4 audio object type 34; AC-3 and E-AC-3 are their sample entry types (ETSI
        // TS 102 366 Annex F); Opus, FLAC and ALAC likewise.
        Codec::Audio { format, .. } => Ok(match format {
            AudioFormat::Ac3 => "ac-3",
            AudioFormat::Eac3 => "ec-3",
            AudioFormat::Mp3 => "mp4a.40.34",
            AudioFormat::Opus => "opus",
            AudioFormat::Flac => "fLaC",
            AudioFormat::Alac => "alac",
        }
        .to_string()),
        // The sample entry type (RFC 6381 § 3.3). Subtitle renditions are WebVTT and
        // their codec is not listed in a variant's CODECS (RFC 8216 § 4.3.4.2 lists
        // media formats of the variant's segments, and WebVTT has no RFC 6381 name).
        Codec::Tx3g => Ok("tx3g".to_string()),
    }
}

/// `SUPPLEMENTAL-CODECS` (draft-pantos-hls-rfc8216bis § 4.4.6.2) for a Dolby Vision stream
/// whose base layer other players show: profile 8 in `hvc1`/`hev1` (`dvh1.08.LL/db1p`,
/// the entry type `dvh1` for `hvc1` and `dvhe` for `hev1`) and profile 10 in `av01`
/// (`dav1.10.LL/db1p`), the brand after `/` saying what the base layer is (Apple HLS
/// authoring specification; "Dolby Vision Streams Within the HTTP Live Streaming Format").
/// `None` for every other codec, for `dvh1`/`dvhe` entries (their CODECS already names Dolby
/// Vision) and for compatibility ids HLS has no brand for.
pub fn supplemental_codecs(codec: &Codec) -> Option<String> {
    let (entry, dovi) = match codec {
        Codec::H265 {
            fourcc,
            dovi: Some(dovi),
            ..
        } => match fourcc {
            b"hvc1" => ("dvh1", dovi),
            b"hev1" => ("dvhe", dovi),
            _ => return None,
        },
        Codec::Av1 {
            fourcc: [b'a', b'v', b'0', b'1'],
            dovi: Some(dovi),
            ..
        } => ("dav1", dovi),
        _ => return None,
    };
    let brand = dovi.compatibility_brand()?;
    Some(format!("{}/{brand}", dovi.codec_string(entry)))
}

/// A Dolby Vision HEVC sample entry type as text.
fn fourcc_str(fourcc: &[u8; 4]) -> &'static str {
    if fourcc == b"dvhe" {
        "dvhe"
    } else {
        "dvh1"
    }
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 § 5.3.3.1.2): byte 0 is
/// configurationVersion (1), bytes 1..4 are AVCProfileIndication,
/// profile_compatibility and AVCLevelIndication: exactly the three bytes that
/// Annex E.2 writes as hex after the sample entry type.
fn avc_string(fourcc: &[u8; 4], avcc: &[u8]) -> Result<String, Error> {
    let entry = match fourcc {
        b"avc1" => "avc1",
        b"avc3" => "avc3",
        _ => {
            return Err(Error::malformed(
                fourcc,
                None,
                "not an H.264 sample entry (avc1 or avc3)",
            ))
        }
    };
    let [version, profile, compat, level, ..] = *avcc else {
        return Err(Error::malformed(
            b"avcC",
            None,
            format!("record is {} bytes, needs at least 4", avcc.len()),
        ));
    };
    if version != 1 {
        return Err(Error::malformed(
            b"avcC",
            None,
            format!("configurationVersion is {version}, expected 1"),
        ));
    }
    Ok(format!("{entry}.{profile:02x}{compat:02x}{level:02x}"))
}

/// `vp09.PP.LL.DD` (VP Codec ISO Media File Format Binding § 7, the short form): profile,
/// level and bit depth, two digits each, from the `vpcC` body (after version and flags).
fn vp9_string(vpcc: &[u8]) -> Result<String, Error> {
    let [_, _, _, _, profile, level, depth_etc, ..] = *vpcc else {
        return Err(Error::malformed(b"vpcC", None, "record too short"));
    };
    Ok(format!(
        "vp09.{profile:02}.{level:02}.{:02}",
        depth_etc >> 4
    ))
}

/// `av01.P.LLT.DD` (AV1 Codec ISO Media File Format Binding, "Codecs Parameter String"):
/// seq_profile, seq_level_idx_0 (two digits), seq_tier_0 as M or H, and the bit depth
/// (8, or 10 / 12 from high_bitdepth and twelve_bit).
fn av1_string(av1c: &[u8]) -> Result<String, Error> {
    let [_, profile_level, flags, ..] = *av1c else {
        return Err(Error::malformed(b"av1C", None, "record too short"));
    };
    let profile = profile_level >> 5;
    let level = profile_level & 0x1f;
    let tier = if flags & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (flags & 0x40 != 0, flags & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    Ok(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
}

/// Length of the fixed part of an HEVCDecoderConfigurationRecord, before its
/// array count (ISO/IEC 14496-15 § 8.3.3.1.2).
const HVCC_FIXED_LEN: usize = 23;

/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 § 8.3.3.1.2):
/// byte 1 = general_profile_space(2) general_tier_flag(1) general_profile_idc(5),
/// bytes 2..6 = general_profile_compatibility_flags, bytes 6..12 =
/// general_constraint_indicator_flags, byte 12 = general_level_idc.
/// Annex E.3 gives the string layout.
fn hevc_string(fourcc: &[u8; 4], hvcc: &[u8]) -> Result<String, Error> {
    let entry = match fourcc {
        b"hvc1" => "hvc1",
        b"hev1" => "hev1",
        _ => {
            return Err(Error::malformed(
                fourcc,
                None,
                "not an H.265 sample entry (hvc1 or hev1)",
            ))
        }
    };
    if hvcc.len() < HVCC_FIXED_LEN {
        return Err(Error::malformed(
            b"hvcC",
            None,
            format!(
                "record is {} bytes, its fixed part alone is {HVCC_FIXED_LEN}",
                hvcc.len()
            ),
        ));
    }
    // Version 0 was written by muxers that followed drafts of the 14496-15 HEVC
    // amendment; the field layout is the same, so it is accepted.
    if hvcc[0] > 1 {
        return Err(Error::malformed(
            b"hvcC",
            None,
            format!("configurationVersion is {}, expected 1", hvcc[0]),
        ));
    }
    let profile_space = match hvcc[1] >> 6 {
        0 => "",
        1 => "A",
        2 => "B",
        _ => "C",
    };
    let tier = if hvcc[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile_idc = hvcc[1] & 0x1f;
    // Annex E.3: the 32 compatibility flags "in reverse bit order", in hex
    // without leading zeros (flag j is bit 31 - j of the stored word).
    let compat = u32::from_be_bytes([hvcc[2], hvcc[3], hvcc[4], hvcc[5]]).reverse_bits();
    let level_idc = hvcc[12];
    let mut s = format!("{entry}.{profile_space}{profile_idc}.{compat:X}.{tier}{level_idc}");
    // Annex E.3: the six constraint bytes, each as hex, dot-separated; trailing
    // zero bytes may be omitted (interior zeros stay).
    let constraints = &hvcc[6..12];
    let used = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        s.push_str(&format!(".{b:02X}"));
    }
    Ok(s)
}

/// `mp4a.40.<audioObjectType>`: RFC 6381 § 3.3 writes the object type of the
/// AudioSpecificConfig in decimal after the MPEG-4 Audio objectTypeIndication 0x40. HE-AAC
/// is `mp4a.40.5` and HE-AAC v2 `mp4a.40.29` (Apple HLS authoring specification), whether
/// the config signals SBR/PS hierarchically or backward compatibly; see
/// [`AudioSpecificConfig::codecs_object_type`].
fn aac_string(asc: &[u8]) -> Result<String, Error> {
    let config = AudioSpecificConfig::parse(asc)
        .map_err(|reason| Error::malformed(b"esds", None, reason))?;
    Ok(format!("mp4a.40.{}", config.codecs_object_type()))
}

/// The RFC 5646 tag for an `mdhd` ISO 639-2/T language code, for `LANGUAGE`
/// (RFC 8216 § 4.3.4.1 asks for RFC 5646 tags).
///
/// RFC 5646 § 2.2.1 wants the shortest ISO 639 code, so codes with an ISO 639-1
/// two-letter form map to it; the bibliographic (639-2/B) spellings that some
/// muxers write are accepted too. Other three-letter codes are valid RFC 5646
/// primary subtags and pass through. `und` (undetermined) and anything that is
/// not three ASCII letters give `None`: better no `LANGUAGE` than a wrong one.
pub fn language_tag(iso639_2: &str) -> Option<String> {
    let code = iso639_2.trim().to_ascii_lowercase();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_lowercase()) || code == "und" {
        return None;
    }
    let two = match code.as_str() {
        "ara" => "ar",
        "ben" => "bn",
        "bul" => "bg",
        "cat" => "ca",
        "ces" | "cze" => "cs",
        "cym" | "wel" => "cy",
        "dan" => "da",
        "deu" | "ger" => "de",
        "ell" | "gre" => "el",
        "eng" => "en",
        "est" => "et",
        "eus" | "baq" => "eu",
        "fas" | "per" => "fa",
        "fin" => "fi",
        "fra" | "fre" => "fr",
        "gle" => "ga",
        "glg" => "gl",
        "heb" => "he",
        "hin" => "hi",
        "hrv" => "hr",
        "hun" => "hu",
        "ind" => "id",
        "isl" | "ice" => "is",
        "ita" => "it",
        "jpn" => "ja",
        "kor" => "ko",
        "lav" => "lv",
        "lit" => "lt",
        "msa" | "may" => "ms",
        "nld" | "dut" => "nl",
        "nob" => "nb",
        "nno" => "nn",
        "nor" => "no",
        "pol" => "pl",
        "por" => "pt",
        "ron" | "rum" => "ro",
        "rus" => "ru",
        "slk" | "slo" => "sk",
        "slv" => "sl",
        "spa" => "es",
        "srp" => "sr",
        "swe" => "sv",
        "tam" => "ta",
        "tel" => "te",
        "tha" => "th",
        "tur" => "tr",
        "ukr" => "uk",
        "urd" => "ur",
        "vie" => "vi",
        "zho" | "chi" => "zh",
        _ => return Some(code),
    };
    Some(two.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264(fourcc: &[u8; 4], avcc: &[u8]) -> Codec {
        Codec::H264 {
            fourcc: *fourcc,
            avcc: avcc.to_vec(),
        }
    }

    fn h265(fourcc: &[u8; 4], hvcc: &[u8]) -> Codec {
        Codec::H265 {
            fourcc: *fourcc,
            hvcc: hvcc.to_vec(),
            dovi: None,
        }
    }

    /// A parsed DOVIDecoderConfigurationRecord: version 1.0, RPU and base layer present.
    fn dovi(profile: u8, level: u8, compatibility: u8) -> crate::media::model::DoviConfig {
        let packed = (u32::from(profile) << 25)
            | (u32::from(level) << 19)
            | (0b101 << 16)
            | (u32::from(compatibility) << 12);
        let mut record = vec![1, 0];
        record.extend_from_slice(&packed.to_be_bytes());
        record.resize(24, 0);
        crate::media::model::DoviConfig::parse(&record).unwrap()
    }

    fn dolby_vision(fourcc: &[u8; 4], profile: u8, level: u8, compatibility: u8) -> Codec {
        Codec::H265 {
            fourcc: *fourcc,
            hvcc: HVCC_MAIN_L31.to_vec(),
            dovi: Some(dovi(profile, level, compatibility)),
        }
    }

    #[test]
    fn dolby_vision_codecs_and_supplemental_codecs() {
        // Profile 5: CODECS names Dolby Vision itself, nothing supplemental.
        let p5 = dolby_vision(b"dvh1", 5, 6, 0);
        assert_eq!(codecs_string(&p5).unwrap(), "dvh1.05.06");
        assert_eq!(supplemental_codecs(&p5), None);
        assert_eq!(
            codecs_string(&dolby_vision(b"dvhe", 5, 9, 0)).unwrap(),
            "dvhe.05.09"
        );
        // Profile 8.1 / 8.4: HEVC in CODECS, Dolby Vision with its brand beside it.
        let p81 = dolby_vision(b"hvc1", 8, 7, 1);
        assert_eq!(codecs_string(&p81).unwrap(), "hvc1.1.6.L93.B0");
        assert_eq!(
            supplemental_codecs(&p81).as_deref(),
            Some("dvh1.08.07/db1p")
        );
        assert_eq!(
            supplemental_codecs(&dolby_vision(b"hev1", 8, 4, 4)).as_deref(),
            Some("dvhe.08.04/db4h")
        );
        // Compatibility 6 (Blu-ray) has no HLS brand: HEVC only.
        assert_eq!(supplemental_codecs(&dolby_vision(b"hvc1", 8, 4, 6)), None);
        // Profile 10.1 on AV1.
        let av1 = Codec::Av1 {
            fourcc: *b"av01",
            av1c: vec![0x81, 0x08, 0x4c, 0x00],
            dovi: Some(dovi(10, 9, 1)),
        };
        assert_eq!(codecs_string(&av1).unwrap(), "av01.0.08M.10");
        assert_eq!(
            supplemental_codecs(&av1).as_deref(),
            Some("dav1.10.09/db1p")
        );
        // No Dolby Vision: nothing supplemental.
        assert_eq!(supplemental_codecs(&h265(b"hvc1", HVCC_MAIN_L31)), None);
        // A dvh1 entry without its configuration is not a codec string.
        assert!(codecs_string(&h265(b"dvh1", HVCC_MAIN_L31)).is_err());
    }

    fn aac(asc: &[u8]) -> Codec {
        Codec::Aac { asc: asc.to_vec() }
    }

    /// avcC of an x264 High@3.1 stream: version, 0x64 (High), 0x00, 0x1f (3.1),
    /// lengthSizeMinusOne = 3, one SPS and one PPS (shortened).
    const AVCC_HIGH_31: &[u8] = &[
        0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x02,
        0x68, 0xeb,
    ];

    /// hvcC of an x265 Main@L3.1 stream (fixed part, then zero arrays):
    /// profile_space 0, tier 0, profile_idc 1; compatibility flags 1 and 2
    /// (0x60000000); constraints 0xb0 (progressive, interlaced=0,
    /// non-packed, frame-only) then zeros; level_idc 93.
    const HVCC_MAIN_L31: &[u8] = &[
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5d, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x00,
    ];

    #[test]
    fn h264_high_31() {
        assert_eq!(
            codecs_string(&h264(b"avc1", AVCC_HIGH_31)).unwrap(),
            "avc1.64001f"
        );
    }

    #[test]
    fn h264_avc3_and_baseline_constraint_flags() {
        // Constrained Baseline@3.0: profile 66, constraint_set0+1 (0xc0), level 30.
        let avcc = [0x01, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0x00];
        assert_eq!(codecs_string(&h264(b"avc3", &avcc)).unwrap(), "avc3.42c01e");
    }

    #[test]
    fn h264_short_or_bad_record_is_an_error() {
        for avcc in [&[][..], &[0x01], &[0x01, 0x64, 0x00]] {
            let err = codecs_string(&h264(b"avc1", avcc)).unwrap_err();
            assert!(err.to_string().contains("'avcC'"), "{err}");
        }
        let err = codecs_string(&h264(b"avc1", &[0x00, 0x64, 0x00, 0x1f])).unwrap_err();
        assert!(err.to_string().contains("configurationVersion"), "{err}");
        assert!(codecs_string(&h264(b"hvc1", AVCC_HIGH_31)).is_err());
    }

    #[test]
    fn hevc_main_l31() {
        assert_eq!(
            codecs_string(&h265(b"hvc1", HVCC_MAIN_L31)).unwrap(),
            "hvc1.1.6.L93.B0"
        );
        assert_eq!(
            codecs_string(&h265(b"hev1", HVCC_MAIN_L31)).unwrap(),
            "hev1.1.6.L93.B0"
        );
    }

    #[test]
    fn hevc_main10_high_tier_space_and_interior_zero_constraints() {
        let mut hvcc = HVCC_MAIN_L31.to_vec();
        // profile_space 1 (A), tier 1 (H), profile_idc 2 (Main 10), compat flag 2 only.
        hvcc[1] = (1 << 6) | (1 << 5) | 2;
        hvcc[2..6].copy_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        hvcc[6..12].copy_from_slice(&[0x90, 0x00, 0x00, 0x01, 0x00, 0x00]);
        hvcc[12] = 150; // level 5
        assert_eq!(
            codecs_string(&h265(b"hvc1", &hvcc)).unwrap(),
            "hvc1.A2.4.H150.90.00.00.01"
        );
        // All constraint bytes zero: no constraint part at all.
        hvcc[6..12].fill(0);
        assert_eq!(
            codecs_string(&h265(b"hvc1", &hvcc)).unwrap(),
            "hvc1.A2.4.H150"
        );
    }

    #[test]
    fn hevc_short_or_bad_record_is_an_error() {
        for len in [0, 1, 12, 13, 22] {
            let err = codecs_string(&h265(b"hvc1", &HVCC_MAIN_L31[..len])).unwrap_err();
            assert!(err.to_string().contains("'hvcC'"), "{err}");
        }
        let mut v2 = HVCC_MAIN_L31.to_vec();
        v2[0] = 2;
        assert!(codecs_string(&h265(b"hvc1", &v2)).is_err());
        assert!(codecs_string(&h265(b"avc1", HVCC_MAIN_L31)).is_err());
    }

    #[test]
    fn vp9_and_av1_strings() {
        // vpcC body: version/flags, profile 0, level 11 (1.1), 8 bits 4:2:0, BT.709.
        let vpcc = vec![1, 0, 0, 0, 0, 11, 0x82, 1, 1, 1, 0, 0];
        assert_eq!(
            codecs_string(&Codec::Vp9 { vpcc }).unwrap(),
            "vp09.00.11.08"
        );
        // av1C: main profile, level 8 (4.0), main tier, 10-bit.
        let av1c = vec![0x81, 0x08, 0x4c, 0x00];
        assert_eq!(
            codecs_string(&Codec::Av1 {
                fourcc: *b"av01",
                av1c,
                dovi: None
            })
            .unwrap(),
            "av01.0.08M.10"
        );
        let av1c = vec![0x81];
        assert!(codecs_string(&Codec::Av1 {
            fourcc: *b"av01",
            av1c,
            dovi: None
        })
        .is_err());
    }

    #[test]
    fn aac_object_types() {
        // AAC-LC, 44.1 kHz, stereo.
        assert_eq!(codecs_string(&aac(&[0x12, 0x10])).unwrap(), "mp4a.40.2");
        // HE-AAC with explicit SBR signalling: aot 5, 24 kHz core, stereo, 48 kHz ext.
        assert_eq!(
            codecs_string(&aac(&[0x2b, 0x92, 0x08, 0x00])).unwrap(),
            "mp4a.40.5"
        );
        // HE-AAC v2 (aot 29 = 0b11101).
        assert_eq!(
            codecs_string(&aac(&[0xeb, 0x09, 0x88, 0x00])).unwrap(),
            "mp4a.40.29"
        );
    }

    #[test]
    fn aac_backward_compatible_sbr_and_ps() {
        // AAC-LC 24 kHz mono, GASpecificConfig, 0x2b7 + aot 5 + sbrPresentFlag + 48 kHz,
        // then 0x548 + psPresentFlag (ISO/IEC 14496-3 § 1.6.5):
        // 00010 0110 0001 000 | 01010110111 00101 1 0011 | 10101001000 1
        let v2 = [0x13, 0x08, 0x56, 0xe5, 0x9d, 0x48, 0x80];
        assert_eq!(codecs_string(&aac(&v2)).unwrap(), "mp4a.40.29");
        // Without the PS part: HE-AAC.
        let he = [0x13, 0x08, 0x56, 0xe5, 0x98];
        assert_eq!(codecs_string(&aac(&he)).unwrap(), "mp4a.40.5");
        // ffmpeg's AAC-LC config says "no SBR" the same way (sbrPresentFlag 0).
        let lc = [0x11, 0x90, 0x56, 0xe5, 0x00];
        assert_eq!(codecs_string(&aac(&lc)).unwrap(), "mp4a.40.2");
    }

    #[test]
    fn aac_escaped_object_type() {
        // 31 (escape) then 6 bits 000010 → 32 + 2 = 34 (Layer-3 in MPEG-4 Audio):
        // 11111 000 | 010 xxxxx
        assert_eq!(codecs_string(&aac(&[0xf8, 0x40])).unwrap(), "mp4a.40.34");
        // Escape then 6 bits 001010 → 42 (USAC).
        assert_eq!(
            codecs_string(&aac(&[0xf9, 0x40, 0x00])).unwrap(),
            "mp4a.40.42"
        );
    }

    #[test]
    fn aac_bad_config_is_an_error() {
        assert!(codecs_string(&aac(&[])).is_err());
        assert!(codecs_string(&aac(&[0xf8])).is_err());
        assert!(codecs_string(&aac(&[0x00, 0x00])).is_err());
    }

    #[test]
    fn language_tags() {
        for (code, tag) in [
            ("eng", "en"),
            ("fra", "fr"),
            ("fre", "fr"),
            ("deu", "de"),
            ("ger", "de"),
            ("spa", "es"),
            ("ita", "it"),
            ("por", "pt"),
            ("jpn", "ja"),
            ("zho", "zh"),
            ("chi", "zh"),
            ("kor", "ko"),
            ("rus", "ru"),
            ("ara", "ar"),
            ("hin", "hi"),
            ("nld", "nl"),
            ("dut", "nl"),
            ("swe", "sv"),
            ("pol", "pl"),
            ("tur", "tr"),
            ("ENG", "en"),
            // No ISO 639-1 form: the 3-letter code is itself a valid RFC 5646 subtag.
            ("yue", "yue"),
            ("fil", "fil"),
        ] {
            assert_eq!(language_tag(code).as_deref(), Some(tag), "{code}");
        }
        for bad in ["und", "", "en", "engl", "e1g", "\0\0\0", "é"] {
            assert_eq!(language_tag(bad), None, "{bad:?}");
        }
    }
}
