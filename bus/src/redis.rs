//! Redis Streams with consumer groups (redis).
//!
//! - an address is a stream key; publish is `XADD <key> MAXLEN ~ 100000 *` with every envelope
//!   attribute as a field and the body in the field `data`; reply streams
//!   (`<prefix>.reply.<id>`) expire a minute after the reply;
//! - a group is a Redis consumer group (`XGROUP CREATE … 0 MKSTREAM`); consumers read with
//!   `XREADGROUP … COUNT <prefetch> BLOCK 1000 … >` on their own connection, ack with `XACK`;
//! - Redis has no broker-side redelivery: every consumer reclaims entries left pending longer
//!   than `ack_wait` (a dead consumer's) with `XAUTOCLAIM`; a nack leaves the entry pending so
//!   it is reclaimed the same way;
//! - a subscription reads with `XREAD BLOCK` from the server's current time (`TIME`).

use std::{collections::VecDeque, time::Duration};

use async_trait::async_trait;
use redis::{
    AsyncConnectionConfig, Value,
    aio::MultiplexedConnection,
    streams::{StreamAutoClaimReply, StreamId, StreamReadReply},
};
use tokio::time::Instant;

use crate::{
    bus::{Acker, Bus, BusError, ConsumeOptions, Consumer, Delivery, Subscription},
    envelope::Envelope,
};

const T: &str = "redis";
const DATA: &str = "data";

/// A Redis connection.
#[derive(Debug)]
pub struct RedisBus {
    client: redis::Client,
    conn: MultiplexedConnection,
}

fn op(op: &'static str) -> impl Fn(redis::RedisError) -> BusError {
    move |e| BusError::op(T, op, e)
}

