//! The library's error type. Every variant names where the problem is (which box,
//! which track, which object) so one line is enough for the person who uploaded it.

use std::fmt;

/// A four-character code, printed as text (`moov`, `stsz`) for error messages.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    pub const fn new(code: &[u8; 4]) -> Self {
        FourCc(*code)
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{self}'")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error reading {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not an MP4 file: {0}")]
    NotMp4(String),
    #[error("truncated file: box '{fourcc}' at offset {offset} needs {needed} bytes but the file ends at {file_len}")]
    Truncated {
        fourcc: FourCc,
        offset: u64,
        needed: u64,
        file_len: u64,
    },
    #[error("malformed box '{fourcc}'{}: {reason}", track_suffix(*.track))]
    Malformed {
        fourcc: FourCc,
        track: Option<u32>,
        reason: String,
    },
    #[error("missing box '{fourcc}'{}", track_suffix(*.track))]
    MissingBox { fourcc: FourCc, track: Option<u32> },
    #[error("limit exceeded in '{fourcc}'{}: {what} is {value}, the limit is {limit}", track_suffix(*.track))]
    Limit {
        fourcc: FourCc,
        track: Option<u32>,
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("no usable track: {0}")]
    NoUsableTrack(String),
    /// Packaging settings out of range (segment duration, no input).
    #[error("invalid settings: {0}")]
    Settings(String),
    /// An input the packager recognises but cannot carry yet; the message says what to
    /// upload instead.
    #[error("unsupported input: {0}")]
    Unsupported(String),
    /// A signing key that cannot be read, made or written.
    #[error("signing key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("{input}: {source}")]
    InInput {
        input: String,
        #[source]
        source: Box<Error>,
    },
    /// A storage call failed. `class` is decided where the answer was read: not found and
    /// malformed requests are permanent; access denied, throttling, timeouts and 5xx are
    /// retryable (DESIGN.md "Publish protocol" 5: on S3 a missing key can answer 403, and a
    /// wrong IAM policy must end in the dead-letter queue, where it is seen).
    #[error("storage error for '{key}': {reason}")]
    Store {
        key: String,
        reason: String,
        class: RetryClass,
    },
    /// The object changed while it was being read (a ranged GET's `If-Match` on the
    /// ETag first seen failed): the work is superseded by the newer upload, whose own
    /// event brings it.
    #[error("'{key}' changed while it was read (a newer upload replaced it)")]
    SourceChanged { key: String },
    /// A conditional write found the object other than required (S3 answers 412 Precondition
    /// Failed, or 409 ConditionalRequestConflict when two conditional writes race): another
    /// writer got there first. The caller reads again and decides again; out of attempts,
    /// it is retryable (the event comes back and starts from a fresh read).
    #[error("'{key}' was changed by another writer ({condition} no longer holds)")]
    PreconditionFailed { key: String, condition: String },
    /// The work stopped before the invocation's deadline (a Lambda function's timeout), with
    /// what it wrote kept: the retry writes only what is missing.
    #[error("stopped before the invocation's deadline, {0}; the retry resumes")]
    OutOfTime(String),
    #[error("unreadable event: {0}")]
    Event(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("title manifest '{key}': {reason}")]
    TitleManifest { key: String, reason: String },
    #[error("CDN: {reason}")]
    Cdn { reason: String, class: RetryClass },
    /// A queue (SQS) call failed: always retryable (the message stays on the queue).
    #[error("queue: {0}")]
    Queue(String),
    /// The transcoding stage (ffmpeg) failed: permanent when ffmpeg refused the input,
    /// retryable when it was missing, timed out or was killed.
    #[error("transcoding: {reason}")]
    Transcode { reason: String, class: RetryClass },
    /// Another source key already makes this title (`uploads/show.mp4` and `uploads/show.MOV`,
    /// or two spellings that normalise to the same NFC title).
    #[error("the title '{title}' is already made from '{owner}'; rename '{key}' or remove the other upload")]
    TitleTaken {
        title: String,
        owner: String,
        key: String,
    },
}

/// What to do with work that failed (DESIGN.md "Publish protocol" 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryClass {
    /// May pass: storage or network trouble, throttling, access denied.
    Retryable,
    /// Will fail the same way again: bad input, not found, bad configuration.
    Permanent,
    /// Overtaken: the source changed under the job; the newer upload's event does the work.
    Stale,
}

