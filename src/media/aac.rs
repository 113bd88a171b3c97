//! The AudioSpecificConfig of an AAC track (ISO/IEC 14496-3 § 1.6.2.1), read once for
//! everyone who needs it: the demuxer (sampling rate and channels) and the CODECS string
//! (the audio object type, HE-AAC and HE-AAC v2 included).
//!
//! HE-AAC can be signalled three ways (§ 1.6.5/§ 1.6.6):
//! - explicit hierarchical: audioObjectType 5 (SBR) or 29 (SBR + PS), then the
//!   extensionSamplingFrequency and the underlying object type (2, AAC-LC);
//! - explicit backward compatible: audioObjectType 2 and its GASpecificConfig, then the
//!   syncExtensionType 0x2b7 with extensionAudioObjectType 5 and sbrPresentFlag, and
//!   optionally the syncExtensionType 0x548 with psPresentFlag;
//! - implicit: a plain AAC-LC config whose bitstream carries SBR (and PS) extension
//!   payloads. Nothing in the config says so: only decoding the first frames would tell,
//!   and the demuxer never decodes. Such a track is announced as `mp4a.40.2`, which every
//!   HE-AAC decoder plays (the core is AAC-LC); a player simply starts without knowing it
//!   will get SBR.

use crate::media::bits::Bits;

/// What an AudioSpecificConfig says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// The first audioObjectType, the escape resolved (GetAudioObjectType(), § 1.6.2.1.1):
    /// 2 is AAC-LC, 5 HE-AAC (SBR), 29 HE-AAC v2 (PS) in hierarchical signalling.
    pub object_type: u32,
    /// The sampling frequency, from the table index or the explicit 24-bit value; `None`
    /// when the config ends before it. With SBR this is the core (half) rate.
    pub sample_rate: Option<u32>,
    /// The channels the config describes: channelConfiguration (table 1.19: 1-6 as is, 7 and
    /// 12 and 14 are 8 channels, 11 is 7), or for 0 the program_config_element of the
    /// GASpecificConfig (§ 4.4.1.1); `None` when neither says or the config ends first.
    /// This is the core's layout: with parametric stereo a mono core plays as stereo (see
    /// [`AudioSpecificConfig::output_channels`]).
    pub channels: Option<u16>,
    /// Spectral band replication is signalled explicitly (hierarchically or backward
    /// compatibly).
    pub sbr: bool,
    /// Parametric stereo is signalled explicitly.
    pub ps: bool,
    /// The output sampling frequency with SBR (extensionSamplingFrequency), when signalled.
    pub extension_sample_rate: Option<u32>,
}

/// ISO/IEC 14496-3 table 1.16, samplingFrequencyIndex 0-12.
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// syncExtensionType values of the backward-compatible signalling (§ 1.6.2.1).
const SYNC_EXTENSION_SBR: u32 = 0x2b7;
const SYNC_EXTENSION_PS: u32 = 0x548;

/// Object types whose config is a GASpecificConfig (§ 1.6.2.1, the first switch).
const GA_OBJECT_TYPES: [u32; 12] = [1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23];

/// What only the AudioSpecificConfig reads.
impl Bits<'_> {
    /// GetAudioObjectType() (§ 1.6.2.1.1): 5 bits, 31 escapes to 32 + 6 more bits.
    fn object_type(&mut self) -> Option<u32> {
        match self.take(5)? {
            31 => Some(32 + self.take(6)?),
            aot => Some(aot),
        }
    }

    /// A samplingFrequencyIndex, or the 24-bit samplingFrequency after index 15.
    fn sample_rate(&mut self) -> Option<u32> {
        match self.take(4)? {
            0xf => self.take(24),
            index => RATES.get(index as usize).copied(),
        }
    }
}

