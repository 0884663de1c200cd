//! Deadlines of calls to the domains, derived from the caller's.

use std::time::Duration;

/// What the gateway leaves itself to assemble an answer after the domains'
/// deadline: a tenth of the caller's deadline, at least this much.
const MARGIN: Duration = Duration::from_millis(50);
/// The shortest deadline given to a domain call.
const FLOOR: Duration = Duration::from_millis(10);

/// Parses a `grpc-timeout` header value (e.g. `250m`, `5S`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The deadline of the domain calls made for a request with `metadata`: the
/// caller's deadline less a margin, capped by `default` (used alone when the
/// caller set none).
pub fn domain_deadline(metadata: &tonic::metadata::MetadataMap, default: Duration) -> Duration {
    let caller = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout);
    match caller {
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
    fn parses_grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout("12X"), None);
    }

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
