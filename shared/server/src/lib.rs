//! The server kit every cetrack server is built from, the domain services
//! and the gateway alike:
//!
//! - [`serve`]: one function that builds a server from its services
//!   (listener, TCP_NODELAY, HTTP/2 settings, health, reflection, graceful
//!   shutdown) with the cross-cutting concerns as tower layers;
//! - [`run`]: the `main` of a server binary (runtime, signals, metrics
//!   endpoint, exit codes) and the options every binary shares;
//! - [`metrics`]: Prometheus metrics, measured by one tower layer;
//! - [`auth`]: bearer tokens verified by a tower layer, local keys;
//! - [`tls`]: TLS and mutual TLS for servers and clients, certificates;
//! - [`deadline`]: the caller's deadline (`grpc-timeout`) and what follows
//!   from it.

pub mod auth;
pub mod deadline;
pub mod metrics;
pub mod run;
pub mod serve;
pub mod streams;
pub mod tls;

pub use run::{cancel_on_signals, init_tracing, serve_main, CommonArgs, LogFormat};
pub use serve::{serve, RunningServer, Services};

/// Largest request a server decodes, in bytes.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest response a server encodes (and a client of ours decodes), in
/// bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The allocator of every binary built from the kit: mimalloc, without
/// transparent huge pages. A domain's writer thread spent about half of a
/// create in the system allocator (sled copies a tree node for each key a
/// transaction writes); with mimalloc the same binaries create about 1.5
/// times as many initiatives a second. Huge pages would keep whole 2 MiB
/// pages resident for a few small allocations: without them a domain holds
/// less memory than with the system allocator (speed bench, README).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
