//! Typed errors of cetrack's domain logic and store, and their one mapping to
//! canonical gRPC status codes with google.rpc details (`From<Error> for
//! tonic::Status`): the domain code returns these, only the edge sends them.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Most field violations one error lists; the last says how many more
/// there were.
pub const MAX_VIOLATIONS: usize = 50;

/// Most characters of a caller's value an error message repeats.
pub const MAX_ECHO: usize = 80;

/// Longest field path or description of one violation, in characters.
const MAX_VIOLATION_TEXT: usize = 300;

/// Most bytes of field paths and descriptions one error lists: an error
/// travels in HTTP/2 trailers (its details base64-encoded), which a client
/// accepts up to 16 KiB by default.
pub const MAX_VIOLATION_BYTES: usize = 6 * 1024;

/// Longest status message, in bytes (it travels percent-encoded).
const MAX_MESSAGE_BYTES: usize = 1024;

/// A caller's value as an error message repeats it: in backquotes, cut
/// after [`MAX_ECHO`] characters (saying how long it was).
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO) {
        None => format!("`{value}`"),
        Some((end, _)) => format!("`{}…` ({} bytes)", &value[..end], value.len()),
    }
}

/// `text` cut after `max` characters.
fn cut(mut text: String, max: usize) -> String {
    if let Some((end, _)) = text.char_indices().nth(max) {
        text.truncate(end);
        text.push('…');
    }
    text
}

/// What the violation that stands for those not listed says.
const MORE: &str = "more violations not listed";

/// `text` cut to at most `max` bytes (at a character boundary).
fn cut_bytes(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max.saturating_sub(3);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The violation that stands for `n` more not listed.
pub fn more_violations(n: usize) -> FieldViolation {
    FieldViolation::new(
        "request",
        format!("{n} {MORE} (at most {MAX_VIOLATIONS} are)"),
    )
}

/// One invalid field of a request: its full path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Full field path, e.g. `initiative.participants[0].organization.id`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    /// Each is cut after a few hundred characters.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: cut(field.into(), MAX_VIOLATION_TEXT),
            description: cut(description.into(), MAX_VIOLATION_TEXT),
        }
    }
}

/// Everything that can go wrong in a call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is malformed: every invalid field is listed.
    #[error("invalid request: {}", summarize(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The named resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The resource to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A concurrency conflict: the etag is stale.
    #[error("{0}")]
    Aborted(String),
    /// The system is not in a state that allows the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller did not say who it is.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The service cannot serve now (shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// A limit on what a service holds open at once was reached (streams);
    /// retrying later may succeed.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The store failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored data could not be read back.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// The first few violations, for the status message (the details list
/// them all).
fn summarize(violations: &[FieldViolation]) -> String {
    const SHOWN: usize = 5;
    let mut out = violations
        .iter()
        .take(SHOWN)
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    if violations.len() > SHOWN {
        out.push_str(&format!(
            "; and {} more (see the error details)",
            violations.len() - SHOWN
        ));
    }
    cut_bytes(out, MAX_MESSAGE_BYTES)
}

impl Error {
    /// An INVALID_ARGUMENT error with one violation.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// `Ok(())` when there is no violation, else INVALID_ARGUMENT with
    /// them (at most [`MAX_VIOLATIONS`], then one saying how many more).
    /// The list is also cut where it would pass [`MAX_VIOLATION_BYTES`].
    pub fn check(mut violations: Vec<FieldViolation>) -> Result<(), Error> {
        if violations.is_empty() {
            return Ok(());
        }
        // A `more_violations` entry already at the end counts what was cut
        // before.
        let mut more = match violations.last() {
            Some(v) if v.field == "request" && v.description.contains(MORE) => {
                let n = v
                    .description
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                violations.pop();
                n
            }
            _ => 0,
        };
        let mut bytes = 0;
        let keep = violations
            .iter()
            .take(MAX_VIOLATIONS)
            .take_while(|v| {
                bytes += v.field.len() + v.description.len();
                bytes <= MAX_VIOLATION_BYTES
            })
            .count()
            .max(1);
        more += violations.len() - keep;
        violations.truncate(keep);
        if more > 0 {
            violations.push(more_violations(more));
        }
        Err(Error::InvalidArgument(violations))
    }
}

impl From<prost::DecodeError> for Error {
    fn from(e: prost::DecodeError) -> Self {
        Error::Corrupt(e.to_string())
    }
}

/// The result of cetrack's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let message = cut_bytes(e.to_string(), MAX_MESSAGE_BYTES);
        match e {
            Error::InvalidArgument(violations) => {
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::NotFound(_) => Status::not_found(message),
            Error::AlreadyExists(_) => Status::already_exists(message),
            Error::Aborted(_) => Status::aborted(message),
            Error::FailedPrecondition(m) => {
                let details =
                    ErrorDetails::with_precondition_failure_violation("STATE", "initiative", m);
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            Error::Unauthenticated(_) => Status::unauthenticated(message),
            Error::PermissionDenied(_) => Status::permission_denied(message),
            Error::Unavailable(_) => Status::unavailable(message),
            Error::ResourceExhausted(_) => Status::resource_exhausted(message),
            Error::Storage(_) => Status::internal(message),
            Error::Corrupt(_) => Status::data_loss(message),
        }
    }
}
