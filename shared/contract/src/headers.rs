//! Response headers of the API beyond gRPC's own.

/// Set to `true` on the answer of a write that was a retry of an earlier
/// request (the same `request_id` and the same request): the answer is the
/// first one, replayed, and nothing was written now. Absent otherwise.
pub const REPLAYED: &str = "cetrack-replayed";
