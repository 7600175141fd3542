//! NATS JetStream (async-nats).
//!
//! - an address is a subject; [`ensure`](Bus::ensure) creates the stream `SY_<address with
//!   . → _>` (limits retention, file storage, [`NatsBus::max_age`]) capturing exactly that subject,
//!   and a durable pull consumer named after the group (explicit acks, `max_ack_pending` =
//!   prefetch, `ack_wait`);
//! - publish goes through JetStream (waiting for the stream's ack, `Nats-Msg-Id` =
//!   `<ce-id>#<ce-attempt>@<ce-replyto>` so the server's duplicate window drops a re-sent publish) when a
//!   stream captures the subject, else through core NATS (reply addresses);
//! - headers are NATS message headers; the stream sequence is the event-stream offset.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, pull},
    stream,
};
use async_trait::async_trait;
use futures::StreamExt;

use crate::{
    bus::{Acker, Bus, BusError, ConsumeOptions, Consumer, Delivery, Subscription},
    envelope::Envelope,
};

const T: &str = "nats";

/// A NATS JetStream connection.
#[derive(Debug)]
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    /// Whether a stream captures a subject, per subject.
    streams: Mutex<HashMap<String, bool>>,
    /// How long streams created by [`Bus::ensure`] keep messages.
    pub max_age: Duration,
}

/// The stream name of `address`.
pub fn stream_name(address: &str) -> String {
    let mut s = String::from("SY_");
    s.extend(address.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        }
    }));
    s
}

