//! Kafka (rdkafka, bundled librdkafka), e.g. against Tansu or Apache Kafka.
//!
//! Why rdkafka and not rskafka: the bridge's work queue needs **consumer groups** (partition
//! assignment, rebalancing when a bridge dies, committed offsets), which librdkafka implements
//! and rskafka does not; the price is a C build (+80 s on a clean build).
//!
//! - an address is a topic of the same name, created on first use: an agent's request address
//!   (`<prefix>.agent.<agent>`) with [`REQUEST_PARTITIONS`] partitions, so that the bridges of
//!   a group share them (records are keyed by message id), every other address with one, so an
//!   event stream keeps its order;
//! - every envelope attribute is a Kafka record header; the record key is `ce-id`;
//! - a group is a Kafka consumer group (`auto.offset.reset = earliest`, no auto-commit): a
//!   delivery's offset is committed once it and every earlier delivery of its partition are
//!   acknowledged (at least once), within one assignment: a delivery acknowledged after a
//!   rebalance commits nothing and comes again (`Pending`); a nack republishes the record
//!   and acknowledges the original;
//! - a subscription is assigned every partition of the topic at its high watermark (no group);
//! - **event-stream replay** is native: a new group reads a topic from its first offset;
//! - **lag** ([`Bus::lag`]) is, summed over the topic's partitions, the high watermark minus
//!   the group's committed offset (the low watermark where the group has committed nothing).
//! - [`Bus::remove`] deletes the topic and the named consumer groups (DeleteTopics,
//!   DeleteGroups) — only once this process's own consumers of the topic are gone;
//! - **no skipped records**: a consumer or subscription that is handed a record past the next
//!   offset it expects seeks back and reads again ([`Gaps`]): Tansu 0.6 lets a fetch return
//!   later records of a partition before an earlier one being appended concurrently is
//!   readable, and librdkafka then moves past it for good.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::{
    ClientConfig, Message as _, Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::{ClientContext, DefaultClientContext},
    consumer::{
        BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
    },
    error::RDKafkaErrorCode,
    message::{Header, Headers as _, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer as _},
};
use tokio_util::sync::CancellationToken;

use crate::{
    bus::{Acker, Bus, BusError, ConsumeOptions, Consumer, Delivery, Subscription},
    envelope::{Envelope, header},
};

const T: &str = "kafka";
const TIMEOUT: Duration = Duration::from_secs(10);
/// Partitions of an agent's request topic: at most this many bridges of a group work at once.
pub const REQUEST_PARTITIONS: i32 = 4;

/// A Kafka cluster connection: one producer and an admin client; each consumer and
/// subscription is its own librdkafka consumer.
pub struct KafkaBus {
    url: String,
    servers: String,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// One consumer per group for reading committed offsets (it never joins the group).
    offsets: Mutex<std::collections::HashMap<String, Arc<BaseConsumer>>>,
    stop: CancellationToken,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn op(op: &'static str) -> impl Fn(rdkafka::error::KafkaError) -> BusError {
    move |e| BusError::op(T, op, e)
}

/// Checks `address` is a legal Kafka topic name (`[a-zA-Z0-9._-]`, 1..=249 characters).
///
/// # Errors
/// [`BusError::Invalid`] naming the rule.
pub fn topic(address: &str) -> Result<&str, BusError> {
    if address.is_empty()
        || address.len() > 249
        || !address
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(BusError::Invalid(format!(
            "Kafka topic {address:?}: 1 to 249 characters of [a-zA-Z0-9._-]"
        )));
    }
    Ok(address)
}

