//! The REST route parser: method + the path below `/agents/{agent}/` → [`Route`] (A2A v1.0,
//! HTTP+JSON binding), with an optional leading `{tenant}` segment.
//!
//! Segments are percent-decoded one by one, so a task id may hold an encoded `/`. The verb of
//! `/tasks/{id}:cancel` and `/tasks/{id}:subscribe` is the suffix after the last `:`; a
//! segment without a known verb is all id. Routes without a tenant win over routes with one
//! (`/tasks/tasks` is the task called `tasks`).

use http::Method;

use crate::{error::ApiError, query::percent_decode};

/// A REST route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    SendMessage,
    StreamMessage,
    ListTasks,
    GetTask(String),
    CancelTask(String),
    Subscribe(String),
    CreatePushConfig(String),
    ListPushConfigs(String),
    GetPushConfig(String, String),
    DeletePushConfig(String, String),
    ExtendedCard,
}

/// A parsed request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RestPath {
    pub(crate) tenant: String,
    pub(crate) route: Route,
}

/// A path shape: the route if the method fits, else the methods it takes.
type Matched = Result<Route, &'static str>;

fn shape(method: &Method, segments: &[String]) -> Option<Matched> {
    let is = |m: &Method| method == m;
    let only = |m: Method, allowed: &'static str, route: Route| {
        Some(if is(&m) { Ok(route) } else { Err(allowed) })
    };
    match segments {
        [s] if s == "message:send" => only(Method::POST, "POST", Route::SendMessage),
        [s] if s == "message:stream" => only(Method::POST, "POST", Route::StreamMessage),
        [s] if s == "tasks" => only(Method::GET, "GET", Route::ListTasks),
        [s] if s == "extendedAgentCard" => only(Method::GET, "GET", Route::ExtendedCard),
        [t, id] if t == "tasks" => {
            if let Some(id) = id.strip_suffix(":cancel") {
                only(Method::POST, "POST", Route::CancelTask(id.to_owned()))
            } else if let Some(id) = id.strip_suffix(":subscribe") {
                let route = Route::Subscribe(id.to_owned());
                Some(if is(&Method::GET) || is(&Method::POST) {
                    Ok(route)
                } else {
                    Err("GET, POST")
                })
            } else {
                only(Method::GET, "GET", Route::GetTask(id.clone()))
            }
        }
        [t, task, p] if t == "tasks" && p == "pushNotificationConfigs" => Some(match *method {
            Method::POST => Ok(Route::CreatePushConfig(task.clone())),
            Method::GET => Ok(Route::ListPushConfigs(task.clone())),
            _ => Err("GET, POST"),
        }),
        [t, task, p, id] if t == "tasks" && p == "pushNotificationConfigs" => Some(match *method {
            Method::GET => Ok(Route::GetPushConfig(task.clone(), id.clone())),
            Method::DELETE => Ok(Route::DeletePushConfig(task.clone(), id.clone())),
            _ => Err("GET, DELETE"),
        }),
        _ => None,
    }
}

/// The ids a route names must not be empty.
fn check_ids(route: &Route) -> Result<(), ApiError> {
    let empty = |what: &str| {
        Err(ApiError::InvalidParams(format!(
            "the {what} in the path is empty"
        )))
    };
    match route {
        Route::GetTask(id) | Route::CancelTask(id) | Route::Subscribe(id) if id.is_empty() => {
            empty("task id")
        }
        Route::CreatePushConfig(t) | Route::ListPushConfigs(t) if t.is_empty() => empty("task id"),
        Route::GetPushConfig(t, i) | Route::DeletePushConfig(t, i)
            if t.is_empty() || i.is_empty() =>
        {
            empty("task id or config id")
        }
        _ => Ok(()),
    }
}

