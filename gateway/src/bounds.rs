//! The bounds of [`switchyard::limits`] at the HTTP edge, checked before any call leaves the
//! gateway, on every front (JSON-RPC, REST, WebSocket frames):
//!
//! - a JSON body (or frame) nesting deeper than [`MAX_DOCUMENT_DEPTH`] is refused before it
//!   is parsed (a cheap scan of the bytes): -32602 / HTTP 400;
//! - a request whose ids, names or free-form values break a bound is refused with
//!   [`ApiError::BadRequest`] naming each field (-32602 / HTTP 400, `google.rpc.BadRequest`);
//! - an agent name (the `{agent}` path segment) is an id too.

use switchyard::limits::{self, Bounded, MAX_ID_BYTES, MAX_JSON_DEPTH};

use crate::{error::ApiError, method::Call};

/// Deepest nesting of a whole request document: [`MAX_JSON_DEPTH`] for a free-form value
/// plus the levels above the deepest place one sits (e.g. JSON-RPC
/// `params.message.parts[0].data`: 5).
pub(crate) const MAX_DOCUMENT_DEPTH: usize = MAX_JSON_DEPTH + 8;

/// The nesting depth of JSON text: objects and arrays, outside strings. Linear, no recursion,
/// any bytes (it need not be valid JSON).
pub(crate) fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Refuses a document nesting deeper than [`MAX_DOCUMENT_DEPTH`].
///
/// # Errors
/// [`ApiError::InvalidParams`] naming the limit.
pub(crate) fn check_depth(text: &[u8]) -> Result<(), ApiError> {
    if json_depth(text) > MAX_DOCUMENT_DEPTH {
        return Err(ApiError::InvalidParams(format!(
            "the JSON document nests deeper than {MAX_DOCUMENT_DEPTH} levels (free-form values \
             such as metadata and data parts may nest at most {MAX_JSON_DEPTH})"
        )));
    }
    Ok(())
}

/// Refuses a request over a bound.
///
/// # Errors
/// [`ApiError::BadRequest`] naming every field over a bound.
pub(crate) fn check(request: &(impl Bounded + ?Sized)) -> Result<(), ApiError> {
    let v = limits::violations(request);
    if v.is_empty() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(v))
    }
}

/// Refuses a call over a bound.
///
/// # Errors
/// As [`check`].
pub(crate) fn check_call(call: &Call) -> Result<(), ApiError> {
    match call {
        Call::SendMessage(r) | Call::SendStreamingMessage(r) => check(r),
        Call::GetTask(r) => check(r),
        Call::ListTasks(r) => check(r),
        Call::CancelTask(r) => check(r),
        Call::SubscribeToTask(r) => check(r),
        Call::CreatePushConfig(r) => check(r),
        Call::GetPushConfig(r) => check(r),
        Call::ListPushConfigs(r) => check(r),
        Call::DeletePushConfig(r) => check(r),
        Call::GetExtendedAgentCard(r) => check(r),
    }
}

/// Refuses an agent name longer than an id may be.
///
/// # Errors
/// [`ApiError::BadRequest`] for the field `agent`.
pub(crate) fn check_agent_name(name: &str) -> Result<(), ApiError> {
    if name.len() > MAX_ID_BYTES {
        return Err(ApiError::BadRequest(vec![
            switchyard::error::FieldError::new(
                "agent",
                format!(
                    "is {} bytes long; names hold at most {MAX_ID_BYTES} bytes",
                    name.len()
                ),
            ),
        ]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::{error::json_rpc::code, jsonrpc::envelope};

    /// Nesting depth of a parsed value, as [`MAX_JSON_DEPTH`] counts it.
    fn depth(v: &Value) -> usize {
        match v {
            Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// JSON values of any shape up to `max` levels deep, with strings holding brackets and
    /// escaped quotes (which the byte scan must skip).
    fn value(max: u32) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[\\[\\]{}\"\\\\a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(max, 256, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-z{\\[]{1,3}", inner, 1..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// `v` wrapped `levels` times in one-key objects or one-item arrays.
    fn wrap(mut v: Value, levels: usize) -> Value {
        for i in 0..levels {
            v = if i % 2 == 0 {
                json!([v])
            } else {
                json!({ "k": v })
            };
        }
        v
    }

    /// A JSON-RPC SendMessage whose message metadata is `metadata`.
    fn send(metadata: &Value) -> Vec<u8> {
        json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
            "messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}],
            "metadata": {"m": metadata},
        }}})
        .to_string()
        .into_bytes()
    }

    /// What the JSON-RPC front does with a body: the depth scan, the parse, the bounds.
    fn verdict(body: &[u8]) -> Result<(), i32> {
        check_depth(body).map_err(|e| code(&e))?;
        let e = envelope::parse(body).map_err(|(_, e)| code(&e))?;
        check_call(&e.call).map_err(|e| code(&e))
    }

    proptest! {
        #[test]
        fn the_byte_scan_measures_what_the_parser_sees(v in value(12)) {
            prop_assert_eq!(json_depth(v.to_string().as_bytes()), depth(&v));
        }

        /// Metadata within the limit is accepted, beyond it refused with -32602 (never a parse
        /// error, never an internal one), however deep and whatever its shape.
        #[test]
        fn metadata_depth_is_bounded_at_the_limit(v in value(6), extra in 0usize..120) {
            let m = wrap(v, extra);
            // The metadata object itself is one level above `m`.
            let levels = 1 + depth(&m);
            match verdict(&send(&m)) {
                Ok(()) => prop_assert!(levels <= MAX_JSON_DEPTH, "accepted {levels} levels"),
                Err(c) => {
                    prop_assert_eq!(c, -32602);
                    prop_assert!(levels > MAX_JSON_DEPTH, "refused {levels} levels");
                }
            }
        }

        #[test]
        fn ids_are_bounded_at_the_limit(len in (MAX_ID_BYTES - 4)..(MAX_ID_BYTES + 4)) {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask",
                              "params": {"id": "x".repeat(len)}});
            let r = verdict(body.to_string().as_bytes());
            prop_assert_eq!(r.is_ok(), len <= MAX_ID_BYTES);
        }
    }

    #[test]
    fn documents_far_too_deep_are_refused_unparsed() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(json_depth(deep.as_bytes()), 100_000);
        let e = check_depth(deep.as_bytes()).expect_err("too deep");
        assert_eq!(code(&e), -32602);
        assert!(json_depth(br#"{"a":"[[[[\"{{"}"#) == 1);
    }
}
