//! URL parts as the REST binding reads them: percent-decoding of path segments and
//! `application/x-www-form-urlencoded` query strings, strict about what is malformed.

use crate::error::ApiError;

/// Decodes `%XX` escapes (and, with `plus_is_space`, `+` as a space) into UTF-8 text.
///
/// # Errors
/// [`ApiError::InvalidRequest`] for a truncated or non-hex escape, or bytes that are not UTF-8.
pub(crate) fn percent_decode(input: &str, plus_is_space: bool) -> Result<String, ApiError> {
    let bad = || ApiError::InvalidRequest(format!("{input:?} has malformed percent-encoding"));
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::InvalidRequest(format!("{input:?} does not decode to UTF-8")))
}

/// The `key=value` pairs of a query string, decoded, in order. Empty pieces are skipped; a
/// key without `=` has an empty value.
///
/// # Errors
/// As [`percent_decode`].
pub(crate) fn parse_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(percent_decode("a%2Fb+c", true).expect("ok"), "a/b c");
        assert_eq!(percent_decode("a+b", false).expect("ok"), "a+b");
        assert_eq!(percent_decode("%C3%A9", false).expect("ok"), "é");
        for bad in ["%", "%4", "%zz", "%FF"] {
            assert!(percent_decode(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn splits_pairs() {
        let q = parse_query("a=1&&b&c=x%3Dy").expect("ok");
        assert_eq!(
            q,
            [
                ("a".into(), "1".into()),
                ("b".into(), String::new()),
                ("c".into(), "x=y".into())
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(s in ".*") {
            let encoded: String = s
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect();
            prop_assert_eq!(percent_decode(&encoded, false).expect("valid"), s.clone());
            let _ = parse_query(&s);
            let _ = percent_decode(&s, true);
        }
    }
}
