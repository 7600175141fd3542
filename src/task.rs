//! Task rules and helpers over the generated A2A types: states, timestamps, history, how events
//! fold into a task snapshot, and the per-task sequence number carried in event metadata.

use std::time::{SystemTime, UNIX_EPOCH};

use pbjson_types::{Struct, Value, value::Kind};

use crate::pb::{
    Timestamp,
    a2a::{Artifact, Message, Part, Role, StreamResponse, Task, TaskState, part, stream_response},
};

/// Metadata key under which every task event (and the first Task snapshot of a stream) carries
/// its per-task sequence number, 1 for the task's creation and +1 per event.
pub const SEQUENCE_KEY: &str = "switchyard.sequence";

/// URI of the A2A extension that declares [`SEQUENCE_KEY`] in agent cards.
pub const SEQUENCE_EXTENSION_URI: &str = "https://switchyard.dev/a2a/ext/sequence/v1";

impl TaskState {
    /// COMPLETED, FAILED, CANCELED or REJECTED: the task will never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Canceled | Self::Rejected
        )
    }

    /// INPUT_REQUIRED or AUTH_REQUIRED: the task waits for the client.
    pub fn is_interrupted(self) -> bool {
        matches!(self, Self::InputRequired | Self::AuthRequired)
    }

    /// Terminal or interrupted: a blocking call returns, a stream ends.
    pub fn settles(self) -> bool {
        self.is_terminal() || self.is_interrupted()
    }
}

impl Task {
    /// The task's current state (UNSPECIFIED when the status is missing or unknown).
    pub fn state(&self) -> TaskState {
        self.status
            .as_ref()
            .and_then(|s| TaskState::try_from(s.state).ok())
            .unwrap_or(TaskState::Unspecified)
    }

    /// Microseconds since the Unix epoch of the status timestamp (0 when missing).
    pub fn status_micros(&self) -> i64 {
        self.status
            .as_ref()
            .and_then(|s| s.timestamp.as_ref())
            .map_or(0, timestamp_micros)
    }
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: Some(part::Content::Text(text.into())),
            ..Default::default()
        }
    }

    /// A structured-data part (media type `application/json`).
    pub fn data(value: serde_json::Value) -> Self {
        Self {
            content: Some(part::Content::Data(json_to_value(value))),
            media_type: "application/json".into(),
            ..Default::default()
        }
    }

    /// A raw-bytes part, e.g. an inline file.
    pub fn raw(bytes: impl Into<Vec<u8>>, media_type: impl Into<String>) -> Self {
        Self {
            content: Some(part::Content::Raw(bytes.into())),
            media_type: media_type.into(),
            ..Default::default()
        }
    }

    /// The text of a text part.
    pub fn as_text(&self) -> Option<&str> {
        match &self.content {
            Some(part::Content::Text(t)) => Some(t),
            _ => None,
        }
    }
}

impl Message {
    /// A user message with a fresh `message_id` and the given parts.
    pub fn user(parts: Vec<Part>) -> Self {
        Self {
            message_id: new_id(),
            role: Role::User as i32,
            parts,
            ..Default::default()
        }
    }

    /// A user message holding one text part.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self::user(vec![Part::text(text)])
    }

    /// An agent message holding one text part.
    pub fn agent_text(text: impl Into<String>) -> Self {
        Self {
            message_id: new_id(),
            role: Role::Agent as i32,
            parts: vec![Part::text(text)],
            ..Default::default()
        }
    }

    /// The text parts of the message, joined by newlines.
    pub fn text(&self) -> String {
        join_text(&self.parts)
    }
}

impl Artifact {
    /// An artifact with a fresh id, a name and parts.
    pub fn new(name: impl Into<String>, parts: Vec<Part>) -> Self {
        Self {
            artifact_id: new_id(),
            name: name.into(),
            parts,
            ..Default::default()
        }
    }

    /// The text parts of the artifact, joined by newlines.
    pub fn text(&self) -> String {
        join_text(&self.parts)
    }
}

