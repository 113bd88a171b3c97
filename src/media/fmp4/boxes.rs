//! Box framing for the writers: two helpers do all size handling.

/// Writes a box: reserves the 32-bit size, runs `body`, then patches the size.
/// Bodies here are headers and small tables, far below 4 GiB; media data goes
/// through [`mdat_header`] whose size is computed up front.
pub fn write_box(out: &mut Vec<u8>, fourcc: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(fourcc);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes a full box (ISO/IEC 14496-12 § 4.2): a box whose body starts with a
/// version byte and 24 bits of flags.
pub fn write_full_box(
    out: &mut Vec<u8>,
    fourcc: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    write_box(out, fourcc, |out| {
        out.extend_from_slice(&((u32::from(version) << 24) | (flags & 0x00ff_ffff)).to_be_bytes());
        body(out);
    });
}

/// The header of an `mdat` holding `payload_len` bytes: 8 bytes, or 16 with a
/// 64-bit size when the payload needs it.
pub fn mdat_header(payload_len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    if payload_len + 8 <= u64::from(u32::MAX) {
        out.extend_from_slice(&((payload_len + 8) as u32).to_be_bytes());
        out.extend_from_slice(b"mdat");
    } else {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(b"mdat");
        out.extend_from_slice(&(payload_len + 16).to_be_bytes());
    }
    out
}

pub fn u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The unity transformation matrix of `mvhd`/`tkhd` (ISO/IEC 14496-12 § 8.2.2.3).
pub fn unity_matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32(out, v);
    }
}

/// An ISO `mp4a` AudioSampleEntry (ISO/IEC 14496-12 § 12.2.3, version 0) with an
/// `esds` carrying `asc` (ISO/IEC 14496-14 § 5.6). Built fresh rather than copied,
/// because QuickTime sources use sound description versions 1 and 2 that some MSE
/// implementations refuse inside fMP4.
pub fn mp4a_sample_entry(channels: u16, sample_rate: u32, asc: &[u8]) -> Vec<u8> {
    let mut esds = Vec::with_capacity(48 + asc.len());
    write_full_box(&mut esds, b"esds", 0, 0, |out| {
        write_es_descriptor(out, asc)
    });
    audio_sample_entry(b"mp4a", channels, sample_rate, &esds)
}

/// A version 0 AudioSampleEntry (ISO/IEC 14496-12 § 12.2.3) of type `entry` holding the
/// source's configuration box as is: QuickTime sound descriptions (versions 1 and 2) are
/// rewritten in the ISO form fMP4 players expect, the configuration kept byte for byte.
/// The rate is 16.16 fixed point; rates above 65535 Hz are written as 0 (for AAC the
/// AudioSpecificConfig rules; Opus signals 48 kHz in `dOps`).
pub fn audio_sample_entry(
    entry: &[u8; 4],
    channels: u16,
    sample_rate: u32,
    config: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + config.len());
    write_box(&mut out, entry, |out| {
        out.extend_from_slice(&[0; 6]);
        u16(out, 1); // data_reference_index
        out.extend_from_slice(&[0; 8]);
        u16(out, channels.max(1));
        u16(out, 16); // samplesize
        u32(out, 0);
        u32(
            out,
            if sample_rate <= 0xffff {
                sample_rate << 16
            } else {
                0
            },
        );
        out.extend_from_slice(config);
    });
    out
}

/// ES_Descriptor with DecoderConfigDescriptor (AAC, audio stream) and
/// SLConfigDescriptor (ISO/IEC 14496-1 § 7.2.6.5, § 7.2.6.6, § 7.3.2.3).
fn write_es_descriptor(out: &mut Vec<u8>, asc: &[u8]) {
    let mut dsi = Vec::new();
    descriptor(&mut dsi, 0x05, asc);
    let mut dcd_body = vec![0x40, 0x15]; // MPEG-4 audio; AudioStream, upStream 0, reserved 1
    dcd_body.extend_from_slice(&[0, 0, 0]); // bufferSizeDB
    dcd_body.extend_from_slice(&0u32.to_be_bytes()); // maxBitrate
    dcd_body.extend_from_slice(&0u32.to_be_bytes()); // avgBitrate
    dcd_body.extend_from_slice(&dsi);
    let mut es_body = vec![0, 1, 0]; // ES_ID 1, no flags
    descriptor(&mut es_body, 0x04, &dcd_body);
    descriptor(&mut es_body, 0x06, &[0x02]);
    descriptor(out, 0x03, &es_body);
}

/// A descriptor with its size in the 4-byte expandable form, as most writers emit it.
fn descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    let n = body.len() as u32;
    out.push(tag);
    out.extend_from_slice(&[
        0x80 | ((n >> 21) & 0x7f) as u8,
        0x80 | ((n >> 14) & 0x7f) as u8,
        0x80 | ((n >> 7) & 0x7f) as u8,
        (n & 0x7f) as u8,
    ]);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_box_patches_size() {
        let mut out = Vec::new();
        write_full_box(&mut out, b"mfhd", 0, 0, |o| u32(o, 7));
        assert_eq!(
            out,
            [0, 0, 0, 16, b'm', b'f', b'h', b'd', 0, 0, 0, 0, 0, 0, 0, 7]
        );
    }

    #[test]
    fn large_mdat_uses_64_bit_size() {
        assert_eq!(mdat_header(10).len(), 8);
        let h = mdat_header(u64::from(u32::MAX));
        assert_eq!(h.len(), 16);
        assert_eq!(&h[0..4], &[0, 0, 0, 1]);
    }
}
