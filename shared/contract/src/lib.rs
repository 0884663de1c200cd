//! The `cet.v1` contract and its rules, with no I/O: everything a server, a
//! client or a test needs to speak and check the API.
//!
//! - [`proto`]: the code generated from `proto/cet/v1` (messages with their
//!   proto3 JSON mapping, clients, service traits, the descriptor set);
//! - [`auth`]: the verified caller, roles, clearance and what each may do;
//! - [`domain`]: the seven technology domains and their defaults;
//! - [`names`]: resource names (`domains/{domain}/initiatives/{id}`);
//! - [`dates`]: approximate dates and their periods, calendar days, today;
//! - [`validate`]: checks of records and their parts;
//! - [`requests`]: request checks, returning checked request types;
//! - [`rules`]: the domain rules (lifecycle, masks, overdue, filters);
//! - [`summary`]: the incremental summary counters and their assembly;
//! - [`valid_time`]: a record as it stood on a day by the dates it carries;
//! - [`timeline`]: which milestones a timeline shows, and their order;
//! - [`pagination`]: page sizes and opaque page tokens;
//! - [`error`]: the typed errors and their one mapping to gRPC status codes;
//! - [`served`], [`wire`]: the service traits servers implement, with the
//!   answers they send already encoded.
//!
//! The store (`cetrack-store`), the server kit (`cetrack-server`), the
//! domain service (`cetrack-domain-service`) and the gateway build on it.

pub mod auth;
pub mod codec;
pub mod dates;
pub mod domain;
pub mod error;
pub mod headers;
pub mod names;
pub mod pagination;
pub mod requests;
pub mod rules;
pub mod summary;
pub mod timeline;
pub mod valid_time;
pub mod validate;
pub mod wire;

/// Code generated from `proto/cet/v1`: messages (with proto3 JSON mapping),
/// clients and servers.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("cet.v1");
    include!(concat!(env!("OUT_DIR"), "/cet.v1.serde.rs"));

    /// The encoded file descriptor set of `cet.v1`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/cet_v1_descriptor.bin"));
}

/// The service traits and servers a server implements: those of [`proto`],
/// except that a record is answered as [`wire::Initiative`] and a page of
/// them as [`wire::ListInitiativesResponse`] (records passed on as stored).
/// Clients use [`proto`].
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod served {
    include!(concat!(env!("OUT_DIR"), "/served/cet.v1.rs"));
}

pub use domain::Domain;
pub use error::{Error, FieldViolation};
