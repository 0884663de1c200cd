//! The end-to-end tests: real servers on ephemeral ports with temporary data
//! directories, compiled as modules of one test binary (one link on a
//! two-core machine instead of one per file). The harness is `tests/src`.

mod backup;
mod binaries;
mod claims;
mod cli;
mod crash;
mod dashboard;
mod domain_api;
mod domain_errors;
mod domain_idempotency;
mod domain_pagination;
mod domain_restart;
mod domain_smoke;
mod domain_watch;
mod gateway_binary;
mod gateway_faults;
mod gateway_live;
mod gateway_route;
mod gateway_views;
mod group_commit;
mod hostile;
mod hostile_fuzz;
mod lifecycle;
mod metrics;
mod migration;
mod seed_data;
mod shutdown;
mod store_failsafe;
mod store_faults;
mod time_views;
mod tls;
mod trust_keys;
mod trust_leak;
mod trust_matrix;