impl NatsBus {
    /// Connects to `url` (e.g. `nats://127.0.0.1:4222`).
    ///
    /// # Errors
    /// [`BusError::Unreachable`] naming the URL when no server answers within 5 s.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| BusError::Unreachable {
                transport: T,
                url: url.into(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            js: jetstream::new(client.clone()),
            client,
            streams: Mutex::default(),
            max_age: Duration::from_secs(24 * 3600),
        })
    }

    async fn stream(&self, address: &str) -> Result<stream::Stream, BusError> {
        let s = self
            .js
            .get_or_create_stream(stream::Config {
                name: stream_name(address),
                subjects: vec![address.into()],
                max_age: self.max_age,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::op(T, "create stream", e))?;
        self.streams
            .lock()
            .expect("lock")
            .insert(address.into(), true);
        Ok(s)
    }

    async fn consumer(
        &self,
        address: &str,
        group: &str,
        options: ConsumeOptions,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, BusError> {
        self.stream(address)
            .await?
            .get_or_create_consumer(
                group,
                pull::Config {
                    durable_name: Some(group.into()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: options.ack_wait,
                    max_ack_pending: i64::try_from(options.prefetch).unwrap_or(i64::MAX),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BusError::op(T, "create consumer", e))
    }

    async fn has_stream(&self, address: &str) -> bool {
        if let Some(known) = self.streams.lock().expect("lock").get(address) {
            return *known;
        }
        let found = self.js.stream_by_subject(address).await.is_ok();
        self.streams
            .lock()
            .expect("lock")
            .insert(address.into(), found);
        found
    }
}

fn to_headers(env: &Envelope) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    for (k, v) in &env.headers {
        h.insert(k.as_str(), v.as_str());
    }
    h
}

fn to_envelope(message: &async_nats::Message) -> Envelope {
    let mut env = Envelope {
        body: message.payload.clone(),
        ..Default::default()
    };
    if let Some(h) = &message.headers {
        for (k, vs) in h.iter() {
            if let Some(v) = vs.first() {
                env.set(&k.to_string().to_ascii_lowercase(), v.as_str());
            }
        }
    }
    env
}

#[async_trait]
impl Bus for NatsBus {
    fn transport(&self) -> &'static str {
        T
    }

    async fn ensure(
        &self,
        address: &str,
        group: &str,
        options: ConsumeOptions,
    ) -> Result<(), BusError> {
        self.consumer(address, group, options).await.map(drop)
    }

    async fn publish(&self, address: &str, envelope: Envelope) -> Result<(), BusError> {
        let mut headers = to_headers(&envelope);
        if self.has_stream(address).await {
            if let Some(id) = envelope.id() {
                // A publisher's retry (same id, attempt and reply address) is dropped by the
                // server's duplicate window; a new request with the same id is not.
                let id = format!(
                    "{id}#{}@{}",
                    envelope.attempt(),
                    envelope.reply_to().unwrap_or_default()
                );
                headers.insert("Nats-Msg-Id", id.as_str());
            }
            self.js
                .publish_with_headers(address.to_owned(), headers, envelope.body)
                .await
                .map_err(|e| BusError::op(T, "publish", e))?
                .await
                .map_err(|e| BusError::op(T, "publish ack", e))?;
        } else {
            self.client
                .publish_with_headers(address.to_owned(), headers, envelope.body)
                .await
                .map_err(|e| BusError::op(T, "publish", e))?;
            self.client
                .flush()
                .await
                .map_err(|e| BusError::op(T, "flush", e))?;
        }
        Ok(())
    }

    async fn consume(
        &self,
        address: &str,
        group: &str,
        _name: &str,
        options: ConsumeOptions,
    ) -> Result<Box<dyn Consumer>, BusError> {
        let consumer = self.consumer(address, group, options).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(options.prefetch.max(1))
            .messages()
            .await
            .map_err(|e| BusError::op(T, "consume", e))?;
        Ok(Box::new(NatsConsumer(messages)))
    }

    async fn subscribe(&self, address: &str) -> Result<Box<dyn Subscription>, BusError> {
        let sub = self
            .client
            .subscribe(address.to_owned())
            .await
            .map_err(|e| BusError::op(T, "subscribe", e))?;
        self.client
            .flush()
            .await
            .map_err(|e| BusError::op(T, "flush", e))?;
        Ok(Box::new(NatsSubscription(sub)))
    }

    async fn lag(&self, address: &str, group: &str) -> Result<Option<u64>, BusError> {
        let mut c: jetstream::consumer::Consumer<pull::Config> = self
            .js
            .get_consumer_from_stream(group, stream_name(address))
            .await
            .map_err(|e| BusError::op(T, "consumer info", e))?;
        let info = c
            .info()
            .await
            .map_err(|e| BusError::op(T, "consumer info", e))?;
        Ok(Some(info.num_pending))
    }

    async fn remove(&self, address: &str, _: &[&str]) -> Result<(), BusError> {
        self.streams.lock().expect("lock").remove(address);
        match self.js.delete_stream(stream_name(address)).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(BusError::op(T, "delete stream", e)),
        }
    }

    async fn close(&self) {
        let _ = self.client.drain().await;
    }
}

struct NatsConsumer(pull::Stream);

#[async_trait]
impl Consumer for NatsConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            match self.0.next().await {
                None => return Err(BusError::Closed(T)),
                Some(Err(e)) => {
                    // Heartbeat gaps and the like: the stream carries on.
                    tracing::debug!(error = %e, "nats consumer");
                    continue;
                }
                Some(Ok(m)) => {
                    let redelivered = m.info().map(|i| i.delivered > 1).unwrap_or(false);
                    return Ok(Delivery {
                        envelope: to_envelope(&m.message),
                        redelivered,
                        acker: Box::new(NatsAcker(m)),
                    });
                }
            }
        }
    }
}

struct NatsAcker(jetstream::Message);

#[async_trait]
impl Acker for NatsAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.0
            .double_ack()
            .await
            .map_err(|e| BusError::op(T, "ack", e))
    }

    async fn nack(self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        self.0
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| BusError::op(T, "nak", e))
    }
}

struct NatsSubscription(async_nats::Subscriber);

#[async_trait]
impl Subscription for NatsSubscription {
    async fn next(&mut self) -> Result<Envelope, BusError> {
        let m = self.0.next().await.ok_or(BusError::Closed(T))?;
        Ok(to_envelope(&m))
    }
}
