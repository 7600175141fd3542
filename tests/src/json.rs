//! Checks on the JSON the mesh writes: every timestamp is RFC 3339 in UTC with a `Z` suffix and
//! 0, 3, 6 or 9 fractional digits (ProtoJSON; A2A v1.0 §5.6.1, "MUST be ISO 8601 in UTC").

use serde_json::Value;

/// Whether `s` starts like an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS`.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

/// Whether `s` is a ProtoJSON timestamp: `YYYY-MM-DDTHH:MM:SS[.f{3|6|9}]Z`.
fn is_utc_z(s: &str) -> bool {
    let Some(rest) = s.get(19..).and_then(|r| r.strip_suffix('Z')) else {
        return false;
    };
    s.as_bytes()[10] == b'T'
        && (rest.is_empty()
            || rest.strip_prefix('.').is_some_and(|f| {
                matches!(f.len(), 3 | 6 | 9) && f.bytes().all(|b| b.is_ascii_digit())
            }))
}

/// Walks `value` and panics naming the JSON path of any string that looks like an RFC 3339
/// date-time but is not UTC with `Z` and 0/3/6/9 fractional digits. Returns how many
/// timestamps it checked, so a caller can assert the check was not vacuous.
pub fn assert_utc_timestamps(value: &Value) -> usize {
    fn walk(v: &Value, path: &mut String, n: &mut usize) {
        match v {
            Value::String(s) if looks_like_timestamp(s) => {
                assert!(
                    is_utc_z(s),
                    "timestamp at {path} is {s:?}: ProtoJSON needs UTC with a Z suffix"
                );
                *n += 1;
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(x, path, n);
                    path.truncate(len);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    walk(x, path, n);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut n = 0;
    walk(value, &mut "$".to_owned(), &mut n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn z_timestamps_pass_and_offsets_fail() {
        let ok = json!({"a": ["2026-11-30T11:46:52.688776Z", "2026-11-30T11:46:52Z"], "b": "hi"});
        assert_eq!(assert_utc_timestamps(&ok), 2);
        for bad in [
            "2026-11-30T11:46:52.117022788+00:00",
            "2026-11-30T11:46:52.1Z",
            "2026-11-30 11:46:52Z",
        ] {
            let r = std::panic::catch_unwind(|| assert_utc_timestamps(&json!({"t": [bad]})));
            assert!(r.is_err() || !looks_like_timestamp(bad), "{bad} passed");
        }
        assert!(
            std::panic::catch_unwind(|| assert_utc_timestamps(&json!({
                "status": {"timestamp": "2026-11-30T11:46:52.117022788+00:00"}
            })))
            .is_err()
        );
    }
}
