//! The error type of the stream module.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[cfg(doc)]
use super::Stream;

/// Errors of this module. Messages say what went wrong and where.
#[derive(Debug)]
pub enum StreamError {
    /// An I/O operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Bad data on disk: a record or segment header that cannot be trusted.
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A record of a batch passed to [`Stream::append`] was rejected; nothing was written.
    InvalidRecord { index: usize, reason: String },
    /// The options passed to [`Stream::open`] are unusable.
    InvalidOptions { reason: String },
}

impl StreamError {
    /// True for bad data on disk (as opposed to an I/O failure or a rejected input).
    pub fn is_corruption(&self) -> bool {
        matches!(self, StreamError::Corrupt { .. })
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            StreamError::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "corrupt stream data in {} at byte offset {offset}: {reason}",
                path.display()
            ),
            StreamError::InvalidRecord { index, reason } => {
                write!(f, "record {index} of the batch was rejected: {reason}")
            }
            StreamError::InvalidOptions { reason } => {
                write!(f, "invalid stream options: {reason}")
            }
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(super) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StreamError {
    move |source| StreamError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
