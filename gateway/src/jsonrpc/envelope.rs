//! The JSON-RPC 2.0 request parser: bytes → [`Envelope`], with the checks in the order A2A
//! v1.0 gives them (parse -32700, envelope -32600, method -32601, params -32602).
//!
//! - `id` may be a string, a number or null; a request without one (a notification in JSON-RPC
//!   terms) is still answered, with `"id": null`, as the A2A SDKs do.
//! - Batches (arrays) are refused with -32600.
//! - `params` may be missing or null (an empty request message); otherwise it must be an
//!   object, parsed as the method's request in protobuf JSON.
//! - A well-formed request (`method` before `params`, no repeated member) is parsed in one pass
//!   straight into the method's protobuf request, with no intermediate `serde_json::Value`;
//!   anything else takes the general path, which finds and names the error.

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor},
};
use serde_json::Value;

use crate::{
    error::ApiError,
    method::{Call, Method},
};

/// A valid request.
#[derive(Debug, PartialEq)]
pub(crate) struct Envelope {
    /// The id to answer with.
    pub(crate) id: Value,
    /// The request to the agent.
    pub(crate) call: Call,
}

/// Parses a request body. The error comes with the id to answer it with (null when the id
/// is not known).
///
/// # Errors
/// See the module docs.
pub(crate) fn parse(body: &[u8]) -> Result<Envelope, (Value, ApiError)> {
    if let Ok(Fast(envelope)) = serde_json::from_slice::<Fast>(body) {
        return Ok(envelope);
    }
    parse_value(body)
}

/// The general path: the body as a `serde_json::Value`, checked step by step.
fn parse_value(body: &[u8]) -> Result<Envelope, (Value, ApiError)> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| (Value::Null, ApiError::Parse(e.to_string())))?;
    let invalid = |id: &Value, what: &str| (id.clone(), ApiError::InvalidRequest(what.to_owned()));
    let mut object = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(invalid(&Value::Null, "batch requests are not supported"));
        }
        _ => return Err(invalid(&Value::Null, "the request must be a JSON object")),
    };
    let id = match object.remove("id") {
        None => Value::Null,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => id,
        Some(_) => {
            return Err(invalid(
                &Value::Null,
                "\"id\" must be a string, a number or null",
            ));
        }
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(&id, "\"jsonrpc\" must be \"2.0\""));
    }
    let name = match object.get("method") {
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err(invalid(&id, "\"method\" must be a string")),
        None => return Err(invalid(&id, "\"method\" is missing")),
    };
    let method = Method::from_name(&name).ok_or_else(|| {
        let hint = if name.contains('/') {
            " (A2A 0.3 method names are not served; use the 1.0 names, e.g. SendMessage)"
        } else {
            ""
        };
        (
            id.clone(),
            ApiError::MethodNotFound(format!("method {name:?} not found{hint}")),
        )
    })?;
    let params = match object.remove("params") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err((
                id,
                ApiError::InvalidParams("\"params\" must be an object".into()),
            ));
        }
    };
    let call = method.call(params).map_err(|e| {
        (
            id.clone(),
            ApiError::InvalidParams(format!("{}: {e}", method.name())),
        )
    })?;
    Ok(Envelope { id, call })
}

/// The one-pass parse of a valid request; any deviation (an error of any kind, `params`
/// before `method`, a repeated member) fails it, and the general path takes over.
struct Fast(Envelope);

impl<'de> Deserialize<'de> for Fast {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FastVisitor)
    }
}

struct FastVisitor;

impl<'de> Visitor<'de> for FastVisitor {
    type Value = Fast;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC 2.0 request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fast, A::Error> {
        let (mut version, mut id, mut method, mut call) = (false, None, None, None);
        let repeated = || de::Error::custom("repeated member");
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "jsonrpc" if !version => {
                    version = map.next_value::<&str>()? == "2.0";
                    if !version {
                        return Err(de::Error::custom("jsonrpc"));
                    }
                }
                "id" if id.is_none() => match map.next_value::<Value>()? {
                    v @ (Value::String(_) | Value::Number(_) | Value::Null) => id = Some(v),
                    _ => return Err(de::Error::custom("id")),
                },
                "method" if method.is_none() => {
                    let name = map.next_value::<&str>()?;
                    method = Some(Method::from_name(name).ok_or_else(|| de::Error::custom("m"))?);
                }
                "params" if call.is_none() => {
                    let m = method.ok_or_else(|| de::Error::custom("params before method"))?;
                    call = Some(map.next_value_seed(CallSeed(m))?);
                }
                "jsonrpc" | "id" | "method" | "params" => return Err(repeated()),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let method = method.ok_or_else(|| de::Error::custom("method"))?;
        if !version {
            return Err(de::Error::custom("jsonrpc"));
        }
        let call = match call {
            Some(c) => c,
            None => method
                .call(Value::Object(Default::default()))
                .map_err(de::Error::custom)?,
        };
        Ok(Fast(Envelope {
            id: id.unwrap_or(Value::Null),
            call,
        }))
    }
}

/// Deserializes `params` as the request of one method.
struct CallSeed(Method);

