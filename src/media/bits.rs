//! A bit reader for codec configuration records (AudioSpecificConfig, `dec3`): most
//! significant bit first, every read checked against the end.

/// Reads bits most significant first; `None` past the end.
pub(crate) struct Bits<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Bits<'a> {
        Bits { bytes, at: 0 }
    }

    /// The next `n` (at most 32) bits as a number.
    pub(crate) fn take(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.bytes.get(self.at / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Some(v)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len() * 8)?;
        self.at = end;
        Some(())
    }

    pub(crate) fn flag(&mut self) -> Option<bool> {
        self.take(1).map(|b| b == 1)
    }

    /// Skips to the next byte boundary (byte_alignment()).
    pub(crate) fn align(&mut self) -> Option<()> {
        self.skip((8 - self.at % 8) % 8)
    }

    /// Bits not read yet.
    pub(crate) fn left(&self) -> usize {
        (self.bytes.len() * 8).saturating_sub(self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_msb_first_and_stops_at_the_end() {
        let mut b = Bits::new(&[0b1010_0000, 0xff]);
        assert_eq!(b.take(3), Some(0b101));
        assert_eq!(b.flag(), Some(false));
        assert_eq!(b.left(), 12);
        assert_eq!(b.skip(4), Some(()));
        assert_eq!(b.take(8), Some(0xff));
        assert_eq!(b.take(1), None);
        assert_eq!(b.skip(1), None);
    }
}
