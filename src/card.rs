//! Agent cards: a builder for agent authors, and the completion the runtime applies so that a
//! card states exactly the interfaces and capabilities the serving path has (A2A v1.0,
//! "Agent card": a card must never advertise what the server cannot do).

use crate::{
    pb::a2a::{AgentCapabilities, AgentCard, AgentExtension, AgentInterface, AgentSkill},
    task::SEQUENCE_EXTENSION_URI,
};

/// The A2A protocol version this crate implements, as cards and headers carry it.
pub const PROTOCOL_VERSION: &str = "1.0";

/// Where A2A clients look for an agent's card (A2A v1.0, "Agent discovery"). Every agent
/// serves its card there on its own port (HTTP/1.1 and HTTP/2).
pub const WELL_KNOWN_CARD_PATH: &str = "/.well-known/agent-card.json";

/// Binding names of `AgentInterface.protocol_binding`.
pub mod binding {
    /// The gRPC binding (`lf.a2a.v1.A2AService`); its URL is `host:port`.
    pub const GRPC: &str = "GRPC";
    /// JSON-RPC 2.0 over HTTP.
    pub const JSONRPC: &str = "JSONRPC";
    /// HTTP+JSON (REST).
    pub const HTTP_JSON: &str = "HTTP+JSON";
}

/// Starts a card with a name and a description; see [`CardBuilder`].
pub fn builder(name: impl Into<String>, description: impl Into<String>) -> CardBuilder {
    CardBuilder {
        card: AgentCard {
            name: name.into(),
            description: description.into(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            default_input_modes: vec!["text/plain".into()],
            default_output_modes: vec!["text/plain".into()],
            capabilities: Some(AgentCapabilities {
                streaming: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// Builds an [`AgentCard`]. Defaults: version of this crate, `text/plain` in and out,
/// streaming on.
#[derive(Debug, Clone)]
pub struct CardBuilder {
    card: AgentCard,
}

impl CardBuilder {
    /// The agent's version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.card.version = version.into();
        self
    }

    /// Media types the agent accepts by default.
    pub fn input_modes<S: Into<String>>(mut self, modes: impl IntoIterator<Item = S>) -> Self {
        self.card.default_input_modes = modes.into_iter().map(Into::into).collect();
        self
    }

    /// Media types the agent produces by default.
    pub fn output_modes<S: Into<String>>(mut self, modes: impl IntoIterator<Item = S>) -> Self {
        self.card.default_output_modes = modes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the agent streams (`capabilities.streaming`); on by default.
    pub fn streaming(mut self, on: bool) -> Self {
        self.card
            .capabilities
            .get_or_insert_with(Default::default)
            .streaming = Some(on);
        self
    }

    /// Adds a skill.
    pub fn skill(mut self, skill: AgentSkill) -> Self {
        self.card.skills.push(skill);
        self
    }

    /// URL of the agent's documentation.
    pub fn documentation_url(mut self, url: impl Into<String>) -> Self {
        self.card.documentation_url = Some(url.into());
        self
    }

    /// The card.
    pub fn build(self) -> AgentCard {
        self.card
    }
}

/// A skill with an id, a name, a description, tags and example prompts.
pub fn skill<S: Into<String>>(
    id: impl Into<String>,
    name: impl Into<String>,
    description: impl Into<String>,
    tags: impl IntoIterator<Item = S>,
    examples: impl IntoIterator<Item = S>,
) -> AgentSkill {
    AgentSkill {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        tags: tags.into_iter().map(Into::into).collect(),
        examples: examples.into_iter().map(Into::into).collect(),
        ..Default::default()
    }
}

/// What the serving path supports, for [`complete`].
#[derive(Debug, Clone)]
pub(crate) struct Served {
    /// `host:port` of the gRPC listener as clients reach it.
    pub(crate) grpc_url: String,
    pub(crate) streaming: bool,
    pub(crate) push_notifications: bool,
    pub(crate) extended_card: bool,
}

/// The agent's card as served: its gRPC interface first (unless the agent listed its own),
/// capabilities set from what the server implements, and the sequence extension declared.
pub(crate) fn complete(mut card: AgentCard, served: &Served) -> AgentCard {
    if !card
        .supported_interfaces
        .iter()
        .any(|i| i.protocol_binding == binding::GRPC)
    {
        card.supported_interfaces.insert(
            0,
            AgentInterface {
                url: served.grpc_url.clone(),
                protocol_binding: binding::GRPC.into(),
                tenant: String::new(),
                protocol_version: PROTOCOL_VERSION.into(),
            },
        );
    }
    let caps = card.capabilities.get_or_insert_with(Default::default);
    caps.streaming = Some(served.streaming);
    caps.push_notifications = Some(served.push_notifications);
    caps.extended_agent_card = Some(served.extended_card);
    if !caps
        .extensions
        .iter()
        .any(|e| e.uri == SEQUENCE_EXTENSION_URI)
    {
        caps.extensions.push(AgentExtension {
            uri: SEQUENCE_EXTENSION_URI.into(),
            description: "Every task event carries its per-task sequence number in \
                          metadata[\"switchyard.sequence\"]; a subscription resumes after one \
                          with the last-event-id metadata (gRPC) or header (SSE)."
                .into(),
            required: false,
            params: None,
        });
    }
    if card.default_input_modes.is_empty() {
        card.default_input_modes.push("text/plain".into());
    }
    if card.default_output_modes.is_empty() {
        card.default_output_modes.push("text/plain".into());
    }
    card
}

/// The extended card as served: interfaces and capabilities of the public card where the
/// extended card leaves them out.
pub(crate) fn complete_extended(public: &AgentCard, mut extended: AgentCard) -> AgentCard {
    if extended.supported_interfaces.is_empty() {
        extended
            .supported_interfaces
            .clone_from(&public.supported_interfaces);
    }
    extended.capabilities.clone_from(&public.capabilities);
    extended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_states_what_is_served() {
        let card = builder("a", "b").streaming(true).build();
        let served = Served {
            grpc_url: "127.0.0.1:7000".into(),
            streaming: false,
            push_notifications: false,
            extended_card: false,
        };
        let c = complete(card, &served);
        assert_eq!(c.supported_interfaces[0].url, "127.0.0.1:7000");
        assert_eq!(c.supported_interfaces[0].protocol_binding, "GRPC");
        assert_eq!(c.supported_interfaces[0].protocol_version, "1.0");
        let caps = c.capabilities.expect("capabilities");
        assert_eq!(caps.streaming, Some(false));
        assert_eq!(caps.push_notifications, Some(false));
        assert_eq!(caps.extensions.len(), 1);
        let again = complete(
            AgentCard {
                capabilities: Some(caps),
                ..Default::default()
            },
            &served,
        );
        assert_eq!(again.capabilities.expect("caps").extensions.len(), 1);
    }
}
