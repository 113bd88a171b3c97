//! Bounded reading of ISO BMFF boxes from a byte slice (ISO/IEC 14496-12 § 4.2).
//!
//! Every read is checked against the slice it came from: a size field that points
//! past its parent is an error naming the box, never a panic or an over-read.

use crate::error::{Error, Result};

/// A cursor over one box body. Reads past the end fail with the box's fourcc.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    fourcc: [u8; 4],
    track: Option<u32>,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], fourcc: [u8; 4], track: Option<u32>) -> Self {
        Reader {
            data,
            pos: 0,
            fourcc,
            track,
        }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::malformed(&self.fourcc, self.track, reason)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "needs {n} more bytes at offset {} but the box has {} left",
                self.pos,
                self.remaining()
            )));
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.data[self.pos..];
        self.pos = self.data.len();
        out
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u24(&mut self) -> Result<u32> {
        let b = self.bytes(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    pub fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self) -> Result<i32> {
        Ok(self.u32()? as i32)
    }

    pub fn u64(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }

    pub fn fourcc(&mut self) -> Result<[u8; 4]> {
        let b = self.bytes(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// Full box header (ISO/IEC 14496-12 § 4.2): version and 24-bit flags.
    pub fn version_flags(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    /// A 32-bit entry count, checked against the bytes left: `count` entries of at
    /// least `entry_size` bytes each must fit in the box, so the count can size an
    /// allocation safely.
    pub fn entry_count(&mut self, entry_size: usize) -> Result<usize> {
        let count = self.u32()? as usize;
        let needed = count.checked_mul(entry_size);
        match needed {
            Some(n) if n <= self.remaining() => Ok(count),
            _ => Err(self.error(format!(
                "entry count {count} needs more than the {} bytes the box holds",
                self.remaining()
            ))),
        }
    }
}

/// One child box inside a parent's body.
#[derive(Debug, Clone, Copy)]
pub struct BoxRef<'a> {
    pub fourcc: [u8; 4],
    /// The whole box, header included.
    pub raw: &'a [u8],
    /// The body, after the (possibly 64-bit) size and the fourcc.
    pub body: &'a [u8],
}

/// A box header (ISO/IEC 14496-12 § 4.2): 32-bit size and type, a 64-bit size after them
/// when the 32-bit one is 1, and size 0 meaning "to the end of the container". The one
/// reader of headers, for top-level boxes in a file and children inside a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub fourcc: [u8; 4],
    /// The whole box, header included; `available` for size 0.
    pub size: u64,
    /// 8, or 16 with a 64-bit size.
    pub header_len: u64,
}

/// Why a header cannot be read (each caller names the place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than the 8 or 16 bytes the header needs.
    CutShort {
        fourcc: Option<[u8; 4]>,
        needed: u64,
    },
    /// A size smaller than the header itself.
    TooSmall { fourcc: [u8; 4], size: u64 },
}

