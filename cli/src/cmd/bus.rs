//! `switchyard bus publish|request|tail`, and the bridges `switchyard up` starts from
//! `[[up.bridges]]`.

use std::{sync::Arc, time::Duration};

use clap::{Args, Subcommand};
use switchyard::pb::a2a::{Message, SendMessageRequest, Task, part};
use switchyard_bus::{
    Bridge, BridgeConfig, Bus, ConsumeOptions, Dedupe, Envelope, InProcessBus, envelope, naming,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{config::Config, error::CliError};

/// `switchyard bus …`.
#[derive(Debug, Args)]
pub struct BusArgs {
    /// The bus: nats://host:4222, amqp://user:pass@host:5672/%2f, redis://host:6379,
    /// mqtt://host:1883, kafka://host:9092.
    #[arg(
        long,
        env = "SWITCHYARD_BUS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub url: String,
    /// Address prefix (requests go to `<prefix>.agent.<agent>`).
    #[arg(long, default_value = naming::PREFIX)]
    pub prefix: String,
    /// Encode requests as binary protobuf instead of protobuf-JSON.
    #[arg(long)]
    pub protobuf: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: BusCmd,
}

/// The `bus` subcommands.
#[derive(Debug, Subcommand)]
pub enum BusCmd {
    /// Publishes a message for AGENT and returns (its reply, if any, goes to --reply-to).
    Publish {
        /// The agent.
        agent: String,
        /// The message text.
        #[arg(required = true)]
        text: Vec<String>,
        /// Reply address for the settled task.
        #[arg(long)]
        reply_to: Option<String>,
    },
    /// Sends a message to AGENT over the bus and prints the settled task.
    Request {
        /// The agent.
        agent: String,
        /// The message text.
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Prints the envelopes published to ADDRESS from now on (e.g. switchyard.events.echo).
    Tail {
        /// The address.
        address: String,
        /// Stop after this many.
        #[arg(long)]
        count: Option<usize>,
    },
}

fn bus_error(e: switchyard_bus::BusError) -> CliError {
    CliError::Serve(e.to_string())
}

fn request_envelope(args: &BusArgs, agent: &str, text: &[String]) -> Result<Envelope, CliError> {
    let mut message = Message::user_text(text.join(" "));
    message.message_id = uuid::Uuid::new_v4().to_string();
    let ct = if args.protobuf {
        envelope::PROTOBUF
    } else {
        envelope::JSON
    };
    let mut env = Envelope::request(
        agent,
        &SendMessageRequest {
            message: Some(message),
            ..Default::default()
        },
        ct,
    )
    .map_err(|e| CliError::Serve(e.to_string()))?;
    env.set(envelope::header::SOURCE, "switchyard-cli");
    if let Some(tp) = switchyard::trace::outgoing().traceparent {
        env.set(envelope::header::TRACEPARENT, &tp);
    }
    Ok(env)
}

fn describe(env: &Envelope, json: bool) -> String {
    let body = match env.get(envelope::header::TYPE) {
        Some(envelope::TASK_TYPE) => env
            .decode::<Task>("Task")
            .map(|t| {
                if json {
                    return serde_json::to_string(&t).unwrap_or_default();
                }
                let texts: Vec<String> = t
                    .artifacts
                    .iter()
                    .flat_map(|a| a.parts.iter())
                    .filter_map(|p| match &p.content {
                        Some(part::Content::Text(t)) => Some(t.clone()),
                        _ => None,
                    })
                    .collect();
                let state = t
                    .status
                    .as_ref()
                    .map(|s| s.state().as_str_name())
                    .unwrap_or("?");
                format!("task {} {}\n{}", t.id, state, texts.join("\n"))
            })
            .unwrap_or_else(|e| e.to_string()),
        _ => String::from_utf8_lossy(&env.body).into_owned(),
    };
    if json {
        let headers: serde_json::Map<String, serde_json::Value> = env
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::json!({"headers": headers, "body": serde_json::from_str::<serde_json::Value>(&body).unwrap_or(serde_json::Value::String(body))}).to_string()
    } else {
        body
    }
}

/// Runs `switchyard bus …`.
///
/// # Errors
/// [`CliError::Serve`] naming an unreachable broker, or no reply within the timeout.
pub async fn run(args: &BusArgs, config: &Config, json: bool) -> Result<(), CliError> {
    let bus = switchyard_bus::connect(&args.url)
        .await
        .map_err(bus_error)?;
    let result = match &args.command {
        BusCmd::Publish {
            agent,
            text,
            reply_to,
        } => {
            let mut env = request_envelope(args, agent, text)?;
            if let Some(r) = reply_to {
                env.set(envelope::header::REPLY_TO, r);
            }
            let id = env.id().unwrap_or_default().to_owned();
            let address = naming::agent(&args.prefix, agent);
            bus.ensure(&address, naming::BRIDGE_GROUP, ConsumeOptions::default())
                .await
                .map_err(bus_error)?;
            bus.publish(&address, env).await.map_err(bus_error)?;
            println!("{id}");
            Ok(())
        }
        BusCmd::Request { agent, text } => {
            let env = request_envelope(args, agent, text)?;
            let address = naming::agent(&args.prefix, agent);
            bus.ensure(&address, naming::BRIDGE_GROUP, ConsumeOptions::default())
                .await
                .map_err(bus_error)?;
            let reply = switchyard_bus::request(
                bus.as_ref(),
                &address,
                env,
                &naming::reply(&args.prefix),
                Duration::from_secs_f64(config.timeout_secs),
            )
            .await
            .map_err(bus_error)?;
            println!("{}", describe(&reply, json));
            Ok(())
        }
        BusCmd::Tail { address, count } => {
            let mut sub = bus.subscribe(address).await.map_err(bus_error)?;
            let mut seen = 0;
            while count.is_none_or(|c| seen < c) {
                let env = sub.next().await.map_err(bus_error)?;
                println!("{}", describe(&env, json));
                seen += 1;
            }
            Ok(())
        }
    };
    bus.close().await;
    result
}

/// The bridges `switchyard up` runs.
#[derive(Debug, Default)]
pub struct Bridges {
    stop: CancellationToken,
    joins: Vec<JoinHandle<()>>,
}

impl Bridges {
    /// Stops consuming and waits for the messages in hand.
    pub async fn stop(self) {
        self.stop.cancel();
        for j in self.joins {
            let _ = j.await;
        }
    }
}

/// Starts `config.up.bridges` against the agents `up` runs (`(name, address)`).
///
/// # Errors
/// [`CliError::Config`] for a bridge to an agent `up` does not run; [`CliError::Serve`]
/// naming a broker that is not reachable.
pub async fn start_bridges(
    config: &Config,
    registry: &switchyard::registry::Registry,
) -> Result<Bridges, CliError> {
    let mut bridges = Bridges::default();
    let inproc: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    for b in &config.up.bridges {
        // The registry's client balances over every replica of the agent, with the mesh's
        // retries and outlier ejection.
        let client = registry
            .agent(&b.agent)
            .map_err(|_| {
                CliError::Config(format!(
                    "up.bridges: agent {:?} is not one `switchyard up` runs",
                    b.agent
                ))
            })?
            .client();
        let bus = if b.url.starts_with("inproc") {
            inproc.clone()
        } else {
            switchyard_bus::connect(&b.url).await.map_err(bus_error)?
        };
        let dedupe = Dedupe::open(&config.data_dir.join(format!("bus-{}.db", b.agent)))
            .await
            .map_err(|e| CliError::Serve(e.to_string()))?;
        let mut c = BridgeConfig::new(&b.prefix, &b.agent);
        c.max_attempts = b.max_attempts;
        c.consume = ConsumeOptions {
            prefetch: b.prefetch,
            ack_wait: Duration::from_secs_f64(b.ack_wait_secs),
        };
        if b.events {
            c.events = Some(naming::events(&b.prefix, &b.agent));
        }
        eprintln!("switchyard: bridge {} → {} ({})", c.address, b.agent, b.url);
        let bridge = Bridge::new(bus, client, dedupe, c);
        let stop = bridges.stop.clone();
        bridges.joins.push(tokio::spawn(async move {
            if let Err(e) = bridge.run(stop).await {
                tracing::error!(error = %e, "bus bridge stopped");
            }
        }));
    }
    Ok(bridges)
}
