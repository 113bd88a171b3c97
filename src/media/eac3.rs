//! The EC3SpecificBox (`dec3`) of an E-AC-3 track (ETSI TS 102 366 Annex F.6), read once
//! for the demuxer (channels) and the master playlist (`CHANNELS`, Dolby Atmos).

use crate::media::bits::Bits;

/// What a `dec3` body says about the audio a decoder outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ec3Config {
    /// Channels of the first independent substream (acmod and LFE) plus those its
    /// dependent substreams add (`chan_loc`): 7.1 is a 5.1 substream and a dependent one
    /// at the Lrs/Rrs pair, 8 channels.
    pub channels: u16,
    /// `complexity_index_type_a` when `flag_ec3_extension_type_a` is set: the stream
    /// carries Dolby Atmos as joint object coding (ETSI TS 103 420 § 8.3.2.2), and the index
    /// is what HLS writes as `CHANNELS="16/JOC"`.
    pub joc_complexity: Option<u8>,
}

/// Channels of an acmod (ETSI TS 102 366 table 4.3), before the LFE.
pub(crate) const ACMOD_CHANNELS: [u16; 8] = [2, 1, 2, 3, 3, 4, 4, 5];

/// Channels each `chan_loc` bit adds, most significant bit first (ETSI TS 102 366 table
/// F.6.1, the chanmap locations of table E.1.4 after the 5.1 ones): Lc/Rc, Lrs/Rrs, Cs, Ts,
/// Lsd/Rsd, Lw/Rw, Vhl/Vhr, Vhc, LFE2.
const CHAN_LOC_CHANNELS: [u16; 9] = [2, 2, 1, 1, 2, 2, 2, 1, 1];

impl Ec3Config {
    /// Parses a `dec3` body (after the box header):
    ///
    /// ```text
    /// data_rate(13) num_ind_sub(3)
    /// num_ind_sub + 1 times: fscod(2) bsid(5) reserved(1) asvc(1) bsmod(3) acmod(3)
    ///     lfeon(1) reserved(3) num_dep_sub(4), then chan_loc(9) or reserved(1)
    /// reserved(7) flag_ec3_extension_type_a(1) [complexity_index_type_a(8)]
    /// ```
    ///
    /// The extension is optional (TS 102 366 v1.4.1 § F.6, TS 103 420 § 8.3): a body that
    /// ends after the substreams has no Atmos. Channels are those of the first independent
    /// substream, the program a decoder plays by default.
    pub fn parse(dec3: &[u8]) -> Result<Ec3Config, &'static str> {
        let mut bits = Bits::new(dec3);
        let short = "dec3 ends inside its first independent substream";
        bits.take(13).ok_or(short)?;
        let independent = bits.take(3).ok_or(short)? + 1;
        let mut channels = 0u16;
        for i in 0..independent {
            let fields = bits.take(2 + 5 + 1 + 1 + 3);
            let acmod = bits.take(3);
            let lfe = bits.take(1);
            let _reserved = bits.take(3);
            let dependent = bits.take(4);
            let (Some(_), Some(acmod), Some(lfe), Some(dependent)) =
                (fields, acmod, lfe, dependent)
            else {
                return Err(if i == 0 {
                    short
                } else {
                    "dec3 ends inside an independent substream"
                });
            };
            let chan_loc = if dependent > 0 {
                bits.take(9)
                    .ok_or("dec3 ends inside a substream's chan_loc")?
            } else {
                bits.take(1).ok_or("dec3 ends inside a substream")?;
                0
            };
            if i == 0 {
                channels =
                    ACMOD_CHANNELS[acmod as usize] + lfe as u16 + chan_loc_channels(chan_loc);
            }
        }
        let joc_complexity = match bits.take(8) {
            Some(ext) if ext & 1 == 1 => bits.take(8).map(|c| c as u8),
            _ => None,
        };
        Ok(Ec3Config {
            channels,
            joc_complexity,
        })
    }
}