/// Parses `rest`, the raw (still percent-encoded) path below `/agents/{agent}/`.
///
/// # Errors
/// [`ApiError::MethodNotFound`] (404) for no route, [`ApiError::MethodNotAllowed`] (405) for a
/// route that does not take `method`, [`ApiError::InvalidRequest`] for bad percent-encoding,
/// [`ApiError::InvalidParams`] for an empty id.
pub(crate) fn parse(method: &Method, rest: &str) -> Result<RestPath, ApiError> {
    let segments = rest
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect::<Result<Vec<_>, _>>()?;
    let found = shape(method, &segments)
        .map(|m| (String::new(), m))
        .or_else(|| {
            let (tenant, below) = segments.split_first()?;
            if tenant.is_empty() {
                return None;
            }
            shape(method, below).map(|m| (tenant.clone(), m))
        });
    match found {
        Some((tenant, Ok(route))) => {
            check_ids(&route)?;
            Ok(RestPath { tenant, route })
        }
        Some((_, Err(allowed))) => Err(ApiError::MethodNotAllowed {
            method: method.clone(),
            allowed,
        }),
        None => Err(ApiError::MethodNotFound(format!(
            "no A2A REST route {method} …/{rest}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn route(method: Method, path: &str) -> Route {
        parse(&method, path).expect(path).route
    }

    #[test]
    fn every_route() {
        assert_eq!(route(Method::POST, "message:send"), Route::SendMessage);
        assert_eq!(route(Method::POST, "message:stream"), Route::StreamMessage);
        assert_eq!(route(Method::GET, "tasks"), Route::ListTasks);
        assert_eq!(route(Method::GET, "tasks/t1"), Route::GetTask("t1".into()));
        assert_eq!(
            route(Method::POST, "tasks/t1:cancel"),
            Route::CancelTask("t1".into())
        );
        assert_eq!(
            route(Method::POST, "tasks/t1:subscribe"),
            Route::Subscribe("t1".into())
        );
        assert_eq!(
            route(Method::GET, "tasks/t1:subscribe"),
            Route::Subscribe("t1".into())
        );
        assert_eq!(
            route(Method::POST, "tasks/t1/pushNotificationConfigs"),
            Route::CreatePushConfig("t1".into())
        );
        assert_eq!(
            route(Method::GET, "tasks/t1/pushNotificationConfigs"),
            Route::ListPushConfigs("t1".into())
        );
        assert_eq!(
            route(Method::GET, "tasks/t1/pushNotificationConfigs/c"),
            Route::GetPushConfig("t1".into(), "c".into())
        );
        assert_eq!(
            route(Method::DELETE, "tasks/t1/pushNotificationConfigs/c"),
            Route::DeletePushConfig("t1".into(), "c".into())
        );
        assert_eq!(route(Method::GET, "extendedAgentCard"), Route::ExtendedCard);
    }

    #[test]
    fn tenants_ids_and_verbs() {
        let p = parse(&Method::GET, "acme/tasks/a%2Fb").expect("tenant");
        assert_eq!(
            (p.tenant.as_str(), p.route),
            ("acme", Route::GetTask("a/b".into()))
        );
        assert_eq!(
            route(Method::GET, "tasks/tasks"),
            Route::GetTask("tasks".into())
        );
        assert_eq!(
            route(Method::GET, "tasks/a:b"),
            Route::GetTask("a:b".into())
        );
        assert_eq!(
            route(Method::POST, "tasks/a:b:cancel"),
            Route::CancelTask("a:b".into())
        );
    }

    #[test]
    fn errors_are_specific() {
        let e = parse(&Method::GET, "message:send").expect_err("405");
        assert!(matches!(
            e,
            ApiError::MethodNotAllowed {
                allowed: "POST",
                ..
            }
        ));
        assert!(matches!(
            parse(&Method::GET, "nope"),
            Err(ApiError::MethodNotFound(_))
        ));
        assert!(matches!(
            parse(&Method::GET, "tasks/%zz"),
            Err(ApiError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse(&Method::GET, "tasks/"),
            Err(ApiError::InvalidParams(_))
        ));
        assert!(matches!(
            parse(&Method::GET, ""),
            Err(ApiError::MethodNotFound(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_paths_never_panic(
            path in "[a-zA-Z0-9:%/._~-]{0,40}",
            m in prop::sample::select(vec![Method::GET, Method::POST, Method::DELETE, Method::PUT]),
        ) {
            let _ = parse(&m, &path);
        }

        #[test]
        fn any_task_id_round_trips(id in "[^/]{1,20}") {
            let encoded: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
            let parsed = parse(&Method::GET, &format!("tasks/{encoded}"));
            if id.ends_with(":cancel") {
                let not_allowed = matches!(parsed, Err(ApiError::MethodNotAllowed { .. }));
                prop_assert!(not_allowed);
            } else if let Some(i) = id.strip_suffix(":subscribe") {
                if i.is_empty() {
                    prop_assert!(parsed.is_err());
                } else {
                    prop_assert_eq!(parsed.expect("valid").route, Route::Subscribe(i.to_owned()));
                }
            } else {
                prop_assert_eq!(parsed.expect("valid").route, Route::GetTask(id.clone()));
            }
        }
    }
}
