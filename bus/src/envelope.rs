//! The bus envelope, version 1: CloudEvents 1.0 attributes in transport headers, the A2A
//! payload in the body.
//!
//! | attribute (header)      | meaning                                                        |
//! |-------------------------|----------------------------------------------------------------|
//! | `ce-specversion`        | `1.0` (CloudEvents)                                            |
//! | `ce-busversion`         | `1`: the version of this envelope; other values are rejected   |
//! | `ce-id`                 | message id = the A2A `messageId` of a request (dedupe key)     |
//! | `ce-source`             | who published it (e.g. `switchyard-cli`, `bridge/<id>`)        |
//! | `ce-type`               | [`REQUEST_TYPE`], [`TASK_TYPE`] or [`EVENT_TYPE`]              |
//! | `ce-time`               | RFC 3339 publish time (optional)                               |
//! | `ce-subject`            | the target agent's name                                        |
//! | `ce-correlationid`      | correlation id; a reply carries the request's                  |
//! | `ce-replyto`            | address the final Task is published to                         |
//! | `ce-deadline`           | RFC 3339 instant after which the request is not worth running  |
//! | `ce-attempt`            | delivery attempt, 1-based (the bridge republishes with +1)     |
//! | `ce-sequence`           | event sequence number (event stream only)                      |
//! | `traceparent`, `tracestate` | W3C trace context (CloudEvents distributed-tracing extension) |
//! | `content-type`          | [`JSON`] (protobuf-JSON) or [`PROTOBUF`] (binary protobuf)     |
//! | `ce-deadletterreason`   | why a message was dead-lettered (dead-letter copies only)      |
//!
//! Each transport maps these headers onto its own facility: NATS headers, AMQP 0-9-1 message
//! properties (`message_id`, `correlation_id`, `reply_to`, `content_type`) plus the headers table,
//! Redis Stream entry fields (the body is the `data` field), MQTT 5 user properties plus
//! `correlation data`, `response topic` and `content type`.
//!
//! The body of a request is a `lf.a2a.v1.SendMessageRequest`; of a reply a `lf.a2a.v1.Task`; of
//! an event a `lf.a2a.v1.StreamResponse`; encoded as protobuf-JSON (proto3 canonical JSON) or
//! binary protobuf according to `content-type`.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};

/// The envelope version this crate reads and writes (`ce-busversion`).
pub const BUS_VERSION: &str = "1";
/// `ce-type` of a request: the body is a `SendMessageRequest`.
pub const REQUEST_TYPE: &str = "lf.a2a.v1.SendMessageRequest";
/// `ce-type` of a reply: the body is the settled `Task`.
pub const TASK_TYPE: &str = "lf.a2a.v1.Task";
/// `ce-type` of an event-stream entry: the body is a `StreamResponse`.
pub const EVENT_TYPE: &str = "lf.a2a.v1.StreamResponse";
/// `content-type` of protobuf-JSON bodies.
pub const JSON: &str = "application/json";
/// `content-type` of binary protobuf bodies.
pub const PROTOBUF: &str = "application/protobuf";

/// Header names (lower case; transports with case-insensitive headers keep them so).
pub mod header {
    /// CloudEvents spec version.
    pub const SPECVERSION: &str = "ce-specversion";
    /// Envelope version.
    pub const BUSVERSION: &str = "ce-busversion";
    /// Message id.
    pub const ID: &str = "ce-id";
    /// Publisher.
    pub const SOURCE: &str = "ce-source";
    /// Body type.
    pub const TYPE: &str = "ce-type";
    /// Publish time.
    pub const TIME: &str = "ce-time";
    /// Target agent.
    pub const SUBJECT: &str = "ce-subject";
    /// Correlation id.
    pub const CORRELATION_ID: &str = "ce-correlationid";
    /// Reply address.
    pub const REPLY_TO: &str = "ce-replyto";
    /// Deadline (RFC 3339).
    pub const DEADLINE: &str = "ce-deadline";
    /// Attempt number.
    pub const ATTEMPT: &str = "ce-attempt";
    /// Event sequence.
    pub const SEQUENCE: &str = "ce-sequence";
    /// Dead-letter reason.
    pub const DEAD_LETTER_REASON: &str = "ce-deadletterreason";
    /// W3C traceparent.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C tracestate.
    pub const TRACESTATE: &str = "tracestate";
    /// Body encoding.
    pub const CONTENT_TYPE: &str = "content-type";
}

