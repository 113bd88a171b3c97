//! The AudioSpecificConfig of an AAC track (ISO/IEC 14496-3 § 1.6.2.1), read once for
//! everyone who needs it: the demuxer (sampling rate and channels where the sample entry
//! says 0) and the CODECS string (the audio object type).

/// What the first fields of an AudioSpecificConfig say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// audioObjectType, the escape resolved (GetAudioObjectType(), § 1.6.2.1.1): 2 is
    /// AAC-LC, 5 HE-AAC (SBR), 29 HE-AAC v2 (PS).
    pub object_type: u32,
    /// The sampling frequency, from the table index or the explicit 24-bit value; `None`
    /// when the config ends before it.
    pub sample_rate: Option<u32>,
    /// From channelConfiguration (table 1.19): 1-6 as is, 7 is 7.1 (8 channels); `None`
    /// for 0 (the layout is in a program config element) or reserved values, or when the
    /// config ends before it.
    pub channels: Option<u16>,
}

/// ISO/IEC 14496-3 table 1.16, samplingFrequencyIndex 0-12.
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Reads bits most significant first; `None` past the end.
struct Bits<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.bytes.get(self.at / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Some(v)
    }
}

impl AudioSpecificConfig {
    /// Reads the object type (required) and, as far as the bytes go, the rate and channels.
    pub fn parse(asc: &[u8]) -> Result<AudioSpecificConfig, &'static str> {
        let mut bits = Bits { bytes: asc, at: 0 };
        let mut object_type = bits.take(5).ok_or("AudioSpecificConfig is empty")?;
        if object_type == 31 {
            object_type = 32
                + bits
                    .take(6)
                    .ok_or("AudioSpecificConfig ends inside the escaped audioObjectType")?;
        }
        if object_type == 0 {
            return Err("audioObjectType 0 (null object) is not a codec");
        }
        let sample_rate = match bits.take(4) {
            Some(0xf) => bits.take(24),
            Some(index) => RATES.get(index as usize).copied(),
            None => None,
        };
        let channels = match bits.take(4) {
            Some(c @ 1..=6) => Some(c as u16),
            Some(7) => Some(8),
            _ => None,
        };
        Ok(AudioSpecificConfig {
            object_type,
            sample_rate: sample_rate.filter(|r| *r > 0),
            channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(asc: &[u8]) -> (u32, Option<u32>, Option<u16>) {
        let c = AudioSpecificConfig::parse(asc).unwrap();
        (c.object_type, c.sample_rate, c.channels)
    }

    #[test]
    fn common_configs() {
        // AAC-LC, 44.1 kHz, stereo; AAC-LC, 48 kHz, mono.
        assert_eq!(parse(&[0x12, 0x10]), (2, Some(44100), Some(2)));
        assert_eq!(parse(&[0x11, 0x88]), (2, Some(48000), Some(1)));
        // HE-AAC with explicit SBR signalling: aot 5, 22.05 kHz core (index 7), stereo.
        assert_eq!(parse(&[0x2b, 0x92, 0x08, 0x00]), (5, Some(22050), Some(2)));
        // HE-AAC v2 (aot 29), 24 kHz core, mono (PS makes it stereo).
        assert_eq!(parse(&[0xeb, 0x09, 0x88, 0x00]).0, 29);
        // AAC-LC 48 kHz 5.1; 7.1 is channel configuration 7.
        assert_eq!(parse(&[0x11, 0xb0]), (2, Some(48000), Some(6)));
        assert_eq!(parse(&[0x11, 0xb8]), (2, Some(48000), Some(8)));
    }

    #[test]
    fn escaped_object_types_and_explicit_rates() {
        // 31 then 000010: 34; then 001010: 42 (USAC).
        assert_eq!(parse(&[0xf8, 0x40]).0, 34);
        assert_eq!(parse(&[0xf9, 0x40, 0x00]).0, 42);
        // Index 15: a 24-bit rate follows (here 44100 = 0x00AC44), then stereo.
        // 00010 1111 000000001010110001000100 0010 000
        assert_eq!(
            parse(&[0x17, 0x80, 0x56, 0x22, 0x10]),
            (2, Some(44100), Some(2))
        );
    }

    #[test]
    fn short_or_null_configs() {
        assert!(AudioSpecificConfig::parse(&[]).is_err());
        assert!(AudioSpecificConfig::parse(&[0xf8]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x00, 0x00]).is_err());
        // Object type only: rate and channels unknown.
        assert_eq!(parse(&[0x10]), (2, None, None));
    }
}
