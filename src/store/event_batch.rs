//! The events one commit appends to one task, as one value: how the SQLite store keeps them,
//! one row per task and commit instead of one row per event.
//!
//! The value is the protobuf encoding of a message with two repeated fields, interleaved, one
//! pair per event in sequence order:
//!
//! ```proto
//! message EventBatch {
//!   repeated uint64 seq = 1;               // the event's sequence number
//!   repeated a2a.v1.StreamResponse event = 2;  // the event, as clients receive it
//! }
//! ```
//!
//! so any protobuf library reads it, and a batch of one event is the same bytes whichever
//! writer made it. A stream's commit holds hundreds of its events: one row for them instead
//! of hundreds took 16 % off the agent's CPU per streamed event (`bench/RESULTS.md` §10, "CPU
//! per streamed event").

use prost::{
    Message as _,
    bytes::Buf as _,
    encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint, message},
};

use super::{StoreError, StoredEvent};
use crate::pb::a2a::StreamResponse;

/// Field number of an event's sequence number.
const SEQ: u32 = 1;
/// Field number of an event.
const EVENT: u32 = 2;

/// Room reserved per event when encoding a batch, in bytes (a streamed status update or
/// artifact chunk with its sequence number is ~200).
const BYTES_PER_EVENT: usize = 256;

/// Encodes `events` (in sequence order) as one batch.
pub(crate) fn encode(events: &[StoredEvent]) -> Vec<u8> {
    // Not sized exactly beforehand: that would measure every event twice (`message::encode`
    // measures it for its length prefix), and growing the buffer costs less.
    let mut buf = Vec::with_capacity(BYTES_PER_EVENT * events.len());
    for e in events {
        encode_key(SEQ, WireType::Varint, &mut buf);
        encode_varint(e.seq, &mut buf);
        message::encode(EVENT, &e.event, &mut buf);
    }
    buf
}

/// Appends event `seq`, already encoded (`event`: a `StreamResponse`'s bytes, copied as they
/// are), to `batch`.
pub(crate) fn append_encoded(batch: &mut Vec<u8>, seq: u64, event: &[u8]) {
    encode_key(SEQ, WireType::Varint, batch);
    encode_varint(seq, batch);
    encode_key(EVENT, WireType::LengthDelimited, batch);
    encode_varint(event.len() as u64, batch);
    batch.extend_from_slice(event);
}

/// The events of `batch` with `after < seq <= upto`, in order; the others are skipped
/// without being decoded.
///
/// # Errors
/// [`StoreError::Corrupt`] when `batch` is not a batch: a field other than the two above, an
/// event without a sequence number before it, or bytes cut short.
pub(crate) fn decode(
    mut batch: &[u8],
    after: u64,
    upto: u64,
    into: &mut Vec<StoredEvent>,
) -> Result<(), StoreError> {
    let corrupt = |e: prost::DecodeError| StoreError::Corrupt(format!("event batch: {e}"));
    let mut seq = None;
    while batch.has_remaining() {
        let (field, wire) = decode_key(&mut batch).map_err(corrupt)?;
        match (field, wire) {
            (SEQ, WireType::Varint) => seq = Some(decode_varint(&mut batch).map_err(corrupt)?),
            (EVENT, WireType::LengthDelimited) => {
                let len = decode_varint(&mut batch).map_err(corrupt)?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > batch.len() {
                    return Err(StoreError::Corrupt("event batch: cut short".into()));
                }
                let (bytes, rest) = batch.split_at(len);
                batch = rest;
                let seq = seq.take().ok_or_else(|| {
                    StoreError::Corrupt("event batch: an event without a sequence number".into())
                })?;
                if seq > after && seq <= upto {
                    let event = StreamResponse::decode(bytes)
                        .map_err(|e| StoreError::Corrupt(format!("event {seq}: {e}")))?;
                    into.push(StoredEvent { seq, event });
                }
            }
            (field, wire) => {
                return Err(StoreError::Corrupt(format!(
                    "event batch: unexpected field {field} ({wire:?})"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::a2a::{TaskStatusUpdateEvent, stream_response::Payload};

    fn event(seq: u64) -> StoredEvent {
        StoredEvent {
            seq,
            event: StreamResponse {
                payload: Some(Payload::StatusUpdate(TaskStatusUpdateEvent {
                    task_id: format!("t{seq}"),
                    ..Default::default()
                })),
            },
        }
    }

    #[test]
    fn a_batch_reads_back_within_its_bounds() {
        let events: Vec<_> = (3..=7).map(event).collect();
        let batch = encode(&events);
        let mut got = Vec::new();
        decode(&batch, 0, u64::MAX, &mut got).expect("decode");
        assert_eq!(got, events);
        got.clear();
        decode(&batch, 4, 6, &mut got).expect("decode");
        assert_eq!(got, events[2..4]);
    }

    #[test]
    fn a_batch_is_the_protobuf_encoding_of_its_pairs() {
        let e = event(300);
        let batch = encode(std::slice::from_ref(&e));
        let body = e.event.encode_to_vec();
        let mut want = vec![0x08, 0xac, 0x02, 0x12, body.len() as u8];
        want.extend(body);
        assert_eq!(batch, want);
    }

    #[test]
    fn an_encoded_event_appends_as_its_struct_would() {
        let events: Vec<_> = (1..=3).map(event).collect();
        let mut batch = Vec::new();
        for e in &events {
            append_encoded(&mut batch, e.seq, &e.event.encode_to_vec());
        }
        assert_eq!(batch, encode(&events));
    }

    #[test]
    fn what_is_not_a_batch_is_corrupt() {
        let batch = encode(&[event(1)]);
        let mut got = Vec::new();
        for bad in [
            &batch[..batch.len() - 1],
            &batch[2..],
            &[0x1a, 0x00][..],
            &[0x08][..],
        ] {
            let err = decode(bad, 0, u64::MAX, &mut got).expect_err("corrupt");
            assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        }
        assert!(got.is_empty());
    }
}
