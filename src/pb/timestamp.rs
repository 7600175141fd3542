//! `google.protobuf.Timestamp` with the ProtoJSON mapping A2A requires.
//!
//! `pbjson-types` writes a timestamp with chrono's `to_rfc3339()`, i.e. `…788+00:00`; ProtoJSON
//! and A2A v1.0 §5.6.1 ("MUST be ISO 8601 in UTC") require the `Z` suffix, and strict clients
//! reject the offset form. `build.rs` maps `.google.protobuf.Timestamp` to this type (every
//! other well-known type stays `pbjson_types`), so every JSON document the mesh writes (gateway
//! responses and streams, push notification bodies, the CLI's `--json`, cards) gets it right
//! from the one serde impl here.

use chrono::{DateTime, SecondsFormat, Utc};

/// A point in time: seconds and nanoseconds since the Unix epoch, UTC (wire-compatible with
/// `google.protobuf.Timestamp`).
///
/// JSON (ProtoJSON): an RFC 3339 string in UTC with a `Z` suffix and 0, 3, 6 or 9 fractional
/// digits, e.g. `"2026-11-30T11:46:52.688776Z"`. Input may carry any offset
/// (`"2026-11-30T12:46:52+01:00"`); it is converted to UTC.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Non-negative fraction of a second, in nanoseconds (0..=999_999_999).
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl prost::Name for Timestamp {
    const NAME: &'static str = "Timestamp";
    const PACKAGE: &'static str = "google.protobuf";

    fn type_url() -> String {
        "type.googleapis.com/google.protobuf.Timestamp".into()
    }
}

/// A [`Timestamp`] outside what RFC 3339 can write (years 0001..=9999) or with nanoseconds
/// outside 0..=999_999_999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {seconds}s {nanos}ns is out of range")]
pub struct TimestampOutOfRange {
    /// The seconds of the timestamp.
    pub seconds: i64,
    /// The nanoseconds of the timestamp.
    pub nanos: i32,
}

impl TryFrom<Timestamp> for DateTime<Utc> {
    type Error = TimestampOutOfRange;

    fn try_from(ts: Timestamp) -> Result<Self, Self::Error> {
        let out = TimestampOutOfRange {
            seconds: ts.seconds,
            nanos: ts.nanos,
        };
        let nanos = u32::try_from(ts.nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000)
            .ok_or(out)?;
        DateTime::from_timestamp(ts.seconds, nanos).ok_or(out)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self {
            seconds: t.timestamp(),
            nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = DateTime::<Utc>::try_from(*self).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rfc3339;
        impl serde::de::Visitor<'_> for Rfc3339 {
            type Value = Timestamp;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 timestamp such as \"2026-11-30T11:46:52.688Z\"")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
                let t = DateTime::parse_from_rfc3339(s).map_err(|e| {
                    E::custom(format_args!("invalid RFC 3339 timestamp {s:?}: {e}"))
                })?;
                Ok(t.with_timezone(&Utc).into())
            }
        }
        deserializer.deserialize_str(Rfc3339)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(seconds: i64, nanos: i32) -> String {
        serde_json::to_string(&Timestamp { seconds, nanos }).expect("in range")
    }

    #[test]
    fn output_is_utc_with_z_and_0_3_6_or_9_digits() {
        assert_eq!(json(1_796_038_016, 0), "\"2026-11-30T11:26:56Z\"");
        assert_eq!(
            json(1_796_038_016, 117_000_000),
            "\"2026-11-30T11:26:56.117Z\""
        );
        assert_eq!(
            json(1_796_038_016, 117_022_000),
            "\"2026-11-30T11:26:56.117022Z\""
        );
        assert_eq!(
            json(1_796_038_016, 117_022_788),
            "\"2026-11-30T11:26:56.117022788Z\""
        );
    }

    #[test]
    fn input_takes_any_offset_and_round_trips() {
        let t: Timestamp =
            serde_json::from_str("\"2026-11-30T12:26:56.5+01:00\"").expect("valid offset form");
        assert_eq!(
            t,
            Timestamp {
                seconds: 1_796_038_016,
                nanos: 500_000_000
            }
        );
        assert_eq!(json(t.seconds, t.nanos), "\"2026-11-30T11:26:56.500Z\"");
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"").expect_err("not RFC 3339");
        assert!(err.to_string().contains("yesterday"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_errors() {
        assert!(
            serde_json::to_string(&Timestamp {
                seconds: 0,
                nanos: -1
            })
            .is_err()
        );
        assert!(
            serde_json::to_string(&Timestamp {
                seconds: 0,
                nanos: 1_000_000_000
            })
            .is_err()
        );
    }
}
