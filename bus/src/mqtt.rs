//! MQTT 5 (rumqttc), e.g. against Mosquitto.
//!
//! - an address is a topic with `.` replaced by `/` (`switchyard.agent.echo` →
//!   `switchyard/agent/echo`); `+`, `#` and `/` are refused in addresses;
//! - every envelope attribute travels as an MQTT 5 **user property**; `content-type` also as the
//!   Content Type property, `ce-replyto` also as the **Response Topic** and `ce-correlationid`
//!   also as the **Correlation Data**, so a plain MQTT 5 client (`mosquitto_rr`, `mosquitto_pub -D
//!   publish response-topic …`) can ask and be answered; on receipt, the user properties win
//!   and the standard properties fill what they lack;
//! - a group is an MQTT 5 **shared subscription** `$share/<group>/<topic>` at QoS 1: each
//!   consumer is its own client with manual acknowledgements (PUBACK only after
//!   [`Acker::ack`]) and Receive Maximum = `prefetch` (the broker's inflight window), in a
//!   **persistent session**: its client id is `sy:<group>:<consumer name>:<address>` (the
//!   bridge's [`name`](crate::BridgeConfig::name)), Clean Start is off and the Session Expiry
//!   Interval is [`SESSION_EXPIRY`];
//! - a publish is QoS 1 and [`Bus::publish`] returns once the broker's PUBACK arrived (within
//!   [`CONFIRM`]); a bridge acknowledges a request only after its reply is published, so a reply
//!   still in the client's buffer when a bridge dies can no longer be lost with its request
//!   acknowledged (that was the MQTT work-queue test's 975 of 1,000);
//! - a nack republishes the message to the same topic and acknowledges the original (MQTT has no
//!   negative acknowledgement), both on the consumer's connection, so the broker has the copy
//!   before the acknowledgement;
//! - a subscription is a plain QoS 1 subscription with automatic acknowledgements.
//!
//! What MQTT guarantees here, and what it does not (MQTT 5 §4.3.2, §4.4, §4.8.2):
//! - **At least once per session**: a QoS 1 message the broker handed to a consumer stays
//!   unacknowledged in that consumer's session until PUBACK. When a bridge crashes, the
//!   broker keeps its session (inflight and queued messages) for [`SESSION_EXPIRY`]; a bridge
//!   started again **under the same name** resumes it and gets them again (DUP set), and the
//!   bridge's dedupe store makes that exactly once in effect (the work-queue test kills one
//!   of two bridges mid-run and starts its replacement under the same name).
//! - **Not**: moving a dead member's messages to the other members of the shared
//!   subscription. The standard leaves it open and Mosquitto does not do it: what a crashed
//!   bridge held, and what the broker queued for its session while it was away, waits for a
//!   bridge of the same name (or is dropped when the session expires). Give bridges stable
//!   names (e.g. the pod name of a StatefulSet) on MQTT; the default random name is only
//!   right for bridges that are never restarted.
//! - There is no durable storage for a group before a consumer first subscribes
//!   ([`Bus::ensure`] is a no-op, so publish to an agent only once its bridge has run once),
//!   no broker-side lag (the bridge reports none for MQTT), and **no replay** of an event
//!   stream: a retained message keeps only the last one per topic. For replay, run a second
//!   bridge (or `switchyard bus`) that publishes the agent's events to a transport with
//!   replay (NATS JetStream, Redis Streams, Kafka, RabbitMQ streams).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use rumqttc::{
    Outgoing,
    v5::{
        AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Request,
        mqttbytes::{
            QoS,
            v5::{Packet, PubAck, PubAckReason, Publish, PublishProperties, SubscribeReasonCode},
        },
    },
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{
    bus::{Acker, Bus, BusError, ConsumeOptions, Consumer, Delivery, Subscription},
    envelope::{Envelope, header},
};