impl KafkaBus {
    /// Connects to `url` (`kafka://host:port[,host:port…]`, e.g. `kafka://127.0.0.1:9092`).
    ///
    /// # Errors
    /// [`BusError::Invalid`] for a bad URL; [`BusError::Unreachable`] naming the URL when no
    /// broker returns metadata within 5 s.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let servers = url
            .strip_prefix("kafka://")
            .map(|s| s.trim_end_matches('/'))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                BusError::Invalid(format!(
                    "Kafka URL {url:?}: expected kafka://host:port[,host:port…]"
                ))
            })?
            .to_owned();
        let base = Self::config(&servers);
        let producer: FutureProducer = base
            .clone()
            .set("acks", "all")
            // Request/reply: send at once rather than batching for 5 ms.
            .set("linger.ms", "0")
            .set("message.timeout.ms", "10000")
            .create()
            .map_err(op("create producer"))?;
        let admin: AdminClient<DefaultClientContext> =
            base.create().map_err(op("create admin client"))?;
        let probe = producer.clone();
        let meta = tokio::task::spawn_blocking(move || {
            probe
                .client()
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|_| ())
        })
        .await
        .map_err(|e| BusError::op(T, "metadata", e))?;
        meta.map_err(|e| BusError::Unreachable {
            transport: T,
            url: url.into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            url: url.into(),
            servers,
            producer,
            admin,
            offsets: Mutex::default(),
            stop: CancellationToken::new(),
        })
    }

    fn config(servers: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", servers)
            .set("socket.timeout.ms", "5000")
            .set("log_level", "3");
        c
    }

    /// Creates `topic` unless it exists (partitions: see the module comment).
    async fn create(&self, address: &str) -> Result<(), BusError> {
        let name = topic(address)?;
        let partitions = if name.contains(".agent.") {
            REQUEST_PARTITIONS
        } else {
            1
        };
        let results = self
            .admin
            .create_topics(
                &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
            )
            .await
            .map_err(op("create topic"))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(BusError::op(T, "create topic", format!("{t}: {code}")));
                }
            }
        }
        Ok(())
    }
}

fn to_envelope(m: &impl rdkafka::Message) -> Envelope {
    let mut env = Envelope {
        body: m.payload().map(Bytes::copy_from_slice).unwrap_or_default(),
        ..Default::default()
    };
    if let Some(hs) = m.headers() {
        for h in hs.iter() {
            if let Some(v) = h.value {
                env.set(&h.key.to_ascii_lowercase(), &String::from_utf8_lossy(v));
            }
        }
    }
    env
}