impl<'de> DeserializeSeed<'de> for CallSeed {
    type Value = Call;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Call, D::Error> {
        Ok(match self.0 {
            Method::SendMessage => Call::SendMessage(Deserialize::deserialize(d)?),
            Method::SendStreamingMessage => {
                Call::SendStreamingMessage(Deserialize::deserialize(d)?)
            }
            Method::GetTask => Call::GetTask(Deserialize::deserialize(d)?),
            Method::ListTasks => Call::ListTasks(Deserialize::deserialize(d)?),
            Method::CancelTask => Call::CancelTask(Deserialize::deserialize(d)?),
            Method::SubscribeToTask => Call::SubscribeToTask(Deserialize::deserialize(d)?),
            Method::CreateTaskPushNotificationConfig => {
                Call::CreatePushConfig(Deserialize::deserialize(d)?)
            }
            Method::GetTaskPushNotificationConfig => {
                Call::GetPushConfig(Deserialize::deserialize(d)?)
            }
            Method::ListTaskPushNotificationConfigs => {
                Call::ListPushConfigs(Deserialize::deserialize(d)?)
            }
            Method::DeleteTaskPushNotificationConfig => {
                Call::DeletePushConfig(Deserialize::deserialize(d)?)
            }
            Method::GetExtendedAgentCard => {
                Call::GetExtendedAgentCard(Deserialize::deserialize(d)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::error::json_rpc::code;

    fn err(body: &str) -> (Value, i32) {
        let (id, e) = parse(body.as_bytes()).expect_err(body);
        (id, code(&e))
    }

    #[test]
    fn checks_come_in_order() {
        assert_eq!(err("{"), (Value::Null, -32700));
        assert_eq!(err("\u{ff}"), (Value::Null, -32700));
        assert_eq!(err("[]"), (Value::Null, -32600));
        assert_eq!(err("7"), (Value::Null, -32600));
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":{},"method":"GetTask"}"#),
            (Value::Null, -32600)
        );
        assert_eq!(
            err(r#"{"jsonrpc":"1.0","id":1,"method":"GetTask"}"#),
            (json!(1), -32600)
        );
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":"a"}"#), (json!("a"), -32600));
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":1,"method":"message/send"}"#),
            (json!(1), -32601)
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":[1]}"#),
            (json!(1), -32602)
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":7}}"#),
            (json!(1), -32602)
        );
    }

    #[test]
    fn valid_requests_parse() {
        let e = parse(br#"{"jsonrpc":"2.0","method":"ListTasks","params":{"page_size":3,"x":1}}"#)
            .expect("valid");
        assert_eq!(e.id, Value::Null);
        match e.call {
            Call::ListTasks(r) => assert_eq!(r.page_size, Some(3)),
            other => panic!("{other:?}"),
        }
        let e = parse(br#"{"jsonrpc":"2.0","id":2.5,"method":"GetExtendedAgentCard"}"#)
            .expect("no params");
        assert_eq!(e.id, json!(2.5));
    }

    #[test]
    fn well_formed_requests_take_the_one_pass_path() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"SendMessage","params":{"message":
            {"messageId":"m1","role":"ROLE_USER","parts":[{"text":"hi"}],
             "metadata":{"k":[1,{"a":null}]}}},"extra":{"x":[1]}}"#;
        let Fast(fast) = serde_json::from_slice::<Fast>(body).expect("one pass");
        assert_eq!(Some(&fast), parse_value(body).ok().as_ref());
        // Repeated members, `params` before `method` and null `params` take the general path.
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"GetTask","params":{"id":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"params":{"id":"t"},"method":"GetTask"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ListTasks","params":null}"#,
        ] {
            assert!(
                serde_json::from_slice::<Fast>(body.as_bytes()).is_err(),
                "{body}"
            );
            assert_eq!(
                parse(body.as_bytes()).ok(),
                parse_value(body.as_bytes()).ok()
            );
            assert!(parse(body.as_bytes()).is_ok(), "{body}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
            prop::sample::select(vec!["2.0", "SendMessage", "GetTask", "ListTasks", "id"])
                .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "jsonrpc",
                        "id",
                        "method",
                        "params",
                        "message",
                        "parts",
                        "text",
                        "historyLength",
                        "status",
                        "pageSize",
                        "configuration",
                    ])
                    .prop_map(str::to_owned),
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&body);
        }

        #[test]
        fn arbitrary_json_never_panics_and_errors_keep_valid_ids(v in json_value(), m in 0usize..11) {
            let _ = parse(v.to_string().as_bytes());
            let request = json!({
                "jsonrpc": "2.0", "id": 9, "method": Method::ALL[m].name(), "params": v,
            });
            let body = request.to_string();
            match parse(body.as_bytes()) {
                Ok(e) => prop_assert_eq!(e.id, json!(9)),
                Err((id, _)) => prop_assert_eq!(id, json!(9)),
            }
            // The one-pass parse accepts exactly what the general path accepts, as the same call.
            prop_assert_eq!(parse(body.as_bytes()).ok(), parse_value(body.as_bytes()).ok());
            if let Ok(Fast(fast)) = serde_json::from_slice::<Fast>(body.as_bytes()) {
                prop_assert_eq!(Some(fast), parse_value(body.as_bytes()).ok());
            }
        }
    }
}
