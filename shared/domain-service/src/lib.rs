//! A cetrack domain service: one technology domain's records over its own
//! store, served over gRPC. The seven domain binaries are each one call to
//! [`server::domain_main`].
//!
//! - [`core`]: the service's behaviour, independent of gRPC: checked
//!   requests in, store operations, typed errors out;
//! - [`api`]: the thin gRPC handlers of `cet.v1.DomainService` and
//!   `cet.v1.StoreAdminService`;
//! - [`server`]: the domain server's configuration, start-up on the server
//!   kit, store gauges and `main`.

pub mod api;
pub mod core;
pub mod feed;
pub mod seal;
pub mod server;

pub use core::{MAX_BACKUPS, MAX_WATCHES, MAX_WATCHES_PER_CALLER};
pub use server::{
    domain_main, serve_store, start_domain, DomainArgs, DomainServerConfig,
    DEFAULT_REQUEST_ID_RETENTION_DAYS,
};
