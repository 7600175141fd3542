//! `switchyard agents` and `switchyard health`.

use std::time::Duration;

use switchyard::pb::a2a::AgentCard;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{error::CliError, target::Mesh};

/// Prints every agent with its address and skills (cards fetched over gRPC).
///
/// # Errors
/// When no agent is known.
pub async fn agents(mesh: &Mesh, json: bool) -> Result<(), CliError> {
    let agents = mesh.agents();
    if agents.is_empty() {
        return Err(CliError::Config(
            "no agents: start the mesh with `switchyard up`, or configure agents".into(),
        ));
    }
    let cards = futures::future::join_all(
        agents
            .iter()
            .map(|a| a.refresh_card(mesh.timeout().min(Duration::from_secs(5)))),
    )
    .await;
    if json {
        let list: Vec<serde_json::Value> = agents
            .iter()
            .zip(&cards)
            .map(|(a, c)| match c {
                Ok(card) => serde_json::json!({"name": a.name(), "endpoints": a.config().endpoints, "card": serde_json::to_value(&**card).unwrap_or_default()}),
                Err(e) => serde_json::json!({"name": a.name(), "endpoints": a.config().endpoints, "error": e.to_string()}),
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    println!("{:<11} {:<22} SKILLS", "AGENT", "ADDRESS");
    for (a, c) in agents.iter().zip(&cards) {
        let skills = match c {
            Ok(card) => skills(card),
            Err(e) => format!("unreachable ({})", switchyard::client::code_name(e.code())),
        };
        println!(
            "{:<11} {:<22} {skills}",
            a.name(),
            a.config().endpoints.join(",")
        );
    }
    Ok(())
}

fn skills(card: &AgentCard) -> String {
    card.skills
        .iter()
        .map(|s| format!("{} ({})", s.id, s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks `grpc.health.v1` on every endpoint of every agent, and the gateway's `/readyz`.
///
/// # Errors
/// [`CliError::Call`] when anything is not serving.
pub async fn health(mesh: &Mesh, json: bool) -> Result<(), CliError> {
    let mut rows = Vec::new();
    for a in mesh.agents() {
        for endpoint in &a.config().endpoints {
            rows.push((a.name().to_owned(), endpoint.clone(), check(endpoint).await));
        }
    }
    if let Some(g) = &mesh.gateway {
        let url = format!("{}/readyz", g.trim_end_matches('/'));
        let status = match reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(3))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => "SERVING".to_owned(),
            Ok(r) => format!("NOT_SERVING (HTTP {})", r.status().as_u16()),
            Err(e) => format!("UNREACHABLE ({e})"),
        };
        rows.push(("gateway".into(), g.clone(), status));
    }
    if rows.is_empty() {
        return Err(CliError::Config(
            "no agents: start the mesh with `switchyard up`, or configure agents".into(),
        ));
    }
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(n, e, s)| serde_json::json!({"name": n, "endpoint": e, "status": s}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        for (n, e, s) in &rows {
            println!("{n:<11} {e:<26} {s}");
        }
    }
    let bad: Vec<_> = rows
        .iter()
        .filter(|r| r.2 != "SERVING")
        .map(|r| r.0.clone())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(CliError::Call {
            agent: bad.join(", "),
            message: "not serving".into(),
        })
    }
}

async fn check(endpoint: &str) -> String {
    // Through `Client`: mTLS when the mesh uses it.
    let channel = match tokio::time::timeout(
        Duration::from_secs(3),
        switchyard::Client::connect(endpoint),
    )
    .await
    {
        Ok(Ok(c)) => c.transport(),
        Ok(Err(switchyard::ClientError::InvalidAddress { reason, .. })) => {
            return format!("INVALID ({reason})");
        }
        Ok(Err(_)) | Err(_) => return "UNREACHABLE".into(),
    };
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    req.set_timeout(Duration::from_secs(3));
    match HealthClient::new(channel).check(req).await {
        Ok(r) => ServingStatus::try_from(r.into_inner().status)
            .map_or_else(|_| "UNKNOWN".into(), |s| s.as_str_name().to_owned()),
        Err(s) => format!("ERROR ({})", s.message()),
    }
}