/// One bus message: CloudEvents attributes as headers plus an encoded body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// Every attribute, keyed by its header name (see the module table).
    pub headers: BTreeMap<String, String>,
    /// The encoded body.
    pub body: Bytes,
}

/// Why bytes from the bus are not a usable envelope.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// A required attribute is absent.
    #[error("the envelope has no {0} header")]
    Missing(&'static str),
    /// `ce-busversion` names a version this bridge does not read.
    #[error("envelope version {0:?} is not supported (this bridge reads version {BUS_VERSION})")]
    Version(String),
    /// The content type is neither JSON nor protobuf.
    #[error("content type {0:?} is not supported (use {JSON} or {PROTOBUF})")]
    ContentType(String),
    /// The body does not decode as the expected message.
    #[error("the body is not a valid {what}: {reason}")]
    Body {
        /// The expected protobuf message.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// An attribute has a malformed value.
    #[error("header {name} is malformed: {value:?}")]
    Malformed {
        /// The header.
        name: &'static str,
        /// Its value.
        value: String,
    },
}

impl Envelope {
    /// A new envelope of `ce_type` with id `id`, encoded as `content_type` ([`JSON`] or
    /// [`PROTOBUF`]).
    pub fn new<M: prost::Message + Serialize>(
        ce_type: &str,
        id: &str,
        message: &M,
        content_type: &str,
    ) -> Result<Self, EnvelopeError> {
        let body = match content_type {
            JSON => serde_json::to_vec(message)
                .map_err(|e| EnvelopeError::Body {
                    what: "JSON body",
                    reason: e.to_string(),
                })?
                .into(),
            PROTOBUF => message.encode_to_vec().into(),
            other => return Err(EnvelopeError::ContentType(other.into())),
        };
        let mut env = Self {
            headers: BTreeMap::new(),
            body,
        };
        env.set(header::SPECVERSION, "1.0");
        env.set(header::BUSVERSION, BUS_VERSION);
        env.set(header::ID, id);
        env.set(header::TYPE, ce_type);
        env.set(header::CONTENT_TYPE, content_type);
        env.set(
            header::TIME,
            &Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
        Ok(env)
    }

    /// A request to `agent` carrying `request`; the id is the message's `messageId`, which
    /// must be set.
    pub fn request(
        agent: &str,
        request: &switchyard::pb::a2a::SendMessageRequest,
        content_type: &str,
    ) -> Result<Self, EnvelopeError> {
        let id = request
            .message
            .as_ref()
            .map(|m| m.message_id.clone())
            .filter(|id| !id.is_empty())
            .ok_or(EnvelopeError::Missing("message.messageId"))?;
        let mut env = Self::new(REQUEST_TYPE, &id, request, content_type)?;
        env.set(header::SUBJECT, agent);
        env.set(header::CORRELATION_ID, &id);
        Ok(env)
    }

    /// Sets an attribute.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.headers.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Builder form of [`set`](Self::set).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.set(name, value);
        self
    }

    /// An attribute, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `ce-id`.
    pub fn id(&self) -> Option<&str> {
        self.get(header::ID)
    }

    /// `ce-correlationid`, else `ce-id`.
    pub fn correlation_id(&self) -> Option<&str> {
        self.get(header::CORRELATION_ID).or_else(|| self.id())
    }

    /// `ce-replyto`.
    pub fn reply_to(&self) -> Option<&str> {
        self.get(header::REPLY_TO)
    }

    /// `ce-attempt`, 1 when absent or malformed.
    pub fn attempt(&self) -> u32 {
        self.get(header::ATTEMPT)
            .and_then(|a| a.parse().ok())
            .filter(|a| *a >= 1)
            .unwrap_or(1)
    }

    /// `ce-deadline`.
    ///
    /// # Errors
    /// [`EnvelopeError::Malformed`] for a value that is not RFC 3339.
    pub fn deadline(&self) -> Result<Option<DateTime<Utc>>, EnvelopeError> {
        self.get(header::DEADLINE)
            .map(|d| {
                DateTime::parse_from_rfc3339(d)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| EnvelopeError::Malformed {
                        name: header::DEADLINE,
                        value: d.into(),
                    })
            })
            .transpose()
    }

    /// Checks the version and required attributes.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        match self.get(header::BUSVERSION) {
            None => return Err(EnvelopeError::Missing(header::BUSVERSION)),
            Some(BUS_VERSION) => {}
            Some(v) => return Err(EnvelopeError::Version(v.into())),
        }
        self.id().ok_or(EnvelopeError::Missing(header::ID))?;
        self.get(header::TYPE)
            .ok_or(EnvelopeError::Missing(header::TYPE))?;
        self.deadline()?;
        Ok(())
    }

    /// Decodes the body as `M` according to `content-type` (absent = [`JSON`]).
    ///
    /// # Errors
    /// [`EnvelopeError::ContentType`] or [`EnvelopeError::Body`].
    pub fn decode<M: prost::Message + Default + DeserializeOwned>(
        &self,
        what: &'static str,
    ) -> Result<M, EnvelopeError> {
        let ct = self.get(header::CONTENT_TYPE).unwrap_or(JSON);
        let base = ct.split(';').next().unwrap_or(ct).trim();
        match base {
            JSON => serde_json::from_slice(&self.body).map_err(|e| EnvelopeError::Body {
                what,
                reason: e.to_string(),
            }),
            PROTOBUF | "application/x-protobuf" => {
                M::decode(self.body.clone()).map_err(|e| EnvelopeError::Body {
                    what,
                    reason: e.to_string(),
                })
            }
            other => Err(EnvelopeError::ContentType(other.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard::pb::a2a::{Message, SendMessageRequest, Task};

    fn req(id: &str) -> SendMessageRequest {
        let mut m = Message::user_text("hi");
        m.message_id = id.into();
        SendMessageRequest {
            message: Some(m),
            ..Default::default()
        }
    }

    #[test]
    fn a_request_round_trips_in_both_encodings() {
        for ct in [JSON, PROTOBUF] {
            let env = Envelope::request("echo", &req("m-1"), ct).expect("envelope");
            env.validate().expect("valid");
            assert_eq!(env.id(), Some("m-1"));
            assert_eq!(env.correlation_id(), Some("m-1"));
            assert_eq!(env.get(header::SUBJECT), Some("echo"));
            let back: SendMessageRequest = env.decode("SendMessageRequest").expect("decode");
            assert_eq!(back, req("m-1"));
        }
    }

    #[test]
    fn bad_envelopes_say_what_is_wrong() {
        let env = Envelope::request("echo", &req("m"), JSON).expect("envelope");
        let mut v2 = env.clone();
        v2.set(header::BUSVERSION, "2");
        assert_eq!(v2.validate(), Err(EnvelopeError::Version("2".into())));
        let mut no_id = env.clone();
        no_id.headers.remove(header::ID);
        assert_eq!(no_id.validate(), Err(EnvelopeError::Missing(header::ID)));
        let mut garbage = env.clone();
        garbage.body = Bytes::from_static(b"{not json");
        assert!(matches!(
            garbage.decode::<SendMessageRequest>("SendMessageRequest"),
            Err(EnvelopeError::Body { .. })
        ));
        let mut deadline = env.clone();
        deadline.set(header::DEADLINE, "tomorrow");
        assert!(matches!(
            deadline.validate(),
            Err(EnvelopeError::Malformed { .. })
        ));
        let wrong_type = env.with(header::CONTENT_TYPE, "text/xml");
        assert!(matches!(
            wrong_type.decode::<Task>("Task"),
            Err(EnvelopeError::ContentType(_))
        ));
        assert!(Envelope::request("echo", &req(""), JSON).is_err());
    }
}