async fn send(producer: &FutureProducer, address: &str, env: &Envelope) -> Result<(), BusError> {
    let mut headers = OwnedHeaders::new_with_capacity(env.headers.len());
    for (k, v) in &env.headers {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    let mut record = FutureRecord::<str, [u8]>::to(topic(address)?)
        .payload(env.body.as_ref())
        .headers(headers);
    if let Some(id) = env.get(header::ID) {
        record = record.key(id);
    }
    producer
        .send(record, TIMEOUT)
        .await
        .map(drop)
        .map_err(|(e, _)| BusError::op(T, "publish", e))
}

#[async_trait]
impl Bus for KafkaBus {
    fn transport(&self) -> &'static str {
        T
    }

    /// Creates the topic; a group that has not committed yet starts from the first offset, so
    /// nothing published in between is lost.
    async fn ensure(&self, address: &str, _: &str, _: ConsumeOptions) -> Result<(), BusError> {
        self.create(address).await
    }

    async fn publish(&self, address: &str, envelope: Envelope) -> Result<(), BusError> {
        if self.stop.is_cancelled() {
            return Err(BusError::Closed(T));
        }
        send(&self.producer, address, &envelope).await
    }

    async fn consume(
        &self,
        address: &str,
        group: &str,
        name: &str,
        options: ConsumeOptions,
    ) -> Result<Box<dyn Consumer>, BusError> {
        self.create(address).await?;
        let session = options
            .ack_wait
            .as_millis()
            .clamp(6000, 300_000)
            .to_string();
        let consumer: StreamConsumer<GroupContext> = Self::config(&self.servers)
            .set("group.id", group)
            .set("client.id", name)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", &session)
            .set("heartbeat.interval.ms", "1000")
            // The broker answers a fetch as soon as a record is there, else after 10 ms
            // (default 500 ms: a request/reply round trip would wait for it).
            .set("fetch.wait.max.ms", "10")
            .create_with_context(GroupContext::default())
            .map_err(op("create consumer"))?;
        consumer
            .subscribe(&[topic(address)?])
            .map_err(op("subscribe"))?;
        Ok(Box::new(KafkaConsumer {
            consumer: Arc::new(consumer),
            producer: self.producer.clone(),
            stop: self.stop.clone(),
        }))
    }

    async fn subscribe(&self, address: &str) -> Result<Box<dyn Subscription>, BusError> {
        self.create(address).await?;
        let name = topic(address)?.to_owned();
        let consumer: StreamConsumer = Self::config(&self.servers)
            .set(
                "group.id",
                format!("sy-sub-{}", uuid::Uuid::new_v4().simple()),
            )
            .set("fetch.wait.max.ms", "10")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(op("create consumer"))?;
        let (consumer, gaps) = tokio::task::spawn_blocking(move || {
            let meta = consumer.fetch_metadata(Some(&name), TIMEOUT)?;
            let mut tpl = TopicPartitionList::new();
            let mut gaps = Gaps::default();
            for t in meta.topics() {
                for p in t.partitions() {
                    let (_, high) = consumer.fetch_watermarks(&name, p.id(), TIMEOUT)?;
                    tpl.add_partition_offset(&name, p.id(), Offset::Offset(high))?;
                    gaps.expect(p.id(), high);
                }
            }
            consumer.assign(&tpl)?;
            Ok::<_, rdkafka::error::KafkaError>((consumer, gaps))
        })
        .await
        .map_err(|e| BusError::op(T, "assign", e))?
        .map_err(op("assign"))?;
        Ok(Box::new(KafkaSubscription {
            consumer: Arc::new(consumer),
            gaps,
            stop: self.stop.clone(),
        }))
    }

    async fn lag(&self, address: &str, group: &str) -> Result<Option<u64>, BusError> {
        let name = topic(address)?.to_owned();
        let consumer = {
            let mut offsets = self.offsets.lock().expect("offset consumers");
            match offsets.get(group) {
                Some(c) => c.clone(),
                None => {
                    let c: BaseConsumer = Self::config(&self.servers)
                        .set("group.id", group)
                        .set("enable.auto.commit", "false")
                        .create()
                        .map_err(op("create consumer"))?;
                    let c = Arc::new(c);
                    offsets.insert(group.to_owned(), c.clone());
                    c
                }
            }
        };
        let lag = tokio::task::spawn_blocking(move || -> Result<u64, BusError> {
            let meta = consumer
                .fetch_metadata(Some(&name), TIMEOUT)
                .map_err(op("metadata"))?;
            let partitions: Vec<i32> = meta
                .topics()
                .iter()
                .filter(|t| t.name() == name)
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition(&name, *p);
            }
            let committed = consumer
                .committed_offsets(tpl, TIMEOUT)
                .map_err(op("committed offsets"))?;
            let mut lag = 0u64;
            for p in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(&name, p, TIMEOUT)
                    .map_err(op("watermarks"))?;
                let from = match committed.find_partition(&name, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o.max(low),
                    _ => low,
                };
                lag += u64::try_from(high - from).unwrap_or(0);
            }
            Ok(lag)
        })
        .await
        .map_err(|e| BusError::op(T, "lag", e))??;
        Ok(Some(lag))
    }

    /// Deletes the topic (DeleteTopics) and the consumer groups `groups` with their committed
    /// offsets (DeleteGroups); a topic or group that does not exist is not an error. Call it
    /// once this process is done with the topic: librdkafka 2.12 has been seen crashing
    /// (SIGSEGV in `rd_kafka_metadata_cache_find`, against Tansu 0.6) when a topic its own
    /// live consumers were still reading was deleted.
    async fn remove(&self, address: &str, groups: &[&str]) -> Result<(), BusError> {
        let name = topic(address)?;
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        if !groups.is_empty() {
            let results = self
                .admin
                .delete_groups(groups, &options)
                .await
                .map_err(op("delete groups"))?;
            for r in results {
                match r {
                    Ok(_)
                    | Err((_, RDKafkaErrorCode::GroupIdNotFound))
                    | Err((_, RDKafkaErrorCode::InvalidGroupId)) => {}
                    Err((g, code)) => {
                        return Err(BusError::op(T, "delete group", format!("{g}: {code}")));
                    }
                }
            }
        }
        if let Ok(mut offsets) = self.offsets.lock() {
            for g in groups {
                offsets.remove(*g);
            }
        }
        let results = self
            .admin
            .delete_topics(&[name], &options)
            .await
            .map_err(op("delete topic"))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((t, code)) => {
                    return Err(BusError::op(T, "delete topic", format!("{t}: {code}")));
                }
            }
        }
        Ok(())
    }

    async fn close(&self) {
        self.stop.cancel();
    }
}

