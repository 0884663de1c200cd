//! Deadlines of calls to the domains, derived from the caller's.

use std::time::Duration;

use cetrack_server::deadline::grpc_timeout;

/// What the gateway leaves itself to assemble an answer after the domains'
/// deadline: a tenth of the caller's deadline, at least this much.
const MARGIN: Duration = Duration::from_millis(50);
/// The shortest deadline given to a domain call.
const FLOOR: Duration = Duration::from_millis(10);

/// The deadline of the domain calls made for a request with `metadata`: the
/// caller's deadline less a margin, capped by `default` (used alone when the
/// caller set none).
pub fn domain_deadline(metadata: &tonic::metadata::MetadataMap, default: Duration) -> Duration {
    match grpc_timeout(metadata) {
        Some(t) => t
            .saturating_sub(MARGIN.max(t / 10))
            .clamp(FLOOR, default.max(FLOOR)),
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_domain_deadlines() {
        let mut m = tonic::metadata::MetadataMap::new();
        let default = Duration::from_secs(5);
        assert_eq!(domain_deadline(&m, default), default);
        m.insert("grpc-timeout", "1000m".parse().unwrap());
        assert_eq!(domain_deadline(&m, default), Duration::from_millis(900));
        m.insert("grpc-timeout", "300m".parse().unwrap());
        assert_eq!(domain_deadline(&m, default), Duration::from_millis(250));
        m.insert("grpc-timeout", "60S".parse().unwrap());
        assert_eq!(domain_deadline(&m, default), default);
        m.insert("grpc-timeout", "20m".parse().unwrap());
        assert_eq!(domain_deadline(&m, default), FLOOR);
    }
}