const T: &str = "mqtt";
/// How long connecting and subscribing may take.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// How long [`Bus::publish`] waits for the broker's PUBACK.
pub const CONFIRM: Duration = Duration::from_secs(10);
/// How long the broker keeps a consumer's session (its subscription, unacknowledged and
/// queued messages) after the consumer's connection ends, in seconds: one hour.
pub const SESSION_EXPIRY: u32 = 3600;

/// An MQTT 5 connection (one client for publishing; each consumer and subscription opens its
/// own).
#[derive(Debug)]
pub struct MqttBus {
    conf: Conf,
    publisher: AsyncClient,
    /// The publisher's publishes waiting for their PUBACK.
    confirms: Arc<Mutex<Confirms>>,
    /// Held while a publish registers its confirmation and enters the client's queue, so the
    /// registrations are in the order the event loop sends the publishes.
    order: tokio::sync::Mutex<()>,
    /// Cancels every event loop of this bus (as a crash would: no DISCONNECT is sent).
    stop: CancellationToken,
}

/// Where the broker is.
#[derive(Debug, Clone)]
struct Conf {
    url: String,
    host: String,
    port: u16,
    login: Option<(String, String)>,
}

/// The MQTT topic of `address`.
///
/// # Errors
/// [`BusError::Invalid`] when `address` holds `/`, `+` or `#`, or is empty.
pub fn topic(address: &str) -> Result<String, BusError> {
    if address.is_empty() || address.contains(['/', '+', '#']) {
        return Err(BusError::Invalid(format!(
            "MQTT address {address:?}: must be non-empty without '/', '+' or '#' (dots become topic levels)"
        )));
    }
    Ok(address.replace('.', "/"))
}

fn address(topic: &str) -> String {
    topic.replace('/', ".")
}

/// Splits `mqtt://[user:pass@]host[:port]` (port 1883 by default).
fn parse(url: &str) -> Result<Conf, BusError> {
    let invalid = |why: &str| BusError::Invalid(format!("MQTT URL {url:?}: {why}"));
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| invalid("expected mqtt://[user:pass@]host[:port]"))?;
    let rest = rest.trim_end_matches('/');
    let (login, hostport) = match rest.rsplit_once('@') {
        Some((creds, hp)) => {
            let (u, p) = creds.split_once(':').unwrap_or((creds, ""));
            (Some((u.to_owned(), p.to_owned())), hp)
        }
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| invalid("the port is not a number in 1..=65535"))?,
        ),
        None => (hostport, 1883),
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    Ok(Conf {
        url: url.into(),
        host: host.to_owned(),
        port,
        login,
    })
}

impl Conf {
    /// Options of one client: persistent under `session` (its client id), else a fresh
    /// clean session.
    fn options(&self, receive_maximum: Option<u16>, session: Option<&str>) -> MqttOptions {
        let id = session.map_or_else(
            || format!("sy-{}", uuid::Uuid::new_v4().simple()),
            str::to_owned,
        );
        let mut o = MqttOptions::new(id, self.host.clone(), self.port);
        o.set_keep_alive(Duration::from_secs(10))
            .set_clean_start(session.is_none())
            .set_connection_timeout(HANDSHAKE.as_secs());
        if session.is_some() {
            o.set_session_expiry_interval(Some(SESSION_EXPIRY));
        }
        if let Some((u, p)) = &self.login {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(max) = receive_maximum {
            o.set_manual_acks(true).set_receive_maximum(Some(max));
        }
        o
    }

    /// A connected client: its event loop has seen the broker's CONNACK.
    async fn session(
        &self,
        receive_maximum: Option<u16>,
        persistent: Option<&str>,
    ) -> Result<(AsyncClient, EventLoop), BusError> {
        let (client, mut events) = AsyncClient::new(self.options(receive_maximum, persistent), 256);
        let unreachable = |reason: String| BusError::Unreachable {
            transport: T,
            url: self.url.clone(),
            reason,
        };
        let handshake = async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        tokio::time::timeout(HANDSHAKE, handshake)
            .await
            .map_err(|_| unreachable(format!("no CONNACK within {HANDSHAKE:?}")))?
            .map_err(unreachable)?;
        Ok((client, events))
    }
}

impl MqttBus {
    /// Connects to `url` (`mqtt://[user:pass@]host[:port]`, e.g. `mqtt://127.0.0.1:1883`).
    ///
    /// # Errors
    /// [`BusError::Invalid`] for a bad URL; [`BusError::Unreachable`] naming the URL when no
    /// broker accepts an MQTT 5 connection within 5 s.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let conf = parse(url)?;
        let (publisher, events) = conf.session(None, None).await?;
        let bus = Self {
            conf,
            publisher,
            confirms: Arc::default(),
            order: tokio::sync::Mutex::new(()),
            stop: CancellationToken::new(),
        };
        bus.spawn(events, Loop::Publisher(bus.confirms.clone()));
        Ok(bus)
    }

