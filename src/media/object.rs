//! Output objects: what the packager hands to a store. A body is a list of pieces,
//! either bytes made here (headers, playlists) or a byte range of an input file
//! (sample data), so a segment is written as "headers + copy" without the media
//! ever being held in memory.

use crate::error::{Error, Result};
use crate::media::source::Source;
use std::sync::Arc;

/// One part of an object body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Bytes(Vec<u8>),
    /// `len` bytes at `offset` of input number `input`.
    Source {
        input: usize,
        offset: u64,
        len: u64,
    },
}

/// An object body of known length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    pieces: Vec<Piece>,
    len: u64,
}

impl Body {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let mut b = Body::default();
        b.push_bytes(bytes);
        b
    }

    pub fn push_bytes(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len() as u64;
        self.pieces.push(Piece::Bytes(bytes));
    }

    /// Appends a source range, merging it with the previous piece when contiguous.
    pub fn push_source(&mut self, input: usize, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.len += len;
        if let Some(Piece::Source {
            input: i,
            offset: o,
            len: l,
        }) = self.pieces.last_mut()
        {
            if *i == input && *o + *l == offset {
                *l += len;
                return;
            }
        }
        self.pieces.push(Piece::Source { input, offset, len });
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends every piece of `other`.
    pub fn append(&mut self, other: Body) {
        for piece in other.pieces {
            match piece {
                Piece::Bytes(b) => self.push_bytes(b),
                Piece::Source { input, offset, len } => self.push_source(input, offset, len),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The bytes made here, when the body has no source ranges (playlists, init).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.pieces.as_slice() {
            [] => Some(&[]),
            [Piece::Bytes(b)] => Some(b),
            _ => None,
        }
    }

    /// Writes the body to `out`, reading source ranges in chunks of `buf.len()`.
    pub fn write_to(
        &self,
        sources: &[Arc<dyn Source>],
        out: &mut dyn std::io::Write,
        buf: &mut [u8],
    ) -> Result<()> {
        let io = |what: &str, e: std::io::Error| Error::Io {
            what: what.to_string(),
            source: e,
        };
        for piece in &self.pieces {
            match piece {
                Piece::Bytes(b) => out.write_all(b).map_err(|e| io("output", e))?,
                Piece::Source { input, offset, len } => {
                    let src = source(sources, *input)?;
                    let mut done = 0u64;
                    while done < *len {
                        let n = (*len - done).min(buf.len() as u64) as usize;
                        src.read_at(offset + done, &mut buf[..n])
                            .map_err(|e| io(src.name(), e))?;
                        out.write_all(&buf[..n]).map_err(|e| io("output", e))?;
                        done += n as u64;
                    }
                }
            }
        }
        Ok(())
    }

    /// The whole body in memory: for small objects and tests.
    pub fn to_vec(&self, sources: &[Arc<dyn Source>]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0).min(64 << 20));
        let mut buf = vec![0u8; 1 << 16];
        self.write_to(sources, &mut out, &mut buf)?;
        Ok(out)
    }
}

pub(crate) fn source(sources: &[Arc<dyn Source>], input: usize) -> Result<&Arc<dyn Source>> {
    sources
        .get(input)
        .ok_or_else(|| Error::store_permanent(format!("input #{input}"), "no such input"))
}

/// Content types (DESIGN.md "Object layout").
pub mod content_type {
    pub const PLAYLIST: &str = "application/vnd.apple.mpegurl";
    pub const MP4: &str = "video/mp4";
    pub const TS: &str = "video/mp2t";
    pub const JSON: &str = "application/json";
    /// W3C WebVTT § 7 (IANA registration).
    pub const WEBVTT: &str = "text/vtt";
    pub const JPEG: &str = "image/jpeg";
}

/// Cache policies: versioned objects never change; the master and the manifest do.
pub mod cache_control {
    pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    pub const MASTER: &str = "max-age=60";
    /// A playlist that grows while its title is published progressively (`event.m3u8`):
    /// players reload it about once a target duration (6 s by default), so the CDN keeps a
    /// version a second at most (DESIGN.md asks for half a segment; a second is the
    /// shortest non-zero `max-age`).
    pub const GROWING: &str = "max-age=1";
    pub const MANIFEST: &str = "no-cache";
}

/// The content type an object of this key gets when it is written: what a store
/// without metadata (a directory) reports for it.
pub fn content_type_for_key(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("m3u8") => content_type::PLAYLIST,
        Some("mp4" | "m4s" | "m4v" | "m4a" | "mov") => content_type::MP4,
        Some("ts") => content_type::TS,
        Some("json") => content_type::JSON,
        _ => "application/octet-stream",
    }
}

/// The cache policy an object of this key gets when it is written.
pub fn cache_control_for_key(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name == "master.m3u8" {
        cache_control::MASTER
    } else if name == "event.m3u8" {
        cache_control::GROWING
    } else if name == "manifest.json" {
        cache_control::MANIFEST
    } else if key.starts_with("v/") || key.contains("/v/") {
        cache_control::IMMUTABLE
    } else {
        "no-cache"
    }
}

/// An object to write, with its key relative to the title's output prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub body: Body,
}

/// A body read as a file: the bytes made here and ranges of `sources`, never copied whole.
/// One chunk of an upload is given to ffmpeg this way (an init segment and one fragment of
/// the upload's samples), and a rung stitched from its encoded chunks to the packager.
pub struct BodySource {
    body: Body,
    sources: Vec<Arc<dyn Source>>,
    /// Where each piece starts in the body.
    starts: Vec<u64>,
    name: String,
}

impl BodySource {
    pub fn new(body: Body, sources: Vec<Arc<dyn Source>>, name: String) -> BodySource {
        let mut starts = Vec::with_capacity(body.pieces.len());
        let mut at = 0u64;
        for piece in &body.pieces {
            starts.push(at);
            at += match piece {
                Piece::Bytes(b) => b.len() as u64,
                Piece::Source { len, .. } => *len,
            };
        }
        BodySource {
            body,
            sources,
            starts,
            name,
        }
    }
}

impl Source for BodySource {
    fn len(&self) -> u64 {
        self.body.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.body.len) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{}: read past the end", self.name),
            ));
        }
        let mut done = 0usize;
        let mut index = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        while done < buf.len() {
            let (Some(piece), Some(&start)) = (self.body.pieces.get(index), self.starts.get(index))
            else {
                break;
            };
            let within = offset + done as u64 - start;
            let out = &mut buf[done..];
            let n = match piece {
                Piece::Bytes(b) => {
                    let from = &b[usize::try_from(within).unwrap_or(usize::MAX).min(b.len())..];
                    let n = from.len().min(out.len());
                    out[..n].copy_from_slice(&from[..n]);
                    n
                }
                Piece::Source { input, offset, len } => {
                    let n = usize::try_from(len - within)
                        .unwrap_or(usize::MAX)
                        .min(out.len());
                    let src = self.sources.get(*input).ok_or_else(|| {
                        std::io::Error::other(format!("{}: no input #{input}", self.name))
                    })?;
                    src.read_at(offset + within, &mut out[..n])?;
                    n
                }
            };
            done += n;
            index += 1;
        }
        Ok(())
    }

    fn name(&self) -> &str {
        &self.name
    }
}
