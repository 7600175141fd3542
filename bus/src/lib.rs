//! # switchyard-bus: agents reached over message buses
//!
//! A **bus bridge** consumes requests from a message bus, delivers each one to an agent as an
//! A2A `SendMessage` gRPC call, publishes the settled Task to the request's reply address and
//! acknowledges the message only then (at-least-once, deduplicated by A2A `messageId`). The
//! agent does not know a bus exists.
//!
//! ## Layout
//! - [`Bus`]: the transport abstraction (durable addresses with consumer groups, ephemeral
//!   subscriptions, ack/nack) and [`request`] (request/reply over any bus);
//! - [`Envelope`]: the versioned message format (CloudEvents attributes in headers);
//! - [`naming`]: addresses and groups of each pattern;
//! - [`Bridge`]: the bridge itself; [`Dedupe`]: its message-id store;
//! - transports: [`InProcessBus`] (always), `nats::NatsBus` (feature `nats`, async-nats
//!   JetStream), `amqp::AmqpBus` (feature `amqp`, lapin), `redis::RedisBus` (feature `redis`,
//!   Redis Streams with consumer groups), `mqtt::MqttBus` (feature `mqtt`, rumqttc, MQTT 5
//!   shared subscriptions), `kafka::KafkaBus` (feature `kafka`, rdkafka, consumer groups);
//!   [`connect`] picks one from a URL.
#![warn(missing_docs)]

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod bridge;
mod bus;
pub mod dedupe;
pub mod envelope;
mod inproc;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "mqtt")]
pub mod mqtt;
pub mod naming;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "redis")]
pub mod redis;

use std::sync::Arc;

pub use bridge::{Bridge, BridgeConfig, Stats};
pub use bus::{Acker, Bus, BusError, ConsumeOptions, Consumer, Delivery, Subscription, request};
pub use dedupe::{Claim, Dedupe};
pub use envelope::{Envelope, EnvelopeError};
pub use inproc::InProcessBus;

/// Connects to the bus at `url` by scheme: `nats://`, `amqp://`, `redis://`, `mqtt://`, `kafka://`, `inproc:` (a new
/// in-process bus).
///
/// # Errors
/// [`BusError::Unreachable`] naming the broker; [`BusError::Invalid`] for an unknown scheme
/// or one whose feature is off.
pub async fn connect(url: &str) -> Result<Arc<dyn Bus>, BusError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "inproc" => Ok(Arc::new(InProcessBus::new())),
        #[cfg(feature = "nats")]
        "nats" => Ok(Arc::new(nats::NatsBus::connect(url).await?)),
        #[cfg(feature = "amqp")]
        "amqp" | "amqps" => Ok(Arc::new(amqp::AmqpBus::connect(url).await?)),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Ok(Arc::new(redis::RedisBus::connect(url).await?)),
        #[cfg(feature = "mqtt")]
        "mqtt" => Ok(Arc::new(mqtt::MqttBus::connect(url).await?)),
        #[cfg(feature = "kafka")]
        "kafka" => Ok(Arc::new(kafka::KafkaBus::connect(url).await?)),
        other => Err(BusError::Invalid(format!(
            "bus URL {url:?}: scheme {other:?} is not one of inproc, nats, amqp, redis, mqtt, kafka (or its cargo feature is off)"
        ))),
    }
}