/// A group consumer's deliveries not committed yet: per partition, the offsets handed out and
/// whether each is acknowledged; all of them of the current assignment.
///
/// A rebalance (any: librdkafka's default protocol revokes every partition, then assigns)
/// starts a new generation and forgets the old one's offsets: a partition's fetch restarts at
/// its committed offset, and a delivery of an earlier generation commits nothing when it is
/// acknowledged (its partition may be another member's now, and a commit of it would move
/// that member's committed offset, back or ahead; it is delivered again, at least once).
#[derive(Debug, Default)]
struct Pending {
    generation: u64,
    offsets: BTreeMap<(String, i32), BTreeMap<i64, bool>>,
}

impl Pending {
    /// Records a delivery handed out now; the generation it belongs to.
    fn deliver(&mut self, topic: &str, partition: i32, offset: i64) -> u64 {
        self.offsets
            .entry((topic.to_owned(), partition))
            .or_default()
            .insert(offset, false);
        self.generation
    }

    /// Records the acknowledgement of a delivery of `generation`; the offset to commit (one
    /// past the longest acknowledged prefix of its partition), if it moved. A delivery of an
    /// earlier generation changes nothing.
    fn ack(&mut self, generation: u64, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        if generation != self.generation {
            return None;
        }
        let offsets = self.offsets.get_mut(&(topic.to_owned(), partition))?;
        *offsets.get_mut(&offset)? = true;
        let mut done = None;
        while let Some((&o, &acked)) = offsets.first_key_value() {
            if !acked {
                break;
            }
            offsets.pop_first();
            done = Some(o + 1);
        }
        done
    }

    /// A rebalance: a new generation, nothing pending.
    fn rebalanced(&mut self) {
        self.generation += 1;
        self.offsets.clear();
    }
}

/// Offsets of a partition are contiguous in the topics the mesh writes (no compaction, no
/// transactions): a record handed out past the next expected offset means the fetch skipped
/// records, which Tansu 0.6 does under concurrent appends — a fetch can return later records
/// before an earlier batch is readable (seen with librdkafka 2.16 too: 2 of 4 runs of 12,000
/// records from 3 producers lost 1 to 50 records for a live reader, all of them in the topic
/// when read again). The reader then seeks back to the first missing offset, up to
/// [`MAX_REFETCHES`] times for the same gap, and accepts the gap after that (a compacted
/// topic or a transactional producer's control records leave gaps that never fill).
#[derive(Debug, Default)]
struct Gaps {
    /// Per partition, the offset the next record should have.
    next: HashMap<i32, i64>,
    /// The gap being read again: partition, first missing offset, tries so far.
    refetching: Option<(i32, i64, u32)>,
}

/// Reads of one gap before it is accepted (each is a seek and a fetch, ≥ 10 ms here).
const MAX_REFETCHES: u32 = 20;

impl Gaps {
    /// The next record of `partition` should be at `offset` (where a fetch starts).
    fn expect(&mut self, partition: i32, offset: i64) {
        self.next.insert(partition, offset);
    }

    /// A record at `offset` of `partition` arrived: `None` to hand it out, `Some(first
    /// missing offset)` to seek back there and drop it (it comes again after the gap).
    fn check(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        if let Some(&expected) = self.next.get(&partition)
            && offset > expected
        {
            let tries = match self.refetching {
                Some((p, o, n)) if p == partition && o == expected => n + 1,
                _ => 1,
            };
            if tries <= MAX_REFETCHES {
                self.refetching = Some((partition, expected, tries));
                tracing::debug!(
                    topic,
                    partition,
                    expected,
                    got = offset,
                    tries,
                    "Kafka fetch skipped records; reading again from the first missing offset"
                );
                return Some(expected);
            }
            tracing::warn!(
                topic,
                partition,
                expected,
                got = offset,
                "Kafka offsets {expected}..{offset} were never delivered after \
                 {MAX_REFETCHES} reads; going on without them"
            );
        }
        if self.refetching.is_some_and(|(p, _, _)| p == partition) {
            self.refetching = None;
        }
        self.next.insert(partition, offset + 1);
        None
    }
}

