//! What became of one record: the answer every event surface reports (CLI, Lambda, SQS).

use crate::error::Error;
use serde::Serialize;
use std::fmt;

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Published: the master now names `version`.
    Processed {
        title: String,
        version: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// `manifest.json` already said `complete` with this version: nothing written.
    AlreadyComplete { title: String, version: String },
    /// The event no longer describes the object (replaced or gone, or back after a removal).
    Stale { key: String, reason: String },
    /// Deliberately not work (test events, other prefixes, other event types …).
    Ignored { reason: String },
    /// The title's objects were deleted.
    Removed { title: String, objects: usize },
    /// Sent on to another queue, whose workers handle it: an upload of `size` bytes, past
    /// what this worker takes (the Lambda function hands long titles to the worker fleet).
    Routed {
        key: String,
        size: u64,
        queue: String,
    },
    /// The ladder's parts were sent to the fleet (`parts` messages); the worker that finishes
    /// the last publishes the title.
    FannedOut {
        title: String,
        version: String,
        parts: usize,
    },
    /// One part of a fanned-out ladder done (a chunk encoded, a share of the segments
    /// written): `done` of `of` parts of its stage are.
    PartEncoded {
        title: String,
        part: String,
        done: usize,
        of: usize,
    },
    /// `retryable`: storage or I/O trouble that may pass; otherwise the input is bad and
    /// will fail the same way again.
    Failed {
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        reason: String,
        retryable: bool,
    },
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }

    /// A failure that may pass on a later attempt (storage or I/O trouble).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Outcome::Failed {
                retryable: true,
                ..
            }
        )
    }

    /// The outcome's name as serialized (`processed`, `failed` …), for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Processed { .. } => "processed",
            Outcome::AlreadyComplete { .. } => "already_complete",
            Outcome::Stale { .. } => "stale",
            Outcome::Ignored { .. } => "ignored",
            Outcome::Removed { .. } => "removed",
            Outcome::Routed { .. } => "routed",
            Outcome::FannedOut { .. } => "fanned_out",
            Outcome::PartEncoded { .. } => "part_encoded",
            Outcome::Failed { .. } => "failed",
        }
    }

    pub(crate) fn failed(title: Option<&str>, err: &Error) -> Self {
        Outcome::Failed {
            title: title.map(String::from),
            reason: err.to_string(),
            retryable: err.is_retryable(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Processed {
                title,
                version,
                warnings,
            } => {
                write!(f, "processed: {title} (version {version})")?;
                for w in warnings {
                    write!(f, "; warning: {w}")?;
                }
                Ok(())
            }
            Outcome::AlreadyComplete { title, version } => {
                write!(f, "already complete: {title} (version {version})")
            }
            Outcome::Stale { key, reason } => write!(f, "stale: {key}: {reason}"),
            Outcome::Ignored { reason } => write!(f, "ignored: {reason}"),
            Outcome::Removed { title, objects } => {
                write!(f, "removed: {title} ({objects} objects)")
            }
            Outcome::FannedOut {
                title,
                version,
                parts,
            } => write!(f, "fanned out: {title}: version {version} in {parts} parts"),
            Outcome::PartEncoded {
                title,
                part,
                done,
                of,
            } => write!(f, "part done: {title}: {part} ({done} of {of} parts done)"),
            Outcome::Routed { key, size, queue } => {
                write!(f, "routed: {key} ({size} bytes) to {queue}")
            }
            Outcome::Failed {
                title,
                reason,
                retryable,
            } => {
                let kind = if *retryable { "retryable" } else { "permanent" };
                match title {
                    Some(t) => write!(f, "failed: {t}: {reason} ({kind})"),
                    None => write!(f, "failed: {reason} ({kind})"),
                }
            }
        }
    }
}