impl BoxHeader {
    /// Reads the header at the start of `head` (up to 16 bytes of it), for a box that may
    /// extend over at most `available` bytes from its start.
    pub fn parse(head: &[u8], available: u64) -> std::result::Result<BoxHeader, HeaderError> {
        let (Some(size), Some(fourcc)) = (head.get(0..4), head.get(4..8)) else {
            return Err(HeaderError::CutShort {
                fourcc: None,
                needed: 8,
            });
        };
        let fourcc = [fourcc[0], fourcc[1], fourcc[2], fourcc[3]];
        let (size, header_len) = match u32::from_be_bytes([size[0], size[1], size[2], size[3]]) {
            0 => (available, 8),
            1 => {
                let large = head.get(8..16).ok_or(HeaderError::CutShort {
                    fourcc: Some(fourcc),
                    needed: 16,
                })?;
                let mut a = [0u8; 8];
                a.copy_from_slice(large);
                (u64::from_be_bytes(a), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header_len {
            return Err(HeaderError::TooSmall { fourcc, size });
        }
        Ok(BoxHeader {
            fourcc,
            size,
            header_len,
        })
    }
}

/// Iterates the child boxes of a body. A child whose size runs past the parent is
/// an error naming the child; a size of 0 means "to the end of the parent".
pub struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
    parent: [u8; 4],
    track: Option<u32>,
}

impl<'a> Boxes<'a> {
    pub fn new(data: &'a [u8], parent: [u8; 4], track: Option<u32>) -> Self {
        Boxes {
            data,
            pos: 0,
            parent,
            track,
        }
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<BoxRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let left = self.data.len() - self.pos;
        if left == 0 {
            return None;
        }
        // Fewer than 8 bytes cannot hold a box header. Some writers pad a parent with
        // zero bytes (e.g. a 32-bit terminator in QuickTime udta); accept that quietly.
        if left < 8 {
            let tail = &self.data[self.pos..];
            self.pos = self.data.len();
            if tail.iter().all(|&b| b == 0) {
                return None;
            }
            return Some(Err(Error::malformed(
                &self.parent,
                self.track,
                format!("{left} stray bytes at the end"),
            )));
        }
        let start = self.pos;
        let d = &self.data[start..];
        let header = match BoxHeader::parse(&d[..d.len().min(16)], left as u64) {
            Ok(h) => h,
            Err(e) => {
                self.pos = self.data.len();
                let (fourcc, reason) = match e {
                    HeaderError::CutShort { fourcc, .. } => (
                        fourcc.unwrap_or(self.parent),
                        "64-bit size header is cut short".to_string(),
                    ),
                    HeaderError::TooSmall { fourcc, size } => (
                        fourcc,
                        format!("box size {size} is smaller than its header"),
                    ),
                };
                return Some(Err(Error::malformed(&fourcc, self.track, reason)));
            }
        };
        let (fourcc, size) = (header.fourcc, header.size);
        if size > left as u64 {
            self.pos = self.data.len();
            return Some(Err(Error::malformed(
                &fourcc,
                self.track,
                format!(
                    "box size {size} does not fit in its parent '{}' ({left} bytes left)",
                    crate::error::FourCc(self.parent)
                ),
            )));
        }
        let header = header.header_len as usize;
        let size = size as usize;
        self.pos = start + size;
        Some(Ok(BoxRef {
            fourcc,
            raw: &self.data[start..start + size],
            body: &self.data[start + header..start + size],
        }))
    }
}

/// The first child with this fourcc, if any.
pub fn find<'a>(
    body: &'a [u8],
    parent: [u8; 4],
    track: Option<u32>,
    fourcc: &[u8; 4],
) -> Result<Option<BoxRef<'a>>> {
    for b in Boxes::new(body, parent, track) {
        let b = b?;
        if &b.fourcc == fourcc {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// The first child with this fourcc, or a "missing box" error.
pub fn require<'a>(
    body: &'a [u8],
    parent: [u8; 4],
    track: Option<u32>,
    fourcc: &[u8; 4],
) -> Result<BoxRef<'a>> {
    find(body, parent, track, fourcc)?.ok_or_else(|| Error::missing(fourcc, track))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_children_and_rejects_overlong_sizes() {
        let mut data = Vec::new();
        data.extend_from_slice(&12u32.to_be_bytes());
        data.extend_from_slice(b"free");
        data.extend_from_slice(&[1, 2, 3, 4]);
        data.extend_from_slice(&100u32.to_be_bytes());
        data.extend_from_slice(b"mdat");
        let mut it = Boxes::new(&data, *b"root", None);
        let first = it.next().unwrap().unwrap();
        assert_eq!(&first.fourcc, b"free");
        assert_eq!(first.body, &[1, 2, 3, 4]);
        let err = it.next().unwrap().unwrap_err().to_string();
        assert!(err.contains("mdat"), "{err}");
        assert!(it.next().is_none());
    }

    #[test]
    fn entry_count_is_bounded_by_the_box() {
        let mut data = Vec::new();
        data.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        data.extend_from_slice(&[0; 16]);
        let mut r = Reader::new(&data, *b"stsz", Some(1));
        let err = r.entry_count(4).unwrap_err().to_string();
        assert!(err.contains("stsz") && err.contains("track 1"), "{err}");
    }
}