fn track_suffix(track: Option<u32>) -> String {
    match track {
        Some(id) => format!(" (track {id})"),
        None => String::new(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn malformed(fourcc: &[u8; 4], track: Option<u32>, reason: impl Into<String>) -> Self {
        Error::Malformed {
            fourcc: FourCc(*fourcc),
            track,
            reason: reason.into(),
        }
    }

    pub fn missing(fourcc: &[u8; 4], track: Option<u32>) -> Self {
        Error::MissingBox {
            fourcc: FourCc(*fourcc),
            track,
        }
    }

    /// A storage failure that may pass on a retry.
    pub fn store_retryable(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Store {
            key: key.into(),
            reason: reason.into(),
            class: RetryClass::Retryable,
        }
    }

    /// A storage failure that will not change on a retry (not found, malformed request).
    pub fn store_permanent(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Store {
            key: key.into(),
            reason: reason.into(),
            class: RetryClass::Permanent,
        }
    }

    /// The retry class of this error, however deep in the chain of inputs and reads. Set
    /// where the error was made for storage and CDN calls; fixed by the variant otherwise.
    pub fn class(&self) -> RetryClass {
        match self.innermost() {
            Error::Store { class, .. }
            | Error::Cdn { class, .. }
            | Error::Transcode { class, .. } => *class,
            Error::SourceChanged { .. } => RetryClass::Stale,
            // A read past the end or a bad argument is the input's fault; anything else
            // (a reset connection, EIO) may pass.
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidInput => {
                    RetryClass::Permanent
                }
                _ => RetryClass::Retryable,
            },
            Error::Queue(_) | Error::PreconditionFailed { .. } | Error::OutOfTime(_) => {
                RetryClass::Retryable
            }
            Error::NotMp4(_)
            | Error::Truncated { .. }
            | Error::Malformed { .. }
            | Error::MissingBox { .. }
            | Error::Limit { .. }
            | Error::NoUsableTrack(_)
            | Error::Settings(_)
            | Error::Unsupported(_)
            | Error::Key { .. }
            | Error::InInput { .. }
            | Error::Event(_)
            | Error::Config(_)
            | Error::TitleManifest { .. }
            | Error::TitleTaken { .. } => RetryClass::Permanent,
        }
    }

    /// Whether retrying the same work could succeed.
    pub fn is_retryable(&self) -> bool {
        self.class() == RetryClass::Retryable
    }

    /// The key of a source that changed under the reader ([`Error::SourceChanged`]),
    /// however deep in the chain of inputs and reads.
    pub fn changed_source(&self) -> Option<&str> {
        match self.innermost() {
            Error::SourceChanged { key } => Some(key),
            _ => None,
        }
    }

    /// Whether a conditional write lost to another writer ([`Error::PreconditionFailed`]).
    pub fn precondition_failed(&self) -> bool {
        matches!(self.innermost(), Error::PreconditionFailed { .. })
    }

    /// The error a storage read carried through a [`crate::media::source::Source`] (whose reads
    /// return `std::io::Error`), and through [`Error::InInput`]: what decides whether to
    /// retry.
    fn innermost(&self) -> &Error {
        match self {
            Error::InInput { source, .. } => source.innermost(),
            Error::Io { source, .. } => {
                match source.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
                    Some(inner) => inner.innermost(),
                    None => self,
                }
            }
            other => other,
        }
    }

    /// This error as the `std::io::Error` of a [`crate::media::source::Source`] read, keeping it
    /// whole inside, so that [`Error::is_retryable`] still sees what it was.
    pub fn into_io(self) -> std::io::Error {
        match self {
            // Already an I/O error: its kind (UnexpectedEof for a read past the end) is
            // what the demuxer reports on.
            Error::Io { source, .. } => source,
            other => std::io::Error::other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a storage read carried through a source's `std::io::Error` and the demuxer's
    /// `Error::Io` still decides whether to retry.
    #[test]
    fn retry_class_survives_a_trip_through_io_errors() {
        let through = |e: Error| Error::InInput {
            input: "s3://b/in.mp4".into(),
            source: Box::new(Error::Io {
                what: "moov".into(),
                source: e.into_io(),
            }),
        };
        let throttled = through(Error::store_retryable("in.mp4", "503 SlowDown"));
        assert!(throttled.is_retryable());
        assert_eq!(throttled.changed_source(), None);
        let denied = through(Error::store_retryable("in.mp4", "403 AccessDenied"));
        assert_eq!(denied.class(), RetryClass::Retryable);
        let missing = through(Error::store_permanent("in.mp4", "404 NoSuchKey"));
        assert_eq!(missing.class(), RetryClass::Permanent);
        let changed = through(Error::SourceChanged {
            key: "in.mp4".into(),
        });
        assert_eq!(changed.class(), RetryClass::Stale);
        assert_eq!(changed.changed_source(), Some("in.mp4"));
        // A plain I/O error keeps its kind: a read past the end is the input's fault.
        let eof = through(Error::Io {
            what: "x".into(),
            source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short"),
        });
        assert!(!eof.is_retryable());
        let reset = through(Error::Io {
            what: "x".into(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"),
        });
        assert!(reset.is_retryable());
    }
}