    /// Subscribes `filter` at QoS 1 and waits for the SUBACK; returns the messages that
    /// arrived meanwhile (a resumed session's, sent right after CONNACK).
    async fn subscribed(
        client: &AsyncClient,
        events: &mut EventLoop,
        filter: &str,
    ) -> Result<Vec<Publish>, BusError> {
        let mut early = Vec::new();
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .map_err(|e| BusError::op(T, "subscribe", e))?;
        let wait = async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        return match ack.return_codes.first() {
                            Some(SubscribeReasonCode::Success(_)) => Ok(()),
                            other => Err(BusError::op(
                                T,
                                "subscribe",
                                format!("{filter}: the broker refused ({other:?})"),
                            )),
                        };
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => early.push(p),
                    Ok(_) => {}
                    Err(e) => return Err(BusError::op(T, "subscribe", e)),
                }
            }
        };
        tokio::time::timeout(HANDSHAKE, wait)
            .await
            .map_err(|_| BusError::op(T, "subscribe", format!("{filter}: no SUBACK in 5 s")))??;
        Ok(early)
    }

    /// Opens a session (`persistent`: the client id of a persistent one, whose loop resumes it
    /// after a connection error; `receive_maximum`: manual acknowledgements within that
    /// window), subscribes `filter` and delivers every publish, early ones first, to the
    /// returned receiver until the guard drops.
    async fn listen(
        &self,
        filter: &str,
        receive_maximum: Option<u16>,
        persistent: Option<&str>,
    ) -> Result<(AsyncClient, mpsc::UnboundedReceiver<Publish>, DropGuard), BusError> {
        let (client, mut events) = self.conf.session(receive_maximum, persistent).await?;
        let early = Self::subscribed(&client, &mut events, filter).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        for p in early {
            let _ = tx.send(p);
        }
        let own = self.stop.child_token();
        self.spawn(
            events,
            Loop::Deliver(Deliver {
                tx,
                own: own.clone(),
                resume: persistent.is_some(),
            }),
        );
        Ok((client, rx, own.drop_guard()))
    }

    /// Drives `events` until the bus closes or its consumer or subscription is dropped;
    /// incoming publishes go to a [`Loop::Deliver`] without ever blocking the loop (it must
    /// keep polling to send keep-alives and acknowledgements, or the broker drops it for a
    /// missed keep-alive; a consumer's backlog is bounded by its Receive Maximum, a
    /// subscription's by its reader's pace); a [`Loop::Publisher`]'s PUBACKs settle its
    /// [`Confirms`]. After a connection error the publisher's loop and a persistent
    /// consumer's reconnect (the broker kept the consumer's session and subscription); a plain
    /// subscription's loop ends (with a clean start its subscription would not survive).
    fn spawn(&self, mut events: EventLoop, role: Loop) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let own = match &role {
                Loop::Deliver(d) => d.own.clone(),
                Loop::Publisher(_) => CancellationToken::new(),
            };
            loop {
                let polled = tokio::select! {
                    () = stop.cancelled() => return,
                    () = own.cancelled() => return,
                    p = events.poll() => p,
                };
                match (polled, &role) {
                    (Ok(Event::Incoming(Packet::Publish(p))), Loop::Deliver(d)) => {
                        if d.tx.send(p).is_err() {
                            return;
                        }
                    }
                    (Ok(event), Loop::Publisher(c)) => {
                        c.lock().expect("confirmations").on_event(&event);
                    }
                    (Ok(_), Loop::Deliver(_)) => {}
                    (Err(e), Loop::Deliver(d)) if !d.resume => {
                        tracing::warn!(error = %e, "MQTT subscriber connection lost");
                        return;
                    }
                    (Err(e), role) => {
                        if let Loop::Publisher(c) = role {
                            c.lock().expect("confirmations").on_lost(&mut events, &e);
                        }
                        if matches!(e, ConnectionError::RequestsDone) {
                            return;
                        }
                        tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }
}

/// What an event loop serves.
enum Loop {
    /// The bus's publisher: PUBACKs settle these confirmations.
    Publisher(Arc<Mutex<Confirms>>),
    /// A consumer or subscription.
    Deliver(Deliver),
}

/// The outcome a publish waits for: `Err` holds why the broker does not have the message.
type Confirm = oneshot::Sender<Result<(), String>>;

/// The publisher's QoS 1 publishes until the broker's PUBACK (MQTT 5 §4.3.2): [`Bus::publish`]
/// returns only then, so a bridge that acknowledges a request after publishing its reply never
/// acknowledges a reply still in the client's buffer (a crash there lost the reply for good).
///
/// rumqttc does not report acknowledgements per publish, only events: a publish is sent in the
/// order of the client's queue (`Outgoing::Publish(packet id)`, or `Outgoing::AwaitAck` while
/// its packet id waits for an earlier PUBACK) and acknowledged by `Incoming::PubAck(packet id)`.
/// Registrations are made in queue order (under [`MqttBus::order`]), so the first event of each
/// publish takes the oldest registration.
#[derive(Debug, Default)]
struct Confirms {
    /// Registered, in the client's queue, not yet sent (oldest first).
    queued: VecDeque<Confirm>,
    /// Sent, awaiting PUBACK, by packet id.
    sent: HashMap<u16, Confirm>,
    /// The publish held back for a packet-id collision.
    collided: Option<(u16, Confirm)>,
}

impl Confirms {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some((held, _)) = &self.collided
                    && held == pkid
                    && !self.sent.contains_key(pkid)
                {
                    let (_, c) = self.collided.take().expect("checked");
                    self.sent.insert(*pkid, c);
                } else if !self.sent.contains_key(pkid)
                    && let Some(c) = self.queued.pop_front()
                {
                    self.sent.insert(*pkid, c);
                }
            }
            Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
                if let Some(c) = self.queued.pop_front() {
                    self.collided = Some((*pkid, c));
                }
            }
            Event::Incoming(Packet::PubAck(PubAck { pkid, reason, .. })) => {
                if let Some(c) = self.sent.remove(pkid) {
                    let _ = c.send(match reason {
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                        other => Err(format!("the broker refused it ({other:?})")),
                    });
                }
            }
            _ => {}
        }
    }

    /// The connection broke. The publisher starts clean sessions, so what was sent and not
    /// acknowledged, and what rumqttc took from the queue meanwhile (its `pending`, all before
    /// anything still queued), is not the broker's: those publishes fail and are dropped
    /// rather than sent again unconfirmed; publishes still queued keep their registrations.
    fn on_lost(&mut self, events: &mut EventLoop, error: &ConnectionError) {
        let why = || Err(format!("connection lost before the PUBACK: {error}"));
        for (_, c) in self.sent.drain() {
            let _ = c.send(why());
        }
        if let Some((_, c)) = self.collided.take() {
            let _ = c.send(why());
        }
        let unsent = events
            .pending
            .iter()
            .filter(|r| matches!(r, Request::Publish(p) if p.pkid == 0))
            .count();
        for c in self.queued.drain(..unsent.min(self.queued.len())) {
            let _ = c.send(why());
        }
        events.pending.retain(|r| !matches!(r, Request::Publish(_)));
    }
}

