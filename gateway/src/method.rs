//! The 11 methods of `lf.a2a.v1.A2AService` as the HTTP bindings name them, and their
//! requests ([`Call`]) parsed from protobuf JSON (camelCase or snake_case field names,
//! unknown fields ignored, enums by name or number).

use serde_json::Value;
use switchyard::pb::a2a::{
    CancelTaskRequest, DeleteTaskPushNotificationConfigRequest, GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest, GetTaskRequest, ListTaskPushNotificationConfigsRequest,
    ListTasksRequest, SendMessageRequest, SubscribeToTaskRequest, TaskPushNotificationConfig,
};

/// A method of `A2AService` (A2A v1.0: the JSON-RPC method name is the RPC name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    SendMessage,
    SendStreamingMessage,
    GetTask,
    ListTasks,
    CancelTask,
    SubscribeToTask,
    CreateTaskPushNotificationConfig,
    GetTaskPushNotificationConfig,
    ListTaskPushNotificationConfigs,
    DeleteTaskPushNotificationConfig,
    GetExtendedAgentCard,
}

impl Method {
    /// Every method.
    pub(crate) const ALL: [Self; 11] = [
        Self::SendMessage,
        Self::SendStreamingMessage,
        Self::GetTask,
        Self::ListTasks,
        Self::CancelTask,
        Self::SubscribeToTask,
        Self::CreateTaskPushNotificationConfig,
        Self::GetTaskPushNotificationConfig,
        Self::ListTaskPushNotificationConfigs,
        Self::DeleteTaskPushNotificationConfig,
        Self::GetExtendedAgentCard,
    ];

    /// The method name, e.g. `SendMessage`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::SendMessage => "SendMessage",
            Self::SendStreamingMessage => "SendStreamingMessage",
            Self::GetTask => "GetTask",
            Self::ListTasks => "ListTasks",
            Self::CancelTask => "CancelTask",
            Self::SubscribeToTask => "SubscribeToTask",
            Self::CreateTaskPushNotificationConfig => "CreateTaskPushNotificationConfig",
            Self::GetTaskPushNotificationConfig => "GetTaskPushNotificationConfig",
            Self::ListTaskPushNotificationConfigs => "ListTaskPushNotificationConfigs",
            Self::DeleteTaskPushNotificationConfig => "DeleteTaskPushNotificationConfig",
            Self::GetExtendedAgentCard => "GetExtendedAgentCard",
        }
    }

    /// The method called `name` (exact, case-sensitive).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Parses `params` (a JSON object) into the method's request.
    ///
    /// # Errors
    /// The serde error: a wrong type, an unknown enum name, a malformed timestamp or bytes.
    pub(crate) fn call(self, params: Value) -> Result<Call, serde_json::Error> {
        use serde_json::from_value as p;
        Ok(match self {
            Self::SendMessage => Call::SendMessage(p(params)?),
            Self::SendStreamingMessage => Call::SendStreamingMessage(p(params)?),
            Self::GetTask => Call::GetTask(p(params)?),
            Self::ListTasks => Call::ListTasks(p(params)?),
            Self::CancelTask => Call::CancelTask(p(params)?),
            Self::SubscribeToTask => Call::SubscribeToTask(p(params)?),
            Self::CreateTaskPushNotificationConfig => Call::CreatePushConfig(p(params)?),
            Self::GetTaskPushNotificationConfig => Call::GetPushConfig(p(params)?),
            Self::ListTaskPushNotificationConfigs => Call::ListPushConfigs(p(params)?),
            Self::DeleteTaskPushNotificationConfig => Call::DeletePushConfig(p(params)?),
            Self::GetExtendedAgentCard => Call::GetExtendedAgentCard(p(params)?),
        })
    }
}

/// One request to an agent's `A2AService`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Call {
    SendMessage(SendMessageRequest),
    SendStreamingMessage(SendMessageRequest),
    GetTask(GetTaskRequest),
    ListTasks(ListTasksRequest),
    CancelTask(CancelTaskRequest),
    SubscribeToTask(SubscribeToTaskRequest),
    CreatePushConfig(TaskPushNotificationConfig),
    GetPushConfig(GetTaskPushNotificationConfigRequest),
    ListPushConfigs(ListTaskPushNotificationConfigsRequest),
    DeletePushConfig(DeleteTaskPushNotificationConfigRequest),
    GetExtendedAgentCard(GetExtendedAgentCardRequest),
}

impl Call {
    /// The method of this call.
    pub(crate) fn method(&self) -> Method {
        match self {
            Self::SendMessage(_) => Method::SendMessage,
            Self::SendStreamingMessage(_) => Method::SendStreamingMessage,
            Self::GetTask(_) => Method::GetTask,
            Self::ListTasks(_) => Method::ListTasks,
            Self::CancelTask(_) => Method::CancelTask,
            Self::SubscribeToTask(_) => Method::SubscribeToTask,
            Self::CreatePushConfig(_) => Method::CreateTaskPushNotificationConfig,
            Self::GetPushConfig(_) => Method::GetTaskPushNotificationConfig,
            Self::ListPushConfigs(_) => Method::ListTaskPushNotificationConfigs,
            Self::DeletePushConfig(_) => Method::DeleteTaskPushNotificationConfig,
            Self::GetExtendedAgentCard(_) => Method::GetExtendedAgentCard,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()), Some(m));
        }
        assert_eq!(Method::from_name("message/send"), None);
        assert_eq!(Method::from_name("sendMessage"), None);
    }

    #[test]
    fn params_accept_both_casings_and_ignore_unknown_fields() {
        let a = Method::GetTask
            .call(json!({"id": "t", "historyLength": 2, "whatever": [1]}))
            .expect("camelCase");
        let b = Method::GetTask
            .call(json!({"id": "t", "history_length": 2}))
            .expect("snake_case");
        assert_eq!(a, b);
        assert!(Method::GetTask.call(json!({"id": 5})).is_err());
        let l = Method::ListTasks
            .call(json!({"status": "TASK_STATE_WORKING"}))
            .expect("enum by name");
        let n = Method::ListTasks
            .call(json!({"status": 2}))
            .expect("enum by number");
        assert_eq!(l, n);
    }
}
