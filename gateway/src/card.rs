//! Agent cards as the gateway serves them (A2A v1.0, "Agent discovery"): each agent's card
//! with its interfaces pointing at the gateway, the directory of every agent (`GET /agents`),
//! and the gateway's own card (`GET /.well-known/agent-card.json`). Every document has a
//! strong `ETag` (a hash of the body), `Last-Modified` (when that body was first served) and
//! `Cache-Control`; `If-None-Match`, or `If-Modified-Since` without it, answers 304.

use axum::{
    extract::{Path, State},
    response::Response,
};
use http::HeaderMap;
use serde_json::{Value, json};
use switchyard::{
    AgentRef,
    card::{PROTOCOL_VERSION, WELL_KNOWN_CARD_PATH, binding},
    pb::a2a::{AgentCard, AgentInterface, AgentSkill},
    registry::CardError,
};

use crate::{
    app::AppState,
    error::{ApiError, Failure},
};

/// `card` with `supportedInterfaces` pointing at the gateway: JSON-RPC, HTTP+JSON and gRPC at
/// `<base>/agents/<name>` (gRPC through the gateway's gRPC front: the path prefix names the
/// agent, since A2A gRPC clients cannot always add the `x-switchyard-agent` header; clients
/// that dial a bare `host:port` send that header instead), then the agent's own gRPC address
/// only when its configuration makes it public (`public_grpc`); `protocolVersion` 1.0 on each.
pub(crate) fn rewrite(
    mut card: AgentCard,
    agent: &AgentRef,
    base: &str,
    security: &CardSecurity,
) -> AgentCard {
    security.apply(&mut card);
    let url = format!("{base}/agents/{}", agent.name());
    let interface = |url: String, binding: &str| AgentInterface {
        url,
        protocol_binding: binding.to_owned(),
        tenant: String::new(),
        protocol_version: PROTOCOL_VERSION.to_owned(),
    };
    let own_grpc = card
        .supported_interfaces
        .iter()
        .find(|i| i.protocol_binding == binding::GRPC)
        .map(|i| i.url.clone())
        .or_else(|| agent.config().endpoints.first().cloned());
    let mut interfaces = vec![
        interface(url.clone(), binding::JSONRPC),
        interface(url.clone(), binding::HTTP_JSON),
        interface(url, binding::GRPC),
    ];
    if agent.config().public_grpc
        && let Some(grpc) = own_grpc
    {
        interfaces.push(interface(grpc, binding::GRPC));
    }
    card.supported_interfaces = interfaces;
    card
}

/// The gRPC URL of the gateway itself (the header form, no path): `host:port` as A2A's gRPC
/// binding writes it when the public URL has no path (the port from the scheme when it names
/// none), else the public URL itself (a gateway mounted under a path prefix).
fn grpc_target(base: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if rest.contains('/') {
        return base.to_owned();
    }
    let has_port = match rest.rsplit_once(':') {
        Some((host, port)) => !port.is_empty() && (!host.contains('[') || host.ends_with(']')),
        None => false,
    };
    if has_port {
        rest.to_owned()
    } else if scheme == "https" {
        format!("{rest}:443")
    } else {
        format!("{rest}:80")
    }
}

/// The card as JSON, with the fields A2A requires present even when empty.
pub(crate) fn document(card: &AgentCard) -> Value {
    let mut v = serde_json::to_value(card).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        for key in ["name", "description", "version"] {
            o.entry(key).or_insert_with(|| json!(""));
        }
        for key in [
            "supportedInterfaces",
            "defaultInputModes",
            "defaultOutputModes",
            "skills",
        ] {
            o.entry(key).or_insert_with(|| json!([]));
        }
        o.entry("capabilities").or_insert_with(|| json!({}));
    }
    v
}

/// The JSON document served at `path`, with `ETag`, `Last-Modified` and `Cache-Control:
/// max-age=<max_age>`; 304 when the client has it already (see [`switchyard::server::cached`]).
pub(crate) fn cached(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    document: &Value,
    max_age: u64,
) -> Response {
    let body = document.to_string();
    let etag = switchyard::server::cached::etag(body.as_bytes());
    let last_modified = state.modified.last_modified(path, &etag);
    switchyard::server::cached::json(headers, &etag, last_modified, body.into(), max_age)
}