/// Where a consumer's or subscription's event loop hands its messages.
struct Deliver {
    tx: mpsc::UnboundedSender<Publish>,
    /// Cancelled when the consumer or subscription is dropped.
    own: CancellationToken,
    /// Reconnect after a connection error (a persistent session).
    resume: bool,
}

fn properties(envelope: &Envelope) -> Result<PublishProperties, BusError> {
    Ok(PublishProperties {
        content_type: envelope.get(header::CONTENT_TYPE).map(str::to_owned),
        response_topic: envelope.reply_to().map(topic).transpose()?,
        correlation_data: envelope
            .correlation_id()
            .map(|c| Bytes::copy_from_slice(c.as_bytes())),
        user_properties: envelope
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..Default::default()
    })
}

fn to_envelope(p: &Publish) -> Envelope {
    let mut env = Envelope {
        body: p.payload.clone(),
        ..Default::default()
    };
    if let Some(props) = &p.properties {
        for (k, v) in &props.user_properties {
            env.set(&k.to_ascii_lowercase(), v);
        }
        if env.get(header::CONTENT_TYPE).is_none()
            && let Some(ct) = &props.content_type
        {
            env.set(header::CONTENT_TYPE, ct);
        }
        if env.reply_to().is_none()
            && let Some(rt) = &props.response_topic
        {
            env.set(header::REPLY_TO, &address(rt));
        }
        if env.correlation_id().is_none()
            && let Some(c) = &props.correlation_data
        {
            env.set(header::CORRELATION_ID, &String::from_utf8_lossy(c));
        }
    }
    env
}