/// Moves the fetch position of `partition` back to `offset` (a blocking librdkafka call: the
/// seek is applied before the next `recv`, so no record of the skipped fetch is handed out).
async fn seek<C: ConsumerContext + 'static>(
    consumer: &Arc<StreamConsumer<C>>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(), BusError> {
    let (consumer, topic) = (consumer.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
        // A partition error (e.g. it was revoked meanwhile) is not ours to handle: the new
        // assignment starts from the committed offset.
        consumer.seek_partitions(tpl, TIMEOUT).map(drop)
    })
    .await
    .map_err(|e| BusError::op(T, "seek", e))?
    .map_err(op("seek"))
}

/// A group consumer's context: after each rebalance, where the fetch of every assigned
/// partition starts (its committed offset, else the first one), for [`Gaps`].
#[derive(Debug, Default)]
struct GroupContext {
    gaps: Mutex<Gaps>,
    pending: Mutex<Pending>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    /// Runs inside `recv`, on the task that polls the consumer: the broker round trips
    /// (OffsetFetch, then ListOffsets per partition with nothing committed, each bounded by
    /// [`TIMEOUT`]) block that thread, so on a multi-threaded runtime the worker first hands
    /// its other tasks to another thread (`block_in_place`).
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut starts = Vec::new();
        if let Rebalance::Assign(assigned) = rebalance {
            blocking(|| {
                let Ok(committed) = consumer.committed_offsets((*assigned).clone(), TIMEOUT) else {
                    return;
                };
                for e in committed.elements() {
                    let start = match e.offset() {
                        Offset::Offset(o) => Some(o),
                        // Nothing committed: `auto.offset.reset = earliest`.
                        _ => consumer
                            .fetch_watermarks(e.topic(), e.partition(), TIMEOUT)
                            .ok()
                            .map(|(low, _)| low),
                    };
                    starts.extend(start.map(|o| (e.partition(), o)));
                }
            });
        }
        let mut gaps = self.gaps.lock().unwrap_or_else(|e| e.into_inner());
        *gaps = Gaps::default();
        for (partition, offset) in starts {
            gaps.expect(partition, offset);
        }
        drop(gaps);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rebalanced();
    }
}

/// Runs `f`, which blocks on the network, from async code: through `block_in_place` on a
/// multi-threaded Tokio runtime (the worker's other tasks move to another thread); elsewhere
/// it just runs `f` (a current-thread runtime has no other thread to hand them to).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

struct KafkaConsumer {
    consumer: Arc<StreamConsumer<GroupContext>>,
    producer: FutureProducer,
    stop: CancellationToken,
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        let (topic, partition, offset, envelope) = loop {
            let m = tokio::select! {
                () = self.stop.cancelled() => return Err(BusError::Closed(T)),
                m = self.consumer.recv() => m.map_err(op("consume"))?,
            };
            let (partition, offset) = (m.partition(), m.offset());
            let skipped = (self.consumer.context().gaps.lock())
                .unwrap_or_else(|e| e.into_inner())
                .check(m.topic(), partition, offset);
            let topic = m.topic().to_owned();
            match skipped {
                None => break (topic, partition, offset, to_envelope(&m)),
                Some(from) => {
                    drop(m);
                    seek(&self.consumer, &topic, partition, from).await?;
                }
            }
        };
        // Rebalance callbacks run inside `recv` (this task polls the consumer), so the
        // generation read here is the one the record was fetched in.
        let generation = (self.consumer.context().pending.lock())
            .unwrap_or_else(|e| e.into_inner())
            .deliver(&topic, partition, offset);
        Ok(Delivery {
            redelivered: envelope.attempt() > 1,
            envelope: envelope.clone(),
            acker: Box::new(KafkaAcker {
                envelope,
                consumer: self.consumer.clone(),
                producer: self.producer.clone(),
                topic,
                partition,
                offset,
                generation,
            }),
        })
    }
}

