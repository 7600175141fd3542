//! RabbitMQ over AMQP 0-9-1 (lapin).
//!
//! - publish goes to the `amq.topic` exchange with the address as routing key, with publisher
//!   confirms, persistent delivery mode, and the envelope in the message properties
//!   (`message_id` = `ce-id`, `correlation_id`, `reply_to`, `content_type`) plus every attribute
//!   in the headers table;
//! - a group is the durable queue `<address>@<group>` bound to `amq.topic` with routing key
//!   `<address>`; competing consumers share it, `basic.qos` prefetch is the window; a consumer
//!   whose connection closes has its unacknowledged deliveries requeued at once;
//! - a subscription is a server-named, exclusive, auto-delete queue with the same binding,
//!   consumed on one channel shared by every subscription of the connection;
//! - an **event stream** address ([`naming::is_events`](crate::naming::is_events)) is one
//!   RabbitMQ **stream** (`x-queue-type: stream`, durable, named `<address>@stream`, bound the
//!   same way) whatever the group: the stream keeps every event, and each consumer reads it
//!   from its first offset (`x-stream-offset: first`), so a reader that joins late replays the
//!   whole stream. RabbitMQ tracks no position per group on a stream (the offset tracking of
//!   the stream protocol is not part of AMQP 0-9-1): a consumer that reconnects replays from
//!   the start again, acknowledgements only return credit, and a nack does not requeue.
//!
//! Consumers are ended with an explicit `basic.cancel` before their channel closes: lapin 4
//! cancels a dropped consumer in the background, and when that cancel meets a channel that is
//! already closing it records a connection error, after which the connection opens no channel.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
        BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

use crate::{
    bus::{Acker, Bus, BusError, ConsumeOptions, Consumer, Delivery, Subscription},
    envelope::{Envelope, header},
};

const T: &str = "amqp";
const EXCHANGE: &str = "amq.topic";

/// A RabbitMQ connection.
#[derive(Debug)]
pub struct AmqpBus {
    conn: Connection,
    publisher: Channel,
    /// Every subscription's consumer: a subscription opens and closes no channel of its own.
    subscriber: Channel,
}

/// The queue of `group` on `address` (`<address>@stream` for every group of an event
/// stream).
pub fn queue_name(address: &str, group: &str) -> String {
    if crate::naming::is_events(address) {
        format!("{address}@stream")
    } else {
        format!("{address}@{group}")
    }
}

impl AmqpBus {
    /// Connects to `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`).
    ///
    /// # Errors
    /// [`BusError::Unreachable`] naming the URL when no broker answers within 5 s.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let unreachable = |reason: String| BusError::Unreachable {
            transport: T,
            url: url.into(),
            reason,
        };
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            Connection::connect(url, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| unreachable("no answer within 5 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let publisher = conn
            .create_channel()
            .await
            .map_err(|e| BusError::op(T, "open channel", e))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| BusError::op(T, "confirm.select", e))?;
        let subscriber = conn
            .create_channel()
            .await
            .map_err(|e| BusError::op(T, "open channel", e))?;
        Ok(Self {
            conn,
            publisher,
            subscriber,
        })
    }

    async fn declare(
        &self,
        channel: &Channel,
        address: &str,
        group: &str,
    ) -> Result<String, BusError> {
        let queue = queue_name(address, group);
        let mut args = FieldTable::default();
        if crate::naming::is_events(address) {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString(LongString::from("stream")),
            );
        }
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                args,
            )
            .await
            .map_err(|e| BusError::op(T, "queue.declare", e))?;
        channel
            .queue_bind(
                queue.as_str().into(),
                EXCHANGE.into(),
                address.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| BusError::op(T, "queue.bind", e))?;
        Ok(queue)
    }
}

fn properties(env: &Envelope) -> BasicProperties {
    let mut table = FieldTable::default();
    for (k, v) in &env.headers {
        table.insert(
            ShortString::from(k.as_str()),
            AMQPValue::LongString(LongString::from(v.as_bytes())),
        );
    }
    let mut p = BasicProperties::default()
        .with_headers(table)
        .with_delivery_mode(2);
    if let Some(id) = env.id() {
        p = p.with_message_id(id.into());
    }
    if let Some(c) = env.get(header::CORRELATION_ID) {
        p = p.with_correlation_id(c.into());
    }
    if let Some(r) = env.reply_to() {
        p = p.with_reply_to(r.into());
    }
    if let Some(ct) = env.get(header::CONTENT_TYPE) {
        p = p.with_content_type(ct.into());
    }
    p
}

fn to_envelope(props: &BasicProperties, data: Vec<u8>) -> Envelope {
    let mut env = Envelope {
        body: data.into(),
        ..Default::default()
    };
    if let Some(h) = props.headers() {
        for (k, v) in h {
            let value = match v {
                AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                AMQPValue::ShortString(s) => s.as_str().to_owned(),
                other => format!("{other:?}"),
            };
            env.set(&k.as_str().to_ascii_lowercase(), &value);
        }
    }
    let native = [
        (header::ID, props.message_id()),
        (header::CORRELATION_ID, props.correlation_id()),
        (header::REPLY_TO, props.reply_to()),
        (header::CONTENT_TYPE, props.content_type()),
    ];
    for (name, value) in native {
        if let (None, Some(v)) = (env.get(name), value) {
            env.set(name, v.as_str());
        }
    }
    env
}

