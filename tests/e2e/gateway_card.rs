//! Agent cards, the directory and the gateway's own card.

use reqwest::{StatusCode, header};
use serde_json::json;
use switchyard_e2e::Served;

use crate::gateway::{Gw, agent, dead_addr, json_of};

#[tokio::test]
async fn agent_cards_point_at_the_gateway_with_etags() {
    let (echo, _dir) = Served::echo().await;
    let mut public = agent("public", echo.addr);
    public.public_grpc = true;
    let gw = Gw::start(vec![agent("echo", echo.addr), public], |c| {
        c.public_url = Some("https://agents.example.com/mesh/".into())
    })
    .await;
    let url = format!("{}/agents/echo/.well-known/agent-card.json", gw.url);
    let r = gw.http.get(&url).send().await.expect("card");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(r.headers()[header::CACHE_CONTROL], "max-age=60");
    let etag = r.headers()[header::ETAG].clone();
    let card = json_of(r).await;
    assert_eq!(card["name"], "echo");
    assert_eq!(
        card["supportedInterfaces"],
        json!([
            {"url": "https://agents.example.com/mesh/agents/echo", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": "https://agents.example.com/mesh/agents/echo", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
            {"url": "https://agents.example.com/mesh/agents/echo", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
        ]),
        "the gateway's gRPC front with the agent's path prefix; the agent's own gRPC address \
         stays private"
    );
    assert_eq!(card["capabilities"]["streaming"], true);
    assert!(card["skills"].as_array().is_some_and(|s| !s.is_empty()));
    let r = gw
        .http
        .get(&url)
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .expect("revalidate");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()[header::ETAG], etag);

    let url = format!("{}/agents/public/.well-known/agent-card.json", gw.url);
    let card = json_of(gw.http.get(&url).send().await.expect("card")).await;
    let last = &card["supportedInterfaces"][3];
    assert_eq!(last["protocolBinding"], "GRPC");
    assert_eq!(last["url"], echo.addr.to_string(), "a bare host:port");
    gw.stop().await;
}

#[tokio::test]
async fn the_directory_and_the_gateway_card_list_every_agent() {
    let (echo, _dir) = Served::echo().await;
    let gw = Gw::start(
        vec![agent("echo", echo.addr), agent("down", dead_addr().await)],
        |_| {},
    )
    .await;
    let r = gw
        .http
        .get(format!("{}/agents", gw.url))
        .send()
        .await
        .expect("directory");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key(header::ETAG));
    let dir = json_of(r).await;
    let agents = dir["agents"].as_array().expect("agents");
    let names: Vec<&str> = agents.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["down", "echo"]);
    let e = &agents[1];
    assert_eq!(e["url"], format!("{}/agents/echo", gw.url));
    assert_eq!(
        e["cardUrl"],
        format!("{}/agents/echo/.well-known/agent-card.json", gw.url)
    );
    assert_eq!(e["available"], true);
    let skills: Vec<&str> = e["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(skills, ["echo", "stream"]);
    assert_eq!(
        agents[0]["available"], false,
        "a down agent is listed, without a card"
    );

    let card = json_of(
        gw.http
            .get(format!("{}/.well-known/agent-card.json", gw.url))
            .send()
            .await
            .expect("gateway card"),
    )
    .await;
    assert_eq!(card["name"], "switchyard-gateway");
    assert_eq!(
        card["supportedInterfaces"],
        json!([{"url": gw.url.trim_start_matches("http://"), "protocolBinding": "GRPC", "protocolVersion": "1.0"}]),
        "the gateway's own gRPC front as host:port (agents chosen by x-switchyard-agent)"
    );
    for key in [
        "description",
        "version",
        "supportedInterfaces",
        "capabilities",
        "defaultInputModes",
        "defaultOutputModes",
        "skills",
    ] {
        assert!(card.get(key).is_some(), "{key}: {card}");
    }
    let ids: Vec<&str> = card["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, ["down", "echo"]);
    gw.stop().await;
}

#[tokio::test]
async fn every_card_endpoint_has_last_modified_and_answers_if_modified_since() {
    let (echo, _dir) = Served::echo().await;
    let gw = Gw::start(vec![agent("echo", echo.addr)], |_| {}).await;
    let urls = [
        format!("{}/.well-known/agent-card.json", echo.url()),
        format!("{}/agents/echo/.well-known/agent-card.json", gw.url),
        format!("{}/agents", gw.url),
        format!("{}/.well-known/agent-card.json", gw.url),
    ];
    for url in &urls {
        let get = |pairs: &[(header::HeaderName, &str)]| {
            let mut r = gw.http.get(url);
            for (k, v) in pairs {
                r = r.header(k.clone(), *v);
            }
            r.send()
        };
        let r = get(&[]).await.expect("get");
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let modified = r.headers()[header::LAST_MODIFIED]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(modified.ends_with(" GMT"), "an HTTP date: {modified}");
        let etag = r.headers()[header::ETAG]
            .to_str()
            .expect("ascii")
            .to_owned();

        // RFC 9110 §13.1.3: not modified since the date the client holds.
        let r = get(&[(header::IF_MODIFIED_SINCE, &modified)])
            .await
            .expect("revalidate");
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{url}");
        assert_eq!(r.headers()[header::LAST_MODIFIED], modified.as_str());
        assert_eq!(r.headers()[header::ETAG], etag.as_str());
        assert!(r.bytes().await.expect("body").is_empty());

        // An older copy gets the document.
        let r = get(&[(header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:00 GMT")])
            .await
            .expect("older");
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        // If-None-Match takes precedence (§13.2.2): a stale tag gets the document, whatever
        // the date says; the current tag gets 304.
        let r = get(&[
            (header::IF_NONE_MATCH, "\"stale\""),
            (header::IF_MODIFIED_SINCE, &modified),
        ])
        .await
        .expect("stale tag");
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let r = get(&[
            (header::IF_NONE_MATCH, &etag),
            (header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:00 GMT"),
        ])
        .await
        .expect("current tag");
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{url}");
    }
    gw.stop().await;
}