impl AudioSpecificConfig {
    /// Reads the object type (required) and, as far as the bytes go, the rate, channels
    /// and the explicit SBR/PS signalling. A config cut short keeps what was read.
    pub fn parse(asc: &[u8]) -> Result<AudioSpecificConfig, &'static str> {
        let mut bits = Bits::new(asc);
        if asc.is_empty() {
            return Err("AudioSpecificConfig is empty");
        }
        let object_type = bits
            .object_type()
            .ok_or("AudioSpecificConfig ends inside the escaped audioObjectType")?;
        if object_type == 0 {
            return Err("audioObjectType 0 (null object) is not a codec");
        }
        let sample_rate = bits.sample_rate();
        let channel_configuration = bits.take(4);
        let mut config = AudioSpecificConfig {
            object_type,
            sample_rate: sample_rate.filter(|r| *r > 0),
            channels: channel_configuration.and_then(configuration_channels),
            sbr: false,
            ps: false,
            extension_sample_rate: None,
        };
        let Some(channel_configuration) = channel_configuration else {
            return Ok(config);
        };
        let core = if object_type == 5 || object_type == 29 {
            config.sbr = true;
            config.ps = object_type == 29;
            config.extension_sample_rate = bits.sample_rate().filter(|r| *r > 0);
            match bits.object_type() {
                // ER BSAC carries an extensionChannelConfiguration here.
                Some(22) if bits.skip(4).is_none() => return Ok(config),
                Some(core) => core,
                None => return Ok(config),
            }
        } else {
            object_type
        };
        if !GA_OBJECT_TYPES.contains(&core) {
            return Ok(config);
        }
        let Some(pce_channels) = ga_specific_config(&mut bits, channel_configuration, core) else {
            return Ok(config);
        };
        if channel_configuration == 0 {
            config.channels = pce_channels.filter(|c| *c > 0);
        }
        if !config.sbr {
            backward_compatible_extension(&mut bits, core, &mut config);
        }
        Ok(config)
    }

    /// The object type the CODECS attribute names (RFC 6381 § 3.3 with the Apple HLS
    /// authoring specification's table): 29 when parametric stereo is signalled, 5 for
    /// SBR, otherwise the object type itself. Implicit signalling stays 2 (module comment).
    pub fn codecs_object_type(&self) -> u32 {
        if self.ps {
            29
        } else if self.sbr {
            5
        } else {
            self.object_type
        }
    }

    /// The channels a decoder outputs: parametric stereo turns a mono core into stereo
    /// (ISO/IEC 14496-3 § 8.6.4: PS is only defined for a single-channel core).
    pub fn output_channels(&self) -> Option<u16> {
        match self.channels {
            Some(1) if self.ps => Some(2),
            c => c,
        }
    }

    /// The rate a decoder outputs: the SBR extension rate when SBR is signalled (twice
    /// the core rate when the extension rate is missing), else the core rate.
    pub fn output_sample_rate(&self) -> Option<u32> {
        if self.sbr {
            self.extension_sample_rate
                .or_else(|| self.sample_rate.map(|r| r.saturating_mul(2)))
        } else {
            self.sample_rate
        }
    }
}

/// Channels of a channelConfiguration (table 1.19, as amended): `None` for 0 (the layout is
/// in a program_config_element) and for reserved values.
fn configuration_channels(configuration: u32) -> Option<u16> {
    match configuration {
        c @ 1..=6 => Some(c as u16),
        7 | 12 | 14 => Some(8),
        11 => Some(7),
        13 => Some(24),
        _ => None,
    }
}

/// Walks a GASpecificConfig (§ 4.4.1, table 4.1) so that what follows it can be read.
/// Returns `None` when the bits run out, else the channel count of its
/// program_config_element when channelConfiguration is 0 (`Some(None)` otherwise).
fn ga_specific_config(bits: &mut Bits<'_>, configuration: u32, aot: u32) -> Option<Option<u16>> {
    let _frame_length_flag = bits.take(1)?;
    if bits.flag()? {
        let _core_coder_delay = bits.take(14)?;
    }
    let extension_flag = bits.flag()?;
    let pce = if configuration == 0 {
        Some(program_config_element_channels(bits)?)
    } else {
        None
    };
    if aot == 6 || aot == 20 {
        let _layer_nr = bits.take(3)?;
    }
    if extension_flag {
        if aot == 22 {
            bits.skip(5 + 11)?; // numOfSubFrame, layer_length
        }
        if matches!(aot, 17 | 19 | 20 | 23) {
            let _resilience_flags = bits.take(3)?;
        }
        let _extension_flag3 = bits.take(1)?;
    }
    Some(pce)
}

