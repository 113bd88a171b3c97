//! The Dolby Vision configuration of a video track: the DOVIDecoderConfigurationRecord of
//! a `dvcC` (profiles up to 7), `dvvC` (8 to 10) or `dvwC` (above 10) box, as "Dolby Vision
//! Streams Within the ISO Base Media File Format" (Dolby, v2.2, § 3.1-3.3) defines it, and
//! what HLS says about it ("Dolby Vision Streams Within the HTTP Live Streaming Format"
//! v2.0; Apple HLS authoring specification: `CODECS`, `SUPPLEMENTAL-CODECS`, `VIDEO-RANGE`).

/// Box types that carry the record, by profile.
pub const CONFIG_BOXES: [&[u8; 4]; 3] = [b"dvcC", b"dvvC", b"dvwC"];

/// The fields of a DOVIDecoderConfigurationRecord:
///
/// ```text
/// dv_version_major(8) dv_version_minor(8) dv_profile(7) dv_level(6)
/// rpu_present_flag(1) el_present_flag(1) bl_present_flag(1)
/// dv_bl_signal_compatibility_id(4) reserved(28) reserved(32)[4]
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoviConfig {
    pub version_major: u8,
    pub version_minor: u8,
    pub profile: u8,
    pub level: u8,
    pub rpu: bool,
    pub enhancement_layer: bool,
    pub base_layer: bool,
    /// dv_bl_signal_compatibility_id: what a player without Dolby Vision gets from the
    /// base layer: 0 none (profile 5), 1 HDR10 (PQ), 2 SDR (BT.709), 4 HLG, 6 BT.2100 PQ for
    /// Blu-ray.
    pub compatibility: u8,
}

/// Bytes up to and including dv_bl_signal_compatibility_id; the 20 reserved bytes after
/// it are not needed and not required (some writers shorten the box).
const MIN_LEN: usize = 5;

impl DoviConfig {
    /// Parses the record (the body of a `dvcC`/`dvvC`/`dvwC` box).
    pub fn parse(record: &[u8]) -> Result<DoviConfig, &'static str> {
        let [major, minor, b2, b3, b4] = match record.get(..MIN_LEN) {
            Some(&[a, b, c, d, e]) => [a, b, c, d, e],
            _ => return Err("Dolby Vision configuration record is shorter than 5 bytes"),
        };
        if major == 0 {
            return Err("Dolby Vision configuration record has dv_version_major 0");
        }
        let packed = u32::from_be_bytes([b2, b3, b4, 0]);
        Ok(DoviConfig {
            version_major: major,
            version_minor: minor,
            profile: (packed >> 25) as u8,
            level: ((packed >> 19) & 0x3f) as u8,
            rpu: packed & (1 << 18) != 0,
            enhancement_layer: packed & (1 << 17) != 0,
            base_layer: packed & (1 << 16) != 0,
            compatibility: ((packed >> 12) & 0xf) as u8,
        })
    }

    /// The codec string `<entry>.PP.LL`: profile and level as two decimal digits each
    /// (Dolby Vision in HLS § 2.1, e.g. `dvh1.05.06`, `dav1.10.09`).
    pub fn codec_string(&self, entry: &str) -> String {
        format!("{entry}.{:02}.{:02}", self.profile, self.level)
    }

    /// The compatibility brand a `SUPPLEMENTAL-CODECS` entry names after `/`, telling a
    /// player what the base layer is when Dolby Vision is not used (Apple HLS authoring
    /// specification; Dolby Vision in HLS § 2.2): `db1p` HDR10 (cross-compatibility 1,
    /// profile 8.1 or 10.1), `db2g` SDR (8.2, 10.2), `db4h` HLG (8.4, 10.4). Other ids have
    /// no HLS brand, so no supplemental codec is announced for them.
    pub fn compatibility_brand(&self) -> Option<&'static str> {
        match self.compatibility {
            1 => Some("db1p"),
            2 => Some("db2g"),
            4 => Some("db4h"),
            _ => None,
        }
    }

    /// The transfer characteristics (ITU-T H.273) a player shows: profiles 5 and 10.0 are
    /// always PQ (their IPTPQc2 / PQ base layer has no other meaning); otherwise that of the
    /// compatible base layer, when the compatibility id names one.
    pub fn transfer(&self) -> Option<u16> {
        if self.profile == 5 || (self.profile == 10 && self.compatibility == 0) {
            return Some(16);
        }
        match self.compatibility {
            1 | 6 => Some(16),
            2 => Some(1),
            4 => Some(18),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 24-byte record: version 1.0, then profile, level, rpu/el/bl flags, compatibility.
    fn record(profile: u8, level: u8, flags: u8, compatibility: u8) -> Vec<u8> {
        let packed = (u32::from(profile) << 25)
            | (u32::from(level) << 19)
            | (u32::from(flags) << 16)
            | (u32::from(compatibility) << 12);
        let mut r = vec![1, 0];
        r.extend_from_slice(&packed.to_be_bytes());
        r.resize(24, 0);
        r
    }

    #[test]
    fn profiles_5_8_and_10() {
        // Profile 5, level 6, RPU + base layer, no compatibility.
        let p5 = DoviConfig::parse(&record(5, 6, 0b101, 0)).unwrap();
        assert_eq!((p5.profile, p5.level, p5.compatibility), (5, 6, 0));
        assert!(p5.rpu && !p5.enhancement_layer && p5.base_layer);
        assert_eq!(p5.codec_string("dvh1"), "dvh1.05.06");
        assert_eq!((p5.compatibility_brand(), p5.transfer()), (None, Some(16)));
        // 8.1: HDR10 base layer.
        let p81 = DoviConfig::parse(&record(8, 7, 0b101, 1)).unwrap();
        assert_eq!(p81.codec_string("dvh1"), "dvh1.08.07");
        assert_eq!(
            (p81.compatibility_brand(), p81.transfer()),
            (Some("db1p"), Some(16))
        );
        // 8.4: HLG; 8.2: SDR.
        let p84 = DoviConfig::parse(&record(8, 4, 0b101, 4)).unwrap();
        assert_eq!(
            (p84.compatibility_brand(), p84.transfer()),
            (Some("db4h"), Some(18))
        );
        let p82 = DoviConfig::parse(&record(8, 4, 0b101, 2)).unwrap();
        assert_eq!(
            (p82.compatibility_brand(), p82.transfer()),
            (Some("db2g"), Some(1))
        );
        // 10.1 on AV1; the highest level (13) keeps two digits. 10.0 (dav1) is PQ.
        let p10 = DoviConfig::parse(&record(10, 13, 0b101, 1)).unwrap();
        assert_eq!(p10.codec_string("dav1"), "dav1.10.13");
        let p100 = DoviConfig::parse(&record(10, 5, 0b101, 0)).unwrap();
        assert_eq!(
            (p100.compatibility_brand(), p100.transfer()),
            (None, Some(16))
        );
        // Profile 7 (dual layer, Blu-ray compatibility 6): no HLS brand.
        let p7 = DoviConfig::parse(&record(7, 6, 0b111, 6)).unwrap();
        assert_eq!((p7.compatibility_brand(), p7.transfer()), (None, Some(16)));
    }

    #[test]
    fn short_or_zero_records_are_errors() {
        let full = record(8, 7, 0b101, 1);
        for len in 0..MIN_LEN {
            assert!(DoviConfig::parse(&full[..len]).is_err(), "{len}");
        }
        assert!(DoviConfig::parse(&full[..MIN_LEN]).is_ok());
        assert!(DoviConfig::parse(&[0; 24]).is_err());
    }
}