#[async_trait]
impl Bus for AmqpBus {
    fn transport(&self) -> &'static str {
        T
    }

    async fn ensure(&self, address: &str, group: &str, _: ConsumeOptions) -> Result<(), BusError> {
        self.declare(&self.publisher, address, group)
            .await
            .map(drop)
    }

    async fn publish(&self, address: &str, envelope: Envelope) -> Result<(), BusError> {
        let props = properties(&envelope);
        self.publisher
            .basic_publish(
                EXCHANGE.into(),
                address.into(),
                BasicPublishOptions::default(),
                &envelope.body,
                props,
            )
            .await
            .map_err(|e| BusError::op(T, "publish", e))?
            .await
            .map_err(|e| BusError::op(T, "publish confirm", e))?;
        Ok(())
    }

    async fn consume(
        &self,
        address: &str,
        group: &str,
        name: &str,
        options: ConsumeOptions,
    ) -> Result<Box<dyn Consumer>, BusError> {
        let channel = self
            .conn
            .create_channel()
            .await
            .map_err(|e| BusError::op(T, "open channel", e))?;
        channel
            .basic_qos(
                u16::try_from(options.prefetch).unwrap_or(u16::MAX),
                BasicQosOptions::default(),
            )
            .await
            .map_err(|e| BusError::op(T, "basic.qos", e))?;
        let queue = self.declare(&channel, address, group).await?;
        let mut args = FieldTable::default();
        if crate::naming::is_events(address) {
            args.insert(
                "x-stream-offset".into(),
                AMQPValue::LongString(LongString::from("first")),
            );
        }
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                format!("{name}-{}", uuid::Uuid::new_v4()).as_str().into(),
                BasicConsumeOptions::default(),
                args,
            )
            .await
            .map_err(|e| BusError::op(T, "basic.consume", e))?;
        Ok(Box::new(AmqpConsumer(Ended {
            consumer: Some(consumer),
            channel,
            close_channel: true,
        })))
    }

    async fn subscribe(&self, address: &str) -> Result<Box<dyn Subscription>, BusError> {
        let channel = &self.subscriber;
        let q = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| BusError::op(T, "queue.declare", e))?;
        channel
            .queue_bind(
                q.name().clone(),
                EXCHANGE.into(),
                address.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| BusError::op(T, "queue.bind", e))?;
        let consumer = channel
            .basic_consume(
                q.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| BusError::op(T, "basic.consume", e))?;
        Ok(Box::new(AmqpSubscription(Ended {
            consumer: Some(consumer),
            channel: channel.clone(),
            close_channel: false,
        })))
    }

    async fn lag(&self, address: &str, group: &str) -> Result<Option<u64>, BusError> {
        let q = self
            .publisher
            .queue_declare(
                queue_name(address, group).as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| BusError::op(T, "queue.declare", e))?;
        Ok(Some(u64::from(q.message_count())))
    }

    async fn remove(&self, address: &str, groups: &[&str]) -> Result<(), BusError> {
        for g in groups {
            self.publisher
                .queue_delete(
                    queue_name(address, g).as_str().into(),
                    QueueDeleteOptions::default(),
                )
                .await
                .map_err(|e| BusError::op(T, "queue.delete", e))?;
        }
        Ok(())
    }

    async fn close(&self) {
        let _ = self.conn.close(320, "closed".into()).await;
    }
}

/// A consumer that, when dropped, is cancelled with `basic.cancel` and only then has its
/// channel closed (when it owns the channel), in that order.
struct Ended {
    consumer: Option<lapin::Consumer>,
    channel: Channel,
    close_channel: bool,
}

impl Ended {
    fn consumer(&mut self) -> &mut lapin::Consumer {
        self.consumer
            .as_mut()
            .expect("the consumer is only taken on drop")
    }
}

impl Drop for Ended {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        let channel = self.channel.clone();
        let close = self.close_channel;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = channel
                    .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                    .await;
                drop(consumer);
                if close {
                    let _ = channel.close(200, "done".into()).await;
                }
            });
        }
    }
}

struct AmqpConsumer(Ended);

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        let d = self
            .0
            .consumer()
            .next()
            .await
            .ok_or(BusError::Closed(T))?
            .map_err(|e| BusError::op(T, "consume", e))?;
        Ok(Delivery {
            envelope: to_envelope(&d.properties, d.data),
            redelivered: d.redelivered,
            acker: Box::new(AmqpAcker(d.acker)),
        })
    }
}

struct AmqpAcker(lapin::Acker);

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.0
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .map_err(|e| BusError::op(T, "ack", e))
    }

    async fn nack(self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        // AMQP 0-9-1 has no delayed requeue: hold the delivery, then requeue it.
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = self
                .0
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await;
        });
        Ok(())
    }
}

struct AmqpSubscription(Ended);

#[async_trait]
impl Subscription for AmqpSubscription {
    async fn next(&mut self) -> Result<Envelope, BusError> {
        let d = self
            .0
            .consumer()
            .next()
            .await
            .ok_or(BusError::Closed(T))?
            .map_err(|e| BusError::op(T, "subscribe", e))?;
        Ok(to_envelope(&d.properties, d.data))
    }
}