/// Channels the dependent substreams add at the locations of a 9-bit `chan_loc`.
fn chan_loc_channels(chan_loc: u32) -> u16 {
    CHAN_LOC_CHANNELS
        .iter()
        .enumerate()
        .filter(|(bit, _)| chan_loc & (1 << (8 - bit)) != 0)
        .map(|(_, n)| n)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dec3 body with one independent substream (48 kHz, bsid 16), `acmod`/`lfe`,
    /// `chan_loc` for its dependent substream (none when 0), and the Atmos extension.
    fn dec3(acmod: u8, lfe: u8, chan_loc: u16, joc: Option<u8>) -> Vec<u8> {
        let mut fields: Vec<(u32, usize)> = vec![(640, 13), (0, 3)];
        fields.extend([(0, 2), (16, 5), (0, 1), (0, 1), (0, 3)]);
        fields.extend([(u32::from(acmod), 3), (u32::from(lfe), 1), (0, 3)]);
        if chan_loc > 0 {
            fields.extend([(1, 4), (u32::from(chan_loc), 9)]);
        } else {
            fields.extend([(0, 4), (0, 1)]);
        }
        if let Some(c) = joc {
            fields.extend([(0, 7), (1, 1), (u32::from(c), 8)]);
        }
        let bits: String = fields.iter().map(|&(v, w)| format!("{v:0w$b}")).collect();
        bits.as_bytes()
            .chunks(8)
            .map(|c| {
                let s = std::str::from_utf8(c).unwrap();
                u8::from_str_radix(&format!("{s:0<8}"), 2).unwrap()
            })
            .collect()
    }

    #[test]
    fn channels_and_atmos() {
        // ffmpeg's mono dec3.
        let mono = Ec3Config::parse(&[0x03, 0x00, 0x20, 0x02, 0x00]).unwrap();
        assert_eq!((mono.channels, mono.joc_complexity), (1, None));
        assert_eq!(Ec3Config::parse(&dec3(7, 1, 0, None)).unwrap().channels, 6);
        // 7.1: 5.1 and a dependent substream at Lrs/Rrs (chan_loc bit 1 of 0-8).
        let seven_one = Ec3Config::parse(&dec3(7, 1, 1 << 7, None)).unwrap();
        assert_eq!(seven_one.channels, 8);
        // Atmos in a 5.1 bed, complexity index 16: CHANNELS="16/JOC".
        let atmos = Ec3Config::parse(&dec3(7, 1, 0, Some(16))).unwrap();
        assert_eq!((atmos.channels, atmos.joc_complexity), (6, Some(16)));
        // 7.1 bed with Atmos; and every location set: 5 + 1 + 14 = 20.
        let both = Ec3Config::parse(&dec3(7, 1, 1 << 7, Some(16))).unwrap();
        assert_eq!((both.channels, both.joc_complexity), (8, Some(16)));
        assert_eq!(
            Ec3Config::parse(&dec3(7, 1, 0x1ff, None)).unwrap().channels,
            20
        );
    }

    #[test]
    fn extension_flag_clear_or_cut_is_no_atmos() {
        let mut body = dec3(7, 1, 0, None);
        body.push(0x00);
        assert_eq!(Ec3Config::parse(&body).unwrap().joc_complexity, None);
        // Flag set but the index is missing.
        let mut cut = dec3(7, 1, 0, None);
        cut.push(0x01);
        assert_eq!(Ec3Config::parse(&cut).unwrap().joc_complexity, None);
    }

    #[test]
    fn short_or_inconsistent_bodies_are_errors_never_panics() {
        for len in 0..5 {
            assert!(Ec3Config::parse(&dec3(7, 1, 0, None)[..len]).is_err());
        }
        // num_ind_sub 7 (8 substreams) with bytes for one.
        let mut many = dec3(7, 1, 0, None);
        many[1] |= 0x07;
        assert!(Ec3Config::parse(&many).is_err());
        // A dependent substream whose chan_loc is cut off.
        let dependent = dec3(7, 1, 1 << 7, None);
        assert!(Ec3Config::parse(&dependent[..dependent.len() - 1]).is_err());
        for i in 0..dependent.len() {
            let mut bad = dependent.clone();
            bad[i] ^= 0xff;
            let _ = Ec3Config::parse(&bad);
        }
    }
}