/// The agent's card, fetched when the registry does not hold it yet.
async fn card_of(state: &AppState, agent: &AgentRef) -> Result<AgentCard, ApiError> {
    if let Some(card) = agent.card() {
        return Ok((*card).clone());
    }
    match agent.refresh_card(state.config.card_timeout).await {
        Ok(card) => Ok((*card).clone()),
        Err(e @ CardError::NoCardUrl { .. }) => Err(ApiError::CardNotConfigured {
            agent: agent.name().to_owned(),
            hint: e.to_string(),
        }),
        Err(e) => Err(ApiError::Upstream {
            agent: agent.name().to_owned(),
            status: tonic::Status::unavailable(format!("fetching the card: {e}")),
        }),
    }
}

/// `GET /agents/{agent}/.well-known/agent-card.json`.
pub(crate) async fn agent_card(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let agent = state.agent(&name).map_err(Failure::rest)?;
    let card = card_of(&state, &agent).await.map_err(Failure::rest)?;
    let card = rewrite(card, &agent, &state.base_url, &state.card_security);
    Ok(cached(
        &state,
        &format!("/agents/{name}{WELL_KNOWN_CARD_PATH}"),
        &headers,
        &document(&card),
        state.config.card_max_age.as_secs(),
    ))
}

/// One entry of the directory.
fn entry(agent: &AgentRef, base: &str) -> Value {
    let url = format!("{base}/agents/{}", agent.name());
    let card = agent.card();
    let skills: Vec<&AgentSkill> = card.iter().flat_map(|c| c.skills.iter()).collect();
    json!({
        "name": agent.name(),
        "description": card.as_ref().map_or("", |c| c.description.as_str()),
        "url": url,
        "cardUrl": format!("{url}{WELL_KNOWN_CARD_PATH}"),
        // Its card is loaded and some endpoint passes its health checks and is not ejected.
        "available": card.is_some() && agent.is_available(),
        "streaming": card.as_ref().and_then(|c| c.capabilities.as_ref()).and_then(|c| c.streaming).unwrap_or(false),
        "skills": skills,
    })
}

/// Fetches, in the background, the cards the registry does not hold yet (an agent that was
/// down at start shows up in the directory once it is back).
fn refresh_missing(state: &AppState) {
    for agent in state.registry.agents() {
        if agent.card().is_none() {
            let timeout = state.config.card_timeout;
            tokio::spawn(async move {
                let _ = agent.refresh_card(timeout).await;
            });
        }
    }
}

/// `GET /agents`: every agent with its URL, card URL and skills.
pub(crate) async fn directory(State(state): State<AppState>, headers: HeaderMap) -> Response {
    refresh_missing(&state);
    let agents: Vec<Value> = state
        .registry
        .agents()
        .iter()
        .map(|a| entry(a, &state.base_url))
        .collect();
    cached(&state, "/agents", &headers, &json!({ "agents": agents }), 0)
}

