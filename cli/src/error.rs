//! Errors as the command line reports them.

use tonic_types::StatusExt;

/// A gRPC error from the server, shown with its code, message and field
/// violations.
#[derive(Debug)]
pub(crate) struct StatusError(pub tonic::Status);

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.0.code(), self.0.message())?;
        if let Some(b) = self.0.get_details_bad_request() {
            for v in b.field_violations {
                write!(f, "\n  {}: {}", v.field, v.description)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for StatusError {}

impl From<tonic::Status> for StatusError {
    fn from(s: tonic::Status) -> Self {
        StatusError(s)
    }
}