/// The channel count of a program_config_element (§ 4.4.1.1, table 4.2): one per single
/// channel element, two per channel pair element, one per LFE. The element is read to its
/// end (byte alignment relative to the start of the config, then the comment bytes).
fn program_config_element_channels(bits: &mut Bits<'_>) -> Option<u16> {
    bits.skip(4 + 2 + 4)?; // element_instance_tag, object_type, sampling_frequency_index
    let front = bits.take(4)?;
    let side = bits.take(4)?;
    let back = bits.take(4)?;
    let lfe = bits.take(2)?;
    let assoc = bits.take(3)?;
    let cc = bits.take(4)?;
    for width in [4, 4] {
        if bits.flag()? {
            bits.take(width)?; // mono / stereo mixdown element number
        }
    }
    if bits.flag()? {
        bits.take(2 + 1)?; // matrix_mixdown_idx, pseudo_surround_enable
    }
    let mut channels = 0u16;
    for _ in 0..front + side + back {
        let is_cpe = bits.flag()?;
        bits.take(4)?;
        channels += if is_cpe { 2 } else { 1 };
    }
    bits.skip(4 * (lfe + assoc) as usize + 5 * cc as usize)?;
    bits.align()?;
    let comment_bytes = bits.take(8)?;
    bits.skip(8 * comment_bytes as usize)?;
    Some(channels + lfe as u16)
}