/// `GET /.well-known/agent-card.json`: the gateway itself, one skill per agent.
pub(crate) async fn gateway_card(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = &state.base_url;
    let skills = state
        .registry
        .agents()
        .iter()
        .map(|a| {
            let card = a.card();
            let mut tags: Vec<String> = card
                .iter()
                .flat_map(|c| c.skills.iter().flat_map(|s| s.tags.iter().cloned()))
                .collect();
            tags.sort();
            tags.dedup();
            AgentSkill {
                id: a.name().to_owned(),
                name: card
                    .as_ref()
                    .map_or_else(|| a.name().to_owned(), |c| c.name.clone()),
                description: format!(
                    "{} (card: {base}/agents/{}{WELL_KNOWN_CARD_PATH})",
                    card.as_ref().map_or("", |c| c.description.as_str()),
                    a.name()
                ),
                tags,
                ..Default::default()
            }
        })
        .collect();
    let mut card = AgentCard {
        name: "switchyard-gateway".into(),
        description: format!(
            "The Switchyard gateway: A2A JSON-RPC, A2A REST, SSE, WebSocket, native gRPC and \
             gRPC-Web for every agent of the mesh. Each agent's card is at \
             {base}/agents/{{agent}}{WELL_KNOWN_CARD_PATH}; the directory is at {base}/agents. \
             gRPC calls name their agent with the metadata header x-switchyard-agent, or with \
             the path prefix /agents/{{agent}}."
        ),
        supported_interfaces: vec![AgentInterface {
            url: grpc_target(base),
            protocol_binding: binding::GRPC.to_owned(),
            tenant: String::new(),
            protocol_version: PROTOCOL_VERSION.to_owned(),
        }],
        version: env!("CARGO_PKG_VERSION").into(),
        default_input_modes: vec!["application/json".into()],
        default_output_modes: vec!["application/json".into()],
        skills,
        ..Default::default()
    };
    state.card_security.apply(&mut card);
    cached(
        &state,
        WELL_KNOWN_CARD_PATH,
        &headers,
        &document(&card),
        state.config.card_max_age.as_secs(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_grpc_url_is_host_and_port() {
        assert_eq!(grpc_target("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(
            grpc_target("https://agents.example.com"),
            "agents.example.com:443"
        );
        assert_eq!(grpc_target("http://[::1]"), "[::1]:80");
        assert_eq!(grpc_target("http://[::1]:9"), "[::1]:9");
        assert_eq!(
            grpc_target("https://example.com/mesh"),
            "https://example.com/mesh"
        );
    }

    #[test]
    fn required_fields_are_present_even_when_empty() {
        let v = document(&AgentCard::default());
        for key in [
            "name",
            "supportedInterfaces",
            "skills",
            "capabilities",
            "defaultInputModes",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }
}

/// The `securitySchemes` and `securityRequirements` of the cards the gateway serves: what its
/// authentication accepts (A2A v1.0 §4.5: `X-API-Key` as an `apiKey` scheme, bearer JWTs as
/// an `httpAuth` Bearer scheme; any one of them suffices). With authentication off the
/// agent's own declarations pass unchanged.
#[derive(Debug, Default)]
pub(crate) struct CardSecurity {
    schemes: Vec<(String, switchyard::pb::a2a::SecurityScheme)>,
}

impl CardSecurity {
    /// The schemes of `auth`.
    pub(crate) fn of(auth: &crate::AuthConfig) -> Self {
        use switchyard::pb::a2a::{
            ApiKeySecurityScheme, HttpAuthSecurityScheme, SecurityScheme, security_scheme::Scheme,
        };
        let mut schemes = Vec::new();
        if !auth.api_keys.is_empty() {
            schemes.push((
                "apiKey".to_owned(),
                SecurityScheme {
                    scheme: Some(Scheme::ApiKeySecurityScheme(ApiKeySecurityScheme {
                        description: "A named API key issued by the mesh operator (also \
                                      accepted as Authorization: Bearer <key>)"
                            .into(),
                        location: "header".into(),
                        name: "X-API-Key".into(),
                    })),
                },
            ));
        }
        if auth.jwt.is_some() {
            schemes.push((
                "bearer".to_owned(),
                SecurityScheme {
                    scheme: Some(Scheme::HttpAuthSecurityScheme(HttpAuthSecurityScheme {
                        description: "A JWT from the mesh's identity provider".into(),
                        scheme: "Bearer".into(),
                        bearer_format: "JWT".into(),
                    })),
                },
            ));
        }
        Self { schemes }
    }

    /// Sets the card's schemes and requirements (when authentication is on).
    fn apply(&self, card: &mut AgentCard) {
        use switchyard::pb::a2a::SecurityRequirement;
        if self.schemes.is_empty() {
            return;
        }
        card.security_schemes = self.schemes.iter().cloned().collect();
        card.security_requirements = self
            .schemes
            .iter()
            .map(|(name, _)| SecurityRequirement {
                schemes: [(name.clone(), Default::default())].into_iter().collect(),
            })
            .collect();
    }
}
