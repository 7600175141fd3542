//! `/mcp`: every agent skill as an MCP tool over MCP's streamable HTTP transport
//! ([`switchyard_mcp`]). Sessions end when the gateway drains. `Host` must be a loopback name
//! or the host of the public URL (DNS-rebinding protection of the MCP transport).

use axum::Router;
use switchyard_mcp::{McpConfig, MeshTools};

use crate::app::AppState;

/// The path of the MCP endpoint.
pub(crate) const PATH: &str = "/mcp";

/// The router serving [`PATH`].
pub(crate) fn router<S: Clone + Send + Sync + 'static>(state: &AppState) -> Router<S> {
    let tools = MeshTools::start(
        state.registry.clone(),
        McpConfig {
            refresh_interval: state.config.mcp_refresh_interval,
            policy: state.config.auth.policy.clone(),
            ..Default::default()
        },
        state.draining.clone(),
    );
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(Into::into).to_vec();
    if let Some(host) = state
        .base_url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(|h| h.trim_matches(['[', ']']).to_owned()))
    {
        hosts.push(host);
    }
    let service = switchyard_mcp::http_service(tools, hosts, state.draining.child_token());
    Router::new().route_service(PATH, service)
}