async fn send(client: &AsyncClient, address: &str, envelope: &Envelope) -> Result<(), BusError> {
    client
        .publish_with_properties(
            topic(address)?,
            QoS::AtLeastOnce,
            false,
            envelope.body.clone(),
            properties(envelope)?,
        )
        .await
        .map_err(|e| BusError::op(T, "publish", e))
}

#[async_trait]
impl Bus for MqttBus {
    fn transport(&self) -> &'static str {
        T
    }

    /// A no-op: MQTT keeps nothing for a shared subscription before a member subscribes.
    async fn ensure(&self, address: &str, _: &str, _: ConsumeOptions) -> Result<(), BusError> {
        topic(address).map(drop)
    }

    async fn publish(&self, address: &str, envelope: Envelope) -> Result<(), BusError> {
        if self.stop.is_cancelled() {
            return Err(BusError::Closed(T));
        }
        let (confirm, confirmed) = oneshot::channel();
        {
            let _order = self.order.lock().await;
            self.confirms
                .lock()
                .expect("confirmations")
                .queued
                .push_back(confirm);
            if let Err(e) = send(&self.publisher, address, &envelope).await {
                // Not queued: its registration is the last one (we hold the order).
                self.confirms
                    .lock()
                    .expect("confirmations")
                    .queued
                    .pop_back();
                return Err(e);
            }
        }
        match tokio::time::timeout(CONFIRM, confirmed).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(why))) => Err(BusError::op(T, "publish", why)),
            Ok(Err(_)) => Err(BusError::Closed(T)),
            Err(_) => Err(BusError::op(
                T,
                "publish",
                format!("no PUBACK within {CONFIRM:?}"),
            )),
        }
    }

    async fn consume(
        &self,
        address: &str,
        group: &str,
        name: &str,
        options: ConsumeOptions,
    ) -> Result<Box<dyn Consumer>, BusError> {
        if group.is_empty() || group.contains(['/', '+', '#']) {
            return Err(BusError::Invalid(format!(
                "MQTT shared-subscription group {group:?}: must be non-empty without '/', '+' or '#'"
            )));
        }
        let filter = format!("$share/{group}/{}", topic(address)?);
        let window =
            u16::try_from(options.prefetch.clamp(1, usize::from(u16::MAX))).unwrap_or(u16::MAX);
        let id = format!("sy:{group}:{name}:{address}");
        let (client, rx, guard) = self.listen(&filter, Some(window), Some(&id)).await?;
        Ok(Box::new(MqttConsumer {
            rx,
            client,
            _guard: guard,
        }))
    }

    async fn subscribe(&self, address: &str) -> Result<Box<dyn Subscription>, BusError> {
        let filter = topic(address)?;
        let (client, rx, guard) = self.listen(&filter, None, None).await?;
        Ok(Box::new(MqttSubscription {
            rx,
            _client: client,
            _guard: guard,
        }))
    }

    /// Nothing to delete: MQTT topics exist only while subscribed.
    async fn remove(&self, address: &str, _: &[&str]) -> Result<(), BusError> {
        topic(address).map(drop)
    }

    async fn close(&self) {
        self.stop.cancel();
    }
}

