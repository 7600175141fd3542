//! The [`Bus`] abstraction every transport implements.

use std::{fmt, time::Duration};

use async_trait::async_trait;

use crate::envelope::{Envelope, header};

/// What a bus operation failed with. Every variant names the transport.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker does not answer at `url`: it is not running or not reachable.
    #[error(
        "the {transport} broker at {url} is not reachable ({reason}); start it (see README \"Message buses\")"
    )]
    Unreachable {
        /// `nats`, `amqp`, `redis`, `mqtt`, `inproc`.
        transport: &'static str,
        /// The broker URL.
        url: String,
        /// The client's message.
        reason: String,
    },
    /// A broker operation failed.
    #[error("{transport} {op} failed: {reason}")]
    Op {
        /// The transport.
        transport: &'static str,
        /// The operation (`publish`, `ack`, …).
        op: &'static str,
        /// The client's message.
        reason: String,
    },
    /// The connection or subscription ended.
    #[error("the {0} connection is closed")]
    Closed(&'static str),
    /// A bad address or URL.
    #[error("{0}")]
    Invalid(String),
    /// No reply within the deadline.
    #[error("no reply on {address} within {timeout:?}")]
    Timeout {
        /// The reply address.
        address: String,
        /// How long the caller waited.
        timeout: Duration,
    },
}

impl BusError {
    pub(crate) fn op(transport: &'static str, op: &'static str, e: impl fmt::Display) -> Self {
        Self::Op {
            transport,
            op,
            reason: e.to_string(),
        }
    }
}

/// Consumer settings.
#[derive(Debug, Clone, Copy)]
pub struct ConsumeOptions {
    /// Most unacknowledged deliveries held at once (prefetch, max-ack-pending, COUNT).
    pub prefetch: usize,
    /// How long an unacknowledged delivery stays with a consumer that went silent before the
    /// broker (or, for Redis, the other consumers) hands it to another one. RabbitMQ and the
    /// in-process bus redeliver as soon as the consumer's connection closes instead.
    pub ack_wait: Duration,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self {
            prefetch: 64,
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// A message bus: durable addresses with consumer groups, plus ephemeral subscriptions.
///
/// Semantics shared by every transport:
/// - a message published to an address is delivered once to each *group* that
///   [`ensure`](Self::ensure)d or [`consume`](Self::consume)s it (fan-out between groups), and
///   to one consumer within a group (competing consumers);
/// - a delivery stays unacknowledged until [`Acker::ack`]; a consumer that dies leaves it to be
///   redelivered (at least once);
/// - [`subscribe`](Self::subscribe) is fire-and-forget: it sees what is published after it
///   started, with no acknowledgement (replies, `tail`).
#[async_trait]
pub trait Bus: Send + Sync + fmt::Debug + 'static {
    /// The transport's name: `inproc`, `nats`, `amqp`, `redis`, `mqtt`.
    fn transport(&self) -> &'static str;

    /// Creates the durable storage of `address` for `group` (stream + consumer, queue + binding,
    /// stream + consumer group), so that messages published before a consumer attaches are kept.
    async fn ensure(
        &self,
        address: &str,
        group: &str,
        options: ConsumeOptions,
    ) -> Result<(), BusError>;

    /// Publishes `envelope` to `address`, waiting for the broker's confirmation where the
    /// transport has one.
    async fn publish(&self, address: &str, envelope: Envelope) -> Result<(), BusError>;

    /// Joins `group` on `address` as consumer `name`.
    async fn consume(
        &self,
        address: &str,
        group: &str,
        name: &str,
        options: ConsumeOptions,
    ) -> Result<Box<dyn Consumer>, BusError>;

    /// Sees what is published to `address` from now on, without acknowledgements.
    async fn subscribe(&self, address: &str) -> Result<Box<dyn Subscription>, BusError>;

    /// Messages of `address` not yet delivered to `group`, where the broker tells.
    async fn lag(&self, _address: &str, _group: &str) -> Result<Option<u64>, BusError> {
        Ok(None)
    }

    /// Deletes `address` and its groups (tests and `switchyard bus` clean-up).
    async fn remove(&self, address: &str, groups: &[&str]) -> Result<(), BusError>;

    /// Closes the connections, as a crash would: unacknowledged deliveries are left to the
    /// broker's redelivery.
    async fn close(&self);
}

/// A consumer in a group.
#[async_trait]
pub trait Consumer: Send {
    /// The next delivery; waits for one.
    async fn next(&mut self) -> Result<Delivery, BusError>;
}

/// An ephemeral subscription.
#[async_trait]
pub trait Subscription: Send {
    /// The next envelope published to the address; waits for one.
    async fn next(&mut self) -> Result<Envelope, BusError>;
}

/// Settles one delivery.
#[async_trait]
pub trait Acker: Send + Sync {
    /// Done with it: the broker forgets it.
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    /// Not done: hand it out again after about `delay`.
    async fn nack(self: Box<Self>, delay: Duration) -> Result<(), BusError>;
}

/// One message handed to a consumer.
pub struct Delivery {
    /// The message (possibly malformed: the bridge validates it).
    pub envelope: Envelope,
    /// The broker says it was delivered before (crash, nack, ack timeout).
    pub redelivered: bool,
    /// Settles it.
    pub acker: Box<dyn Acker>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("envelope", &self.envelope)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

/// Publishes `envelope` to `address` with `ce-replyto` = `reply_address` and waits up to
/// `timeout` for the envelope with the same correlation id on `reply_address`.
///
/// # Errors
/// The bus's errors, or [`BusError::Timeout`].
pub async fn request(
    bus: &dyn Bus,
    address: &str,
    mut envelope: Envelope,
    reply_address: &str,
    timeout: Duration,
) -> Result<Envelope, BusError> {
    let mut replies = bus.subscribe(reply_address).await?;
    envelope.set(header::REPLY_TO, reply_address);
    let correlation = envelope.correlation_id().map(str::to_owned);
    bus.publish(address, envelope).await?;
    let wait = async {
        loop {
            let reply = replies.next().await?;
            if reply.correlation_id().map(str::to_owned) == correlation {
                return Ok(reply);
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| BusError::Timeout {
            address: reply_address.into(),
            timeout,
        })?
}