/// The backward-compatible explicit signalling after the core's config (§ 1.6.2.1, the
/// tail of AudioSpecificConfig()): syncExtensionType 0x2b7, extensionAudioObjectType 5,
/// sbrPresentFlag and the extension rate, then optionally 0x548 and psPresentFlag.
fn backward_compatible_extension(bits: &mut Bits<'_>, core: u32, config: &mut AudioSpecificConfig) {
    // Error-resilient object types carry an epConfig first; 2 and 3 add an
    // ErrorProtectionSpecificConfig this reader does not walk.
    if matches!(core, 17 | 19..=27) && !matches!(bits.take(2), Some(0 | 1)) {
        return;
    }
    if bits.left() < 16 || bits.take(11) != Some(SYNC_EXTENSION_SBR) {
        return;
    }
    if bits.object_type() != Some(5) || bits.flag() != Some(true) {
        return;
    }
    config.sbr = true;
    config.extension_sample_rate = bits.sample_rate().filter(|r| *r > 0);
    if bits.left() >= 12 && bits.take(11) == Some(SYNC_EXTENSION_PS) {
        config.ps = bits.flag() == Some(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(asc: &[u8]) -> (u32, Option<u32>, Option<u16>) {
        let c = AudioSpecificConfig::parse(asc).unwrap();
        (c.object_type, c.sample_rate, c.channels)
    }

    /// Packs (value, width) fields most significant bit first, zero-padded to a byte.
    fn pack(fields: &[(u32, usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0usize;
        for &(value, width) in fields {
            for i in (0..width).rev() {
                if at.is_multiple_of(8) {
                    out.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                *out.last_mut().unwrap() |= bit << (7 - at % 8);
                at += 1;
            }
        }
        out
    }

    /// AAC-LC at 24 kHz (index 6) with `channels`, an empty GASpecificConfig, then the
    /// backward-compatible SBR extension to 48 kHz (index 3), and PS when asked.
    fn backward_compatible(channels: u32, ps: Option<u32>) -> Vec<u8> {
        let mut fields = vec![(2, 5), (6, 4), (channels, 4), (0, 3)];
        fields.extend([(0x2b7, 11), (5, 5), (1, 1), (3, 4)]);
        if let Some(flag) = ps {
            fields.extend([(0x548, 11), (flag, 1)]);
        }
        pack(&fields)
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
        // Plain AAC-LC: no SBR, nothing else to say (implicit signalling stays hidden).
        let lc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert!(!lc.sbr && !lc.ps);
        assert_eq!(lc.codecs_object_type(), 2);
    }

    #[test]
    fn hierarchical_he_aac_signalling() {
        // aot 5, core 22.05 kHz stereo, extension index 4 (44.1 kHz), core aot 2.
        let he = AudioSpecificConfig::parse(&[0x2b, 0x92, 0x08, 0x00]).unwrap();
        assert!(he.sbr && !he.ps);
        assert_eq!(he.extension_sample_rate, Some(44100));
        assert_eq!(he.output_sample_rate(), Some(44100));
        assert_eq!(
            (he.codecs_object_type(), he.output_channels()),
            (5, Some(2))
        );
        // aot 29, core 24 kHz mono, extension 48 kHz: PS makes the mono core stereo.
        let v2 = AudioSpecificConfig::parse(&[0xeb, 0x09, 0x88, 0x00]).unwrap();
        assert!(v2.sbr && v2.ps);
        assert_eq!(v2.channels, Some(1));
        assert_eq!(
            (v2.codecs_object_type(), v2.output_channels()),
            (29, Some(2))
        );
        assert_eq!(v2.output_sample_rate(), Some(48000));
    }

    #[test]
    fn backward_compatible_he_aac_signalling() {
        let he = AudioSpecificConfig::parse(&backward_compatible(2, None)).unwrap();
        assert_eq!(he.object_type, 2);
        assert!(he.sbr && !he.ps);
        assert_eq!(he.codecs_object_type(), 5);
        assert_eq!(he.output_sample_rate(), Some(48000));
        assert_eq!(he.output_channels(), Some(2));

        let v2 = AudioSpecificConfig::parse(&backward_compatible(1, Some(1))).unwrap();
        assert!(v2.sbr && v2.ps);
        assert_eq!(
            (v2.codecs_object_type(), v2.output_channels()),
            (29, Some(2))
        );

        // psPresentFlag 0: SBR only.
        let no_ps = AudioSpecificConfig::parse(&backward_compatible(1, Some(0))).unwrap();
        assert_eq!(
            (no_ps.codecs_object_type(), no_ps.output_channels()),
            (5, Some(1))
        );

        // sbrPresentFlag 0: still AAC-LC.
        let off = pack(&[(2, 5), (6, 4), (2, 4), (0, 3), (0x2b7, 11), (5, 5), (0, 1)]);
        assert_eq!(
            AudioSpecificConfig::parse(&off)
                .unwrap()
                .codecs_object_type(),
            2
        );
        // Another sync word: ignored.
        let other = pack(&[(2, 5), (6, 4), (2, 4), (0, 3), (0x2b8, 11), (5, 5), (1, 1)]);
        assert!(!AudioSpecificConfig::parse(&other).unwrap().sbr);
    }

    #[test]
    fn channels_from_a_program_config_element() {
        // channelConfiguration 0: a PCE with a front SCE (centre), a front CPE, a back CPE
        // and one LFE is 5.1; a comment of 2 bytes follows the byte alignment.
        let mut fields = vec![(2, 5), (3, 4), (0, 4), (0, 3)];
        fields.extend([(0, 4), (1, 2), (3, 4)]); // tag, object type, rate index
        fields.extend([(2, 4), (0, 4), (1, 4), (1, 2), (0, 3), (0, 4)]);
        fields.extend([(0, 1), (0, 1), (0, 1)]); // no mixdowns
        fields.extend([(0, 1), (0, 4), (1, 1), (1, 4), (1, 1), (2, 4), (0, 4)]);
        let asc = pack(&fields);
        let mut asc_with_comment = asc.clone();
        asc_with_comment.extend([2, b'h', b'i']);
        assert_eq!(parse(&asc_with_comment), (2, Some(48000), Some(6)));
        // Cut inside the PCE: channels unknown, never a panic.
        assert_eq!(parse(&asc[..4]), (2, Some(48000), None));
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

    #[test]
    fn every_prefix_and_corruption_parses_without_panic() {
        let configs = [
            backward_compatible(1, Some(1)),
            vec![0xeb, 0x09, 0x88, 0x00],
            vec![0x17, 0x80, 0x56, 0x22, 0x10],
        ];
        for asc in &configs {
            for len in 0..=asc.len() {
                let _ = AudioSpecificConfig::parse(&asc[..len]);
            }
            for i in 0..asc.len() {
                let mut bad = asc.clone();
                bad[i] ^= 0xff;
                let _ = AudioSpecificConfig::parse(&bad);
            }
        }
        // channelConfiguration 0 with counts of 15 elements each and a 255-byte comment
        // that is not there: bounded, channels unknown.
        let huge = pack(&[
            (2, 5),
            (3, 4),
            (0, 4),
            (0, 3),
            (0, 10),
            (15, 4),
            (15, 4),
            (15, 4),
        ]);
        assert_eq!(parse(&huge).2, None);
    }
}