fn join_text(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(Part::as_text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fresh identifier: a UUID v7 (RFC 9562), hyphenated. Version 7 ids start with a
/// millisecond timestamp, so ids made later sort later and the store's indexes grow at one end
/// instead of at random pages. The 74 random bits come from a thread-local CSPRNG (no system
/// call per id).
pub fn new_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random: [u8; 10] = rand::random();
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    // Encoded straight into the string: `to_string` goes through `fmt` (~1.3k instructions
    // per id against ~0.2k).
    let mut buf = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

/// The current time as a protobuf timestamp.
pub fn now_timestamp() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Microseconds since the Unix epoch of `ts`.
pub fn timestamp_micros(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos / 1_000))
}

/// Converts JSON into a protobuf `Value`.
pub fn json_to_value(value: serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(pbjson_types::ListValue {
            values: a.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(Struct {
            fields: o.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

/// Converts a protobuf `Value` into JSON.
pub fn value_to_json(value: &Value) -> serde_json::Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => (*b).into(),
        // Integral values within ±2^53 come back as JSON integers, as they were most likely sent.
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0 => {
            serde_json::Value::from(*n as i64)
        }
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Some(Kind::StringValue(s)) => s.clone().into(),
        Some(Kind::ListValue(l)) => l.values.iter().map(value_to_json).collect(),
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

/// Converts a protobuf `Struct` into a JSON object.
pub fn struct_to_json(s: &Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

/// The sequence number an event carries in its metadata under [`SEQUENCE_KEY`].
pub fn sequence_of(event: &StreamResponse) -> Option<u64> {
    let metadata = match event.payload.as_ref()? {
        stream_response::Payload::Task(t) => t.metadata.as_ref(),
        stream_response::Payload::Message(m) => m.metadata.as_ref(),
        stream_response::Payload::StatusUpdate(u) => u.metadata.as_ref(),
        stream_response::Payload::ArtifactUpdate(u) => u.metadata.as_ref(),
    }?;
    match metadata.fields.get(SEQUENCE_KEY)?.kind {
        Some(Kind::NumberValue(n)) if n >= 1.0 && n.fract() == 0.0 => Some(n as u64),
        _ => None,
    }
}

/// Writes `seq` into `metadata` under [`SEQUENCE_KEY`].
pub(crate) fn set_sequence(metadata: &mut Option<Struct>, seq: u64) {
    metadata.get_or_insert_with(Struct::default).fields.insert(
        SEQUENCE_KEY.to_owned(),
        Value {
            kind: Some(Kind::NumberValue(seq as f64)),
        },
    );
}

/// Removes [`SEQUENCE_KEY`] from `metadata`, dropping the struct when it becomes empty.
pub(crate) fn clear_sequence(metadata: &mut Option<Struct>) {
    if let Some(m) = metadata {
        m.fields.remove(SEQUENCE_KEY);
        if m.fields.is_empty() {
            *metadata = None;
        }
    }
}

/// Keeps at most the `history_length` most recent history messages: `None` keeps all, `0` none.
pub fn trim_history(task: &mut Task, history_length: Option<i32>) {
    if let Some(n) = history_length {
        let n = usize::try_from(n.max(0)).unwrap_or(0);
        let len = task.history.len();
        if len > n {
            task.history.drain(..len - n);
        }
    }
}

/// Folds one event into a task snapshot, as every A2A server does:
/// - `task` replaces the snapshot (minus the sequence metadata);
/// - `status_update` replaces the status; the message of the status it replaces moves into the
///   history;
/// - `artifact_update` adds the artifact, replaces the one with the same id, or (`append`)
///   extends its parts;
/// - `message` is added to the history.
pub fn apply(snapshot: &mut Task, event: &StreamResponse) {
    match &event.payload {
        Some(stream_response::Payload::Task(t)) => {
            *snapshot = t.clone();
            clear_sequence(&mut snapshot.metadata);
        }
        Some(stream_response::Payload::StatusUpdate(u)) => {
            if let Some(old) = snapshot.status.take()
                && let Some(msg) = old.message
            {
                snapshot.history.push(msg);
            }
            snapshot.status = u.status.clone();
        }
        Some(stream_response::Payload::ArtifactUpdate(u)) => {
            let Some(artifact) = &u.artifact else { return };
            let existing = snapshot
                .artifacts
                .iter_mut()
                .find(|a| a.artifact_id == artifact.artifact_id);
            match existing {
                Some(a) if u.append => a.parts.extend(artifact.parts.iter().cloned()),
                Some(a) => *a = artifact.clone(),
                None => snapshot.artifacts.push(artifact.clone()),
            }
        }
        Some(stream_response::Payload::Message(m)) => snapshot.history.push(m.clone()),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::a2a::{TaskArtifactUpdateEvent, TaskStatus, TaskStatusUpdateEvent};

    fn status(state: TaskState, msg: Option<Message>) -> StreamResponse {
        StreamResponse {
            payload: Some(stream_response::Payload::StatusUpdate(
                TaskStatusUpdateEvent {
                    status: Some(TaskStatus {
                        state: state as i32,
                        message: msg,
                        timestamp: None,
                    }),
                    ..Default::default()
                },
            )),
        }
    }

    fn chunk(id: &str, text: &str, append: bool) -> StreamResponse {
        StreamResponse {
            payload: Some(stream_response::Payload::ArtifactUpdate(
                TaskArtifactUpdateEvent {
                    artifact: Some(Artifact {
                        artifact_id: id.into(),
                        parts: vec![Part::text(text)],
                        ..Default::default()
                    }),
                    append,
                    ..Default::default()
                },
            )),
        }
    }

    #[test]
    fn status_messages_move_into_history() {
        let mut t = Task::default();
        apply(
            &mut t,
            &status(TaskState::InputRequired, Some(Message::agent_text("name?"))),
        );
        apply(&mut t, &status(TaskState::Working, None));
        assert_eq!(t.state(), TaskState::Working);
        assert_eq!(t.history.len(), 1);
        assert_eq!(t.history[0].text(), "name?");
    }

    #[test]
    fn artifact_chunks_append_and_replace() {
        let mut t = Task::default();
        apply(&mut t, &chunk("a", "one", false));
        apply(&mut t, &chunk("a", "two", true));
        apply(&mut t, &chunk("b", "x", false));
        assert_eq!(t.artifacts[0].text(), "one\ntwo");
        apply(&mut t, &chunk("a", "new", false));
        assert_eq!(t.artifacts[0].text(), "new");
        assert_eq!(t.artifacts.len(), 2);
    }

    #[test]
    fn history_trimming_keeps_most_recent() {
        let mut t = Task {
            history: (0..5).map(|i| Message::user_text(i.to_string())).collect(),
            ..Default::default()
        };
        trim_history(&mut t, None);
        assert_eq!(t.history.len(), 5);
        trim_history(&mut t, Some(2));
        assert_eq!(
            t.history.iter().map(Message::text).collect::<Vec<_>>(),
            ["3", "4"]
        );
        trim_history(&mut t, Some(0));
        assert!(t.history.is_empty());
    }

    #[test]
    fn sequence_round_trips_through_metadata() {
        let mut e = status(TaskState::Working, None);
        let Some(stream_response::Payload::StatusUpdate(u)) = &mut e.payload else {
            unreachable!()
        };
        set_sequence(&mut u.metadata, 42);
        assert_eq!(sequence_of(&e), Some(42));
        let mut t = Task::default();
        set_sequence(&mut t.metadata, 7);
        clear_sequence(&mut t.metadata);
        assert!(t.metadata.is_none());
    }

    #[test]
    fn ids_are_version_7_and_sort_by_time() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        let parsed = uuid::Uuid::parse_str(&a).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7);
        assert!(a < b, "{a} < {b}");
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn json_and_value_convert_both_ways() {
        let json = serde_json::json!({"a": [1.5, "x", null, true], "b": {"c": 2, "d": -7}});
        assert_eq!(value_to_json(&json_to_value(json.clone())), json);
        assert_eq!(
            value_to_json(&json_to_value(serde_json::json!(3.0))),
            serde_json::json!(3)
        );
    }
}
