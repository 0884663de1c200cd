//! The library every cetrack service is built from: the generated `cet.v1`
//! code, the domain rules, validation, typed errors, storage on sled and the
//! server runtime.

pub mod backup;
pub mod core;
pub mod dates;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod names;
pub mod pagination;
pub mod rules;
pub mod runtime;
pub mod store;
pub mod summary;
pub mod telemetry;
pub mod validate;

/// Code generated from `proto/cet/v1`: messages (with proto3 JSON mapping),
/// clients and servers.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("cet.v1");
    include!(concat!(env!("OUT_DIR"), "/cet.v1.serde.rs"));

    /// The encoded file descriptor set of `cet.v1`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/cet_v1_descriptor.bin"));
}

pub use domain::Domain;
pub use error::{Error, FieldViolation};
