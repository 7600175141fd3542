//! The bus bridge against real brokers (NATS/JetStream 4222, RabbitMQ 5672, Redis 6379,
//! Mosquitto 1883 on 127.0.0.1; override with SWITCHYARD_TEST_NATS / _AMQP / _REDIS / _MQTT;
//! Kafka: a Tansu broker each test process starts, or SWITCHYARD_TEST_KAFKA) and the real echo
//! agent.
//! A test whose broker is not running fails with a message naming it. Every test uses its own
//! address prefix and removes what it created (Kafka: topics and consumer groups deleted through
//! a fresh connection once the test's own clients are gone, see `support::cleaner`).

mod brokers;
mod events;
mod lag;
mod poison;
mod pubsub;
mod request_reply;
mod support;
mod trace;
mod work_queue;