impl RedisBus {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`).
    ///
    /// # Errors
    /// [`BusError::Unreachable`] naming the URL when no server answers within 5 s.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let unreachable = |reason: String| BusError::Unreachable {
            transport: T,
            url: url.into(),
            reason,
        };
        let client = redis::Client::open(url)
            .map_err(|e| BusError::Invalid(format!("redis URL {url:?}: {e}")))?;
        let conn = Self::open(&client)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self { client, conn })
    }

    async fn open(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
        // Blocking reads wait up to a second: no response timeout below that.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    async fn group(&self, address: &str, group: &str) -> Result<(), BusError> {
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(address)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match r {
            Err(e) if e.to_string().contains("BUSYGROUP") => Ok(()),
            other => other.map_err(op("XGROUP CREATE")),
        }
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

fn to_envelope(entry: &StreamId) -> Envelope {
    let mut env = Envelope::default();
    for (k, v) in &entry.map {
        if k == DATA {
            env.body = bytes(v).into();
        } else {
            env.set(&k.to_ascii_lowercase(), &String::from_utf8_lossy(&bytes(v)));
        }
    }
    env
}

#[async_trait]
impl Bus for RedisBus {
    fn transport(&self) -> &'static str {
        T
    }

    async fn ensure(&self, address: &str, group: &str, _: ConsumeOptions) -> Result<(), BusError> {
        self.group(address, group).await
    }

    async fn publish(&self, address: &str, envelope: Envelope) -> Result<(), BusError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(address)
            .arg("MAXLEN")
            .arg("~")
            .arg(100_000)
            .arg("*");
        for (k, v) in &envelope.headers {
            cmd.arg(k).arg(v);
        }
        cmd.arg(DATA).arg(envelope.body.as_ref());
        let mut conn = self.conn.clone();
        let _: String = cmd.query_async(&mut conn).await.map_err(op("XADD"))?;
        if address.contains(".reply.") {
            let _: redis::RedisResult<()> = redis::cmd("EXPIRE")
                .arg(address)
                .arg(60)
                .query_async(&mut conn)
                .await;
        }
        Ok(())
    }

    async fn consume(
        &self,
        address: &str,
        group: &str,
        name: &str,
        options: ConsumeOptions,
    ) -> Result<Box<dyn Consumer>, BusError> {
        self.group(address, group).await?;
        let reader = Self::open(&self.client).await.map_err(op("connect"))?;
        Ok(Box::new(RedisConsumer {
            reader,
            acks: self.conn.clone(),
            key: address.into(),
            group: group.into(),
            name: name.into(),
            options,
            ready: VecDeque::new(),
            last_claim: Instant::now(),
        }))
    }

    async fn subscribe(&self, address: &str) -> Result<Box<dyn Subscription>, BusError> {
        let mut conn = Self::open(&self.client).await.map_err(op("connect"))?;
        let (secs, micros): (u64, u64) = redis::cmd("TIME")
            .query_async(&mut conn)
            .await
            .map_err(op("TIME"))?;
        let ms = secs * 1000 + micros / 1000;
        Ok(Box::new(RedisSubscription {
            conn,
            key: address.into(),
            last: format!("{}-0", ms.saturating_sub(1)),
            ready: VecDeque::new(),
        }))
    }

    async fn lag(&self, address: &str, group: &str) -> Result<Option<u64>, BusError> {
        let groups: Vec<std::collections::HashMap<String, Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(address)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(op("XINFO GROUPS"))?;
        Ok(groups
            .iter()
            .find(|g| g.get("name").map(bytes).as_deref() == Some(group.as_bytes()))
            .and_then(|g| match g.get("lag") {
                Some(Value::Int(n)) => u64::try_from(*n).ok(),
                _ => None,
            }))
    }

    async fn remove(&self, address: &str, _: &[&str]) -> Result<(), BusError> {
        let _: i64 = redis::cmd("DEL")
            .arg(address)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(op("DEL"))?;
        Ok(())
    }

    async fn close(&self) {}
}

struct RedisConsumer {
    reader: MultiplexedConnection,
    acks: MultiplexedConnection,
    key: String,
    group: String,
    name: String,
    options: ConsumeOptions,
    ready: VecDeque<(StreamId, bool)>,
    last_claim: Instant,
}

impl RedisConsumer {
    fn delivery(&self, entry: StreamId, redelivered: bool) -> Delivery {
        Delivery {
            envelope: to_envelope(&entry),
            redelivered,
            acker: Box::new(RedisAcker {
                conn: self.acks.clone(),
                key: self.key.clone(),
                group: self.group.clone(),
                id: entry.id,
            }),
        }
    }
}

#[async_trait]
impl Consumer for RedisConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            if let Some((entry, redelivered)) = self.ready.pop_front() {
                return Ok(self.delivery(entry, redelivered));
            }
            if self.last_claim.elapsed() >= self.options.ack_wait / 2 {
                self.last_claim = Instant::now();
                let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                    .arg(&self.key)
                    .arg(&self.group)
                    .arg(&self.name)
                    .arg(u64::try_from(self.options.ack_wait.as_millis()).unwrap_or(u64::MAX))
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(self.options.prefetch.max(1))
                    .query_async(&mut self.reader)
                    .await
                    .map_err(op("XAUTOCLAIM"))?;
                self.ready
                    .extend(claimed.claimed.into_iter().map(|e| (e, true)));
                if !self.ready.is_empty() {
                    continue;
                }
            }
            let read: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.group)
                .arg(&self.name)
                .arg("COUNT")
                .arg(self.options.prefetch.max(1))
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(">")
                .query_async(&mut self.reader)
                .await
                .map_err(op("XREADGROUP"))?;
            for key in read.map(|r| r.keys).unwrap_or_default() {
                self.ready.extend(key.ids.into_iter().map(|e| (e, false)));
            }
        }
    }
}

struct RedisAcker {
    conn: MultiplexedConnection,
    key: String,
    group: String,
    id: String,
}

#[async_trait]
impl Acker for RedisAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("XACK")
            .arg(&self.key)
            .arg(&self.group)
            .arg(&self.id)
            .query_async(&mut conn)
            .await
            .map_err(op("XACK"))?;
        Ok(())
    }

    async fn nack(self: Box<Self>, _delay: Duration) -> Result<(), BusError> {
        // Left pending: reclaimed by XAUTOCLAIM after `ack_wait`.
        Ok(())
    }
}

struct RedisSubscription {
    conn: MultiplexedConnection,
    key: String,
    last: String,
    ready: VecDeque<StreamId>,
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next(&mut self) -> Result<Envelope, BusError> {
        loop {
            if let Some(entry) = self.ready.pop_front() {
                return Ok(to_envelope(&entry));
            }
            let read: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(100)
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&self.last)
                .query_async(&mut self.conn)
                .await
                .map_err(op("XREAD"))?;
            for key in read.map(|r| r.keys).unwrap_or_default() {
                if let Some(last) = key.ids.last() {
                    self.last = last.id.clone();
                }
                self.ready.extend(key.ids);
            }
        }
    }
}
