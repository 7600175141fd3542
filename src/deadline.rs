//! The gRPC `grpc-timeout` header (gRPC over HTTP/2, "Requests"): `TimeoutValue TimeoutUnit`,
//! at most 8 ASCII digits followed by `H` (hours), `M` (minutes), `S`, `m` (milli), `u` (micro)
//! or `n` (nano seconds).

use std::time::Duration;

/// Parses a `grpc-timeout` value; `None` when it breaks the grammar.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Encodes a duration as a `grpc-timeout` value, in the finest unit that fits 8 digits.
pub fn encode_grpc_timeout(d: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let nanos = d.as_nanos();
    for (unit, per) in [
        ("n", 1u128),
        ("u", 1_000),
        ("m", 1_000_000),
        ("S", 1_000_000_000),
        ("M", 60_000_000_000),
    ] {
        let v = nanos.div_ceil(per);
        if v <= MAX {
            return format!("{v}{unit}");
        }
    }
    format!("{}H", nanos.div_ceil(3_600_000_000_000).min(MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_grpc_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_grpc_timeout("5n"), Some(Duration::from_nanos(5)));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in ["", "S", "100", "123456789S", "1s", "-1S", "1.5S", "1 S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn encoding_round_trips_without_shortening() {
        for d in [
            Duration::from_millis(1500),
            Duration::from_secs(3600 * 30),
            Duration::from_nanos(7),
            Duration::from_secs(86_400 * 365 * 20),
        ] {
            let back = parse_grpc_timeout(&encode_grpc_timeout(d)).expect("valid");
            assert!(back >= d, "{d:?} -> {back:?}");
        }
    }
}
