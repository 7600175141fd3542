//! The protobuf codec of every generated client and server ([`PbCodec`], set as tonic's
//! `codec_path` in `build.rs`): tonic-prost's `ProstCodec`, except that a message is decoded
//! from one contiguous byte slice and encoded into a `Vec` before tonic's buffer.
//!
//! tonic hands the decoder the message's bytes as a [`DecodeBuf`], a length-limited view of its
//! receive buffer. prost decoding through that `Buf` calls out of line for every varint, tag
//! and length it reads (`BytesMut::advance` and the view's bounds check: ~35 instructions each,
//! ~36 reads per streamed A2A event); the same bytes decoded as a `&[u8]` advance a slice,
//! inlined. The receive buffer holds a whole gRPC message contiguously (tonic reads the
//! length-prefixed message into it before decoding), so the slice is the message; a buffer
//! that is not contiguous falls back to decoding through the `Buf`. Measured in
//! `bench/RESULTS.md` §10 ("A codec that decodes from one slice").

use std::marker::PhantomData;

use bytes::{Buf as _, BufMut as _};
use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

/// Protobuf codec for tonic: encodes `T`, decodes `U` (see the [module](self)).
#[derive(Debug)]
pub struct PbCodec<T, U> {
    buffers: BufferSettings,
    types: PhantomData<fn(T) -> U>,
}

impl<T, U> Default for PbCodec<T, U> {
    /// tonic's default buffers (8 KiB each, as `ProstCodec`'s).
    fn default() -> Self {
        Self::with_buffers(BufferSettings::default())
    }
}

impl<T, U> PbCodec<T, U> {
    /// A codec whose encoder and decoder use `buffers` (initial size and yield threshold of
    /// tonic's per-call encode and decode buffers).
    pub fn with_buffers(buffers: BufferSettings) -> Self {
        Self {
            buffers,
            types: PhantomData,
        }
    }
}

impl<T, U> Codec for PbCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = PbEncoder<T>;
    type Decoder = PbDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        PbEncoder {
            buffers: self.buffers,
            types: PhantomData,
        }
    }

    fn decoder(&mut self) -> Self::Decoder {
        PbDecoder {
            buffers: self.buffers,
            types: PhantomData,
        }
    }
}

/// The encoder of [`PbCodec`]: prost's encoding, copied into tonic's buffer.
#[derive(Debug)]
pub struct PbEncoder<T> {
    buffers: BufferSettings,
    types: PhantomData<fn(T)>,
}

impl<T: Message> Encoder for PbEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // Into a `Vec` of the exact size, then copied: prost writes each field of the message
        // into a `Vec` inline, into tonic's buffer with a call out of line per field (−26 %
        // instructions per A2A event, the allocation and copy included).
        buf.put_slice(&item.encode_to_vec());
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.buffers
    }
}

/// The decoder of [`PbCodec`]: prost's decoding from one contiguous slice.
#[derive(Debug)]
pub struct PbDecoder<U> {
    buffers: BufferSettings,
    types: PhantomData<fn() -> U>,
}

impl<U: Message + Default> Decoder for PbDecoder<U> {
    type Item = U;
    type Error = Status;

    /// # Errors
    /// `INTERNAL` with prost's description of malformed protobuf, as tonic-prost's decoder.
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let len = buf.remaining();
        let decoded = if buf.chunk().len() == len {
            let decoded = U::decode(buf.chunk());
            buf.advance(len);
            decoded
        } else {
            U::decode(buf)
        };
        decoded
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.buffers
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;
    use tonic::codec::Streaming;

    use super::*;
    use crate::pb::a2a::{Message as A2aMessage, StreamResponse, stream_response::Payload};

    /// `messages` as a gRPC request body decoded by [`PbCodec`] through tonic.
    async fn decode_all(messages: &[&[u8]]) -> Vec<Result<StreamResponse, Status>> {
        let mut body = Vec::new();
        for m in messages {
            // Uncompressed, then the length (gRPC over HTTP/2, "Length-Prefixed-Message").
            body.push(0);
            body.extend((m.len() as u32).to_be_bytes());
            body.extend_from_slice(m);
        }
        let decoder = PbCodec::<StreamResponse, StreamResponse>::default().decoder();
        let body = http_body_util::Full::new(bytes::Bytes::from(body));
        Streaming::new_request(decoder, body, None, None)
            .collect()
            .await
    }

    /// What the codec decodes equals what prost encoded, message after message; bytes that
    /// are not a message fail as tonic-prost's decoder fails, with INTERNAL.
    #[tokio::test]
    async fn decodes_what_prost_encodes_and_refuses_garbage() {
        let events: Vec<StreamResponse> = ["hello", "world"]
            .map(|t| StreamResponse {
                payload: Some(Payload::Message(A2aMessage::user_text(t))),
            })
            .into();
        let bytes: Vec<Vec<u8>> = events.iter().map(prost::Message::encode_to_vec).collect();
        let decoded = decode_all(&[&bytes[0], &bytes[1]]).await;
        let decoded: Vec<StreamResponse> = decoded.into_iter().map(Result::unwrap).collect();
        assert_eq!(decoded, events);
        // A length-delimited field (tag 1) claiming more bytes than there are.
        let garbage = decode_all(&[&[0x0a, 0x05, 0x01]]).await;
        let err = garbage[0].as_ref().unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal, "{err:?}");
    }
}