struct MqttConsumer {
    rx: mpsc::UnboundedReceiver<Publish>,
    client: AsyncClient,
    _guard: DropGuard,
}

#[async_trait]
impl Consumer for MqttConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        let p = self.rx.recv().await.ok_or(BusError::Closed(T))?;
        Ok(Delivery {
            envelope: to_envelope(&p),
            redelivered: p.dup,
            acker: Box::new(MqttAcker {
                client: self.client.clone(),
                publish: p,
            }),
        })
    }
}

struct MqttAcker {
    client: AsyncClient,
    publish: Publish,
}

#[async_trait]
impl Acker for MqttAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.client
            .ack(&self.publish)
            .await
            .map_err(|e| BusError::op(T, "ack", e))
    }

    async fn nack(self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        tokio::time::sleep(delay).await;
        let env = to_envelope(&self.publish);
        send(
            &self.client,
            &address(&String::from_utf8_lossy(&self.publish.topic)),
            &env,
        )
        .await?;
        self.ack().await
    }
}

struct MqttSubscription {
    rx: mpsc::UnboundedReceiver<Publish>,
    _client: AsyncClient,
    _guard: DropGuard,
}

#[async_trait]
impl Subscription for MqttSubscription {
    async fn next(&mut self) -> Result<Envelope, BusError> {
        let p = self.rx.recv().await.ok_or(BusError::Closed(T))?;
        Ok(to_envelope(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_topics() {
        let c = parse("mqtt://127.0.0.1:1883").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.login),
            ("127.0.0.1", 1883, None)
        );
        let c = parse("mqtt://u:p@broker").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.login),
            ("broker", 1883, Some(("u".into(), "p".into())))
        );
        assert!(parse("mqtt://h:99999").is_err());
        assert!(parse("http://h").is_err());
        assert_eq!(topic("a.agent.echo").unwrap(), "a/agent/echo");
        assert!(topic("a/b").is_err());
        assert!(topic("a.#").is_err());
    }

    #[test]
    fn envelope_round_trips_through_properties() {
        let mut env = Envelope::default();
        env.set(header::ID, "m1")
            .set(header::CORRELATION_ID, "c1")
            .set(header::REPLY_TO, "p.reply.x")
            .set(header::CONTENT_TYPE, "application/json");
        env.body = Bytes::from_static(b"{}");
        let props = properties(&env).unwrap();
        assert_eq!(props.response_topic.as_deref(), Some("p/reply/x"));
        assert_eq!(props.correlation_data.as_deref(), Some(&b"c1"[..]));
        let p = Publish::new("p/agent/a", QoS::AtLeastOnce, env.body.clone(), Some(props));
        assert_eq!(to_envelope(&p), env);
        // A plain MQTT 5 request: the standard properties fill the envelope.
        let bare = PublishProperties {
            response_topic: Some("p/reply/y".into()),
            correlation_data: Some(Bytes::from_static(b"c2")),
            ..Default::default()
        };
        let p = Publish::new("p/agent/a", QoS::AtLeastOnce, "x", Some(bare));
        let got = to_envelope(&p);
        assert_eq!(got.reply_to(), Some("p.reply.y"));
        assert_eq!(got.correlation_id(), Some("c2"));
    }
}
