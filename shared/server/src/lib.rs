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

/// How long the allocator keeps freed memory before it gives it back to the
/// system, in milliseconds (mimalloc's `purge_delay`; its default in
/// mimalloc 3 is 1,000). A domain frees and allocates tree nodes all the
/// time: after a second's delay it holds what it freed over the last
/// second too. Speed bench at 10,000 per domain: a domain's RSS 144 MiB
/// with the default, 131 with 10 ms, the rows' rates within the noise.
/// `MIMALLOC_PURGE_DELAY` in the environment, when set, is left to rule.
pub const ALLOCATOR_PURGE_DELAY_MS: std::ffi::c_long = 10;

/// mimalloc's `mi_option_purge_delay`: the 16th of its options (`mimalloc.h`,
/// the same in mimalloc 2 and 3), for which `libmimalloc-sys` names no
/// constant. The test `the_allocator_option_set_is_the_purge_delay` checks
/// it by its default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's options (see [`ALLOCATOR_PURGE_DELAY_MS`]); called
/// by [`serve_main`] before the server starts.
pub fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set stores one option's value (mimalloc keeps it in
    // an atomic); it takes no pointer and may be called at any time, from
    // any thread, before or after allocations.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ALLOCATOR_PURGE_DELAY_MS);
    }
}

#[cfg(test)]
mod allocator_tests {
    use super::*;

    #[test]
    fn the_allocator_option_set_is_the_purge_delay() {
        // SAFETY: mi_option_get reads one option's value; no pointer.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // mimalloc 3's default purge delay (options.c): the option is
            // the one this build names.
            assert_eq!(get(), 1_000);
        }
        tune_allocator();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(), ALLOCATOR_PURGE_DELAY_MS);
        }
    }
}
