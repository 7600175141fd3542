//! REST requests → [`Call`]s: the body (protobuf JSON) merged with what the path names (task
//! and config ids, tenant — the path wins), or typed query parameters for the GETs
//! (camelCase or snake_case names, unknown ones ignored).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::route::{RestPath, Route};
use crate::{error::ApiError, method::Call};

/// The JSON type of a query parameter.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Str,
    Int,
    Bool,
    /// An enum, by name or by number.
    Enum,
}

/// `(camelCase, snake_case, kind)` of the query parameters of a GET.
type Fields = &'static [(&'static str, &'static str, Kind)];

const GET_TASK: Fields = &[("historyLength", "history_length", Kind::Int)];
const LIST_TASKS: Fields = &[
    ("contextId", "context_id", Kind::Str),
    ("status", "status", Kind::Enum),
    ("pageSize", "page_size", Kind::Int),
    ("pageToken", "page_token", Kind::Str),
    ("historyLength", "history_length", Kind::Int),
    ("statusTimestampAfter", "status_timestamp_after", Kind::Str),
    ("includeArtifacts", "include_artifacts", Kind::Bool),
];
const LIST_PUSH: Fields = &[
    ("pageSize", "page_size", Kind::Int),
    ("pageToken", "page_token", Kind::Str),
];

/// The query parameters named in `fields`, typed, under their camelCase names.
fn from_query(query: &[(String, String)], fields: Fields) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (key, value) in query {
        let Some((camel, _, kind)) = fields.iter().find(|(c, s, _)| key == c || key == s) else {
            continue;
        };
        let bad = |what: &str| {
            ApiError::InvalidParams(format!("query parameter {key}={value:?} is not {what}"))
        };
        let v = match kind {
            Kind::Str => json!(value),
            Kind::Int => json!(value.trim().parse::<i64>().map_err(|_| bad("an integer"))?),
            Kind::Bool => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => json!(true),
                "false" | "0" => json!(false),
                _ => return Err(bad("true or false")),
            },
            Kind::Enum => match value.trim().parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => json!(value.trim()),
            },
        };
        out.insert((*camel).to_owned(), v);
    }
    Ok(out)
}

/// The body as a JSON object (`{}` when empty).
fn from_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    crate::bounds::check_depth(body)?;
    match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::InvalidParams(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::Parse(e.to_string())),
    }
}

/// Deserializes a request message.
fn message<T: DeserializeOwned>(
    mut fields: Map<String, Value>,
    tenant: &str,
) -> Result<T, ApiError> {
    if !tenant.is_empty() {
        fields.insert("tenant".into(), json!(tenant));
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::InvalidParams(e.to_string()))
}

/// `fields` with `extra` set over them.
fn with(mut fields: Map<String, Value>, extra: &[(&str, &str)]) -> Map<String, Value> {
    for (k, v) in extra {
        fields.insert((*k).to_owned(), json!(v));
    }
    fields
}

/// The call a REST request stands for.
///
/// # Errors
/// [`ApiError::Parse`] for a body that is not JSON; [`ApiError::InvalidParams`] for one (or
/// query parameters) that do not fit the request message.
pub(crate) fn call(
    path: &RestPath,
    query: &[(String, String)],
    body: &[u8],
) -> Result<Call, ApiError> {
    let t = path.tenant.as_str();
    Ok(match &path.route {
        Route::SendMessage => Call::SendMessage(message(from_body(body)?, t)?),
        Route::StreamMessage => Call::SendStreamingMessage(message(from_body(body)?, t)?),
        Route::ListTasks => Call::ListTasks(message(from_query(query, LIST_TASKS)?, t)?),
        Route::GetTask(id) => Call::GetTask(message(
            with(from_query(query, GET_TASK)?, &[("id", id)]),
            t,
        )?),
        Route::CancelTask(id) => {
            Call::CancelTask(message(with(from_body(body)?, &[("id", id)]), t)?)
        }
        Route::Subscribe(id) => Call::SubscribeToTask(message(with(Map::new(), &[("id", id)]), t)?),
        Route::CreatePushConfig(task) => {
            Call::CreatePushConfig(message(with(from_body(body)?, &[("taskId", task)]), t)?)
        }
        Route::ListPushConfigs(task) => Call::ListPushConfigs(message(
            with(from_query(query, LIST_PUSH)?, &[("taskId", task)]),
            t,
        )?),
        Route::GetPushConfig(task, id) => Call::GetPushConfig(message(
            with(Map::new(), &[("taskId", task), ("id", id)]),
            t,
        )?),
        Route::DeletePushConfig(task, id) => Call::DeletePushConfig(message(
            with(Map::new(), &[("taskId", task), ("id", id)]),
            t,
        )?),
        Route::ExtendedCard => Call::GetExtendedAgentCard(message(Map::new(), t)?),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use switchyard::pb::a2a::TaskState;

    use super::*;
    use crate::query::parse_query;

    fn path(route: Route) -> RestPath {
        RestPath {
            tenant: String::new(),
            route,
        }
    }

    #[test]
    fn list_tasks_query_is_typed() {
        let q = parse_query(
            "contextId=c1&status=TASK_STATE_WORKING&page_size=5&includeArtifacts=true&x=1",
        )
        .expect("query");
        match call(&path(Route::ListTasks), &q, b"").expect("call") {
            Call::ListTasks(r) => {
                assert_eq!(r.context_id, "c1");
                assert_eq!(r.status, TaskState::Working as i32);
                assert_eq!(r.page_size, Some(5));
                assert_eq!(r.include_artifacts, Some(true));
            }
            other => panic!("{other:?}"),
        }
        let q = parse_query("status=2").expect("query");
        assert!(call(&path(Route::ListTasks), &q, b"").is_ok());
        let q = parse_query("pageSize=many").expect("query");
        let e = call(&path(Route::ListTasks), &q, b"").expect_err("not an int");
        assert!(e.to_string().contains("pageSize"), "{e}");
    }

    #[test]
    fn the_path_wins_over_the_body() {
        let c = call(
            &path(Route::CancelTask("t1".into())),
            &[],
            br#"{"id":"other"}"#,
        )
        .expect("call");
        assert!(matches!(c, Call::CancelTask(r) if r.id == "t1"));
        let tenant = RestPath {
            tenant: "acme".into(),
            route: Route::Subscribe("t".into()),
        };
        let c = call(&tenant, &[], b"").expect("call");
        assert!(matches!(c, Call::SubscribeToTask(r) if r.tenant == "acme" && r.id == "t"));
    }

    #[test]
    fn bodies_must_be_json_objects() {
        let send = path(Route::SendMessage);
        assert!(matches!(call(&send, &[], b"{"), Err(ApiError::Parse(_))));
        assert!(matches!(
            call(&send, &[], b"[1]"),
            Err(ApiError::InvalidParams(_))
        ));
        assert!(matches!(
            call(&send, &[], br#"{"message":{"role":17.5}}"#),
            Err(ApiError::InvalidParams(_))
        ));
        assert!(call(&send, &[], b"  ").is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_queries_and_bodies_never_panic(
            q in "[a-zA-Z_=&%0-9.+-]{0,60}",
            body in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            if let Ok(query) = parse_query(&q) {
                for route in [Route::ListTasks, Route::GetTask("t".into()), Route::ListPushConfigs("t".into())] {
                    let _ = call(&path(route), &query, &body);
                }
            }
            let _ = call(&path(Route::SendMessage), &[], &body);
        }
    }
}
