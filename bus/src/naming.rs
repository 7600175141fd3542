//! The naming scheme of addresses (subjects, queues, stream keys, topics) and groups.
//!
//! | pattern          | address                          | group(s)                                  |
//! |------------------|----------------------------------|-------------------------------------------|
//! | request/reply    | `<prefix>.agent.<agent>`         | [`BRIDGE_GROUP`] (the agent's bridges)    |
//! | work queue       | `<prefix>.agent.<agent>`         | [`BRIDGE_GROUP`]: competing bridges       |
//! | replies          | `<prefix>.reply.<uuid>`          | none: an ephemeral subscription           |
//! | dead letters     | `<address>.dlq`                  | [`DEAD_LETTER_GROUP`]                     |
//! | event stream     | `<prefix>.events.<agent>`        | [`REPLAY_GROUP`] keeps it; readers replay |
//! | publish/subscribe| `<prefix>.topic.<topic>`         | `agent-<agent>`: one group per subscriber |
//!
//! Transports map an address as is: a NATS subject (stream `SY_<address>`), an AMQP routing
//! key on `amq.topic` (queue `<address>@<group>`), a Redis stream key, an MQTT topic with `.`
//! replaced by `/`. The default prefix is [`PREFIX`].

/// The default prefix.
pub const PREFIX: &str = "switchyard";
/// The group of an agent's bridges.
pub const BRIDGE_GROUP: &str = "bridge";
/// The group that keeps dead letters until someone reads them.
pub const DEAD_LETTER_GROUP: &str = "dlq";
/// The group that keeps an event stream for replay.
pub const REPLAY_GROUP: &str = "replay";

/// Requests for `agent`.
pub fn agent(prefix: &str, agent: &str) -> String {
    format!("{prefix}.agent.{agent}")
}

/// The dead-letter address of `address`.
pub fn dead_letter(address: &str) -> String {
    format!("{address}.dlq")
}

/// The task events of `agent`.
pub fn events(prefix: &str, agent: &str) -> String {
    format!("{prefix}.events.{agent}")
}

/// Whether `address` is an event stream ([`events`]: its next-to-last segment is `events`).
pub fn is_events(address: &str) -> bool {
    address.rsplit('.').nth(1) == Some("events")
}

/// A publish/subscribe topic.
pub fn topic(prefix: &str, topic: &str) -> String {
    format!("{prefix}.topic.{topic}")
}

/// The group of `agent`'s bridge on a topic.
pub fn topic_group(agent: &str) -> String {
    format!("agent-{agent}")
}

/// A fresh reply address.
pub fn reply(prefix: &str) -> String {
    format!("{prefix}.reply.{}", uuid::Uuid::new_v4().simple())
}