struct KafkaAcker {
    consumer: Arc<StreamConsumer<GroupContext>>,
    producer: FutureProducer,
    topic: String,
    partition: i32,
    offset: i64,
    /// The assignment it was delivered in ([`Pending`]).
    generation: u64,
    /// Republished by a nack.
    envelope: Envelope,
}

#[async_trait]
impl Acker for KafkaAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        // Commit past the longest acknowledged prefix of this partition's deliveries.
        let commit = (self.consumer.context().pending.lock())
            .unwrap_or_else(|e| e.into_inner())
            .ack(self.generation, &self.topic, self.partition, self.offset);
        if let Some(o) = commit {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(o))
                .map_err(op("commit"))?;
            self.consumer
                .commit(&tpl, CommitMode::Async)
                .map_err(op("commit"))?;
        }
        Ok(())
    }

    async fn nack(self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        tokio::time::sleep(delay).await;
        send(&self.producer, &self.topic, &self.envelope).await?;
        self.ack().await
    }
}

struct KafkaSubscription {
    consumer: Arc<StreamConsumer>,
    /// Starts at the high watermarks the subscription was assigned at.
    gaps: Gaps,
    stop: CancellationToken,
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Envelope, BusError> {
        loop {
            let m = tokio::select! {
                () = self.stop.cancelled() => return Err(BusError::Closed(T)),
                m = self.consumer.recv() => m.map_err(op("subscribe"))?,
            };
            let partition = m.partition();
            match self.gaps.check(m.topic(), partition, m.offset()) {
                None => return Ok(to_envelope(&m)),
                Some(from) => {
                    let topic = m.topic().to_owned();
                    drop(m);
                    seek(&self.consumer, &topic, partition, from).await?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_commit_the_acknowledged_prefix_of_the_current_assignment_only() {
        let mut p = Pending::default();
        let g = p.deliver("t", 0, 10);
        p.deliver("t", 0, 11);
        assert_eq!(p.ack(g, "t", 0, 11), None, "10 is still out");
        assert_eq!(p.ack(g, "t", 0, 10), Some(12), "past 10 and 11");
        let before = p.deliver("t", 1, 5);
        p.rebalanced();
        let after = p.deliver("t", 1, 3);
        assert_ne!(before, after);
        assert_eq!(
            p.ack(before, "t", 1, 5),
            None,
            "a delivery of an earlier assignment commits nothing"
        );
        assert_eq!(p.ack(after, "t", 1, 3), Some(4));
        assert_eq!(p.ack(after, "t", 2, 0), None, "never delivered");
    }

    #[test]
    fn a_skipped_range_is_read_again_then_accepted_after_max_refetches() {
        let mut g = Gaps::default();
        // Nothing expected yet: the first record sets the baseline.
        assert_eq!(g.check("t", 0, 7), None);
        assert_eq!(g.check("t", 0, 8), None);
        // 9 and 10 skipped: read again from 9, as often as MAX_REFETCHES.
        for _ in 0..MAX_REFETCHES {
            assert_eq!(g.check("t", 0, 11), Some(9));
        }
        // Then the gap is accepted and reading goes on after the record that arrived.
        assert_eq!(g.check("t", 0, 11), None);
        assert_eq!(g.check("t", 0, 12), None);
        assert_eq!(
            g.check("t", 0, 14),
            Some(13),
            "a new gap counts from one again"
        );
    }

    #[test]
    fn a_refilled_gap_resets_and_partitions_are_apart() {
        let mut g = Gaps::default();
        g.expect(0, 100);
        g.expect(1, 5);
        assert_eq!(g.check("t", 0, 102), Some(100));
        // After the seek the missing records come, in order.
        assert_eq!(g.check("t", 0, 100), None);
        assert_eq!(g.check("t", 0, 101), None);
        assert_eq!(g.check("t", 0, 102), None);
        assert_eq!(g.refetching, None);
        // Another partition has its own expectation.
        assert_eq!(g.check("t", 1, 5), None);
        assert_eq!(g.check("t", 1, 9), Some(6));
        // A record before the expected offset (a redelivery after a rebalance) is handed out
        // and reading goes on from it.
        assert_eq!(g.check("t", 0, 50), None);
        assert_eq!(g.check("t", 0, 51), None);
    }
}
