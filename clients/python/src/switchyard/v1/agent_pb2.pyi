from lf.a2a.v1 import a2a_pb2 as _a2a_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SendMessagePartsRequest(_message.Message):
    __slots__ = ("header", "part", "raw_chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    RAW_CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: _a2a_pb2.SendMessageRequest
    part: _a2a_pb2.Part
    raw_chunk: bytes
    def __init__(self, header: _Optional[_Union[_a2a_pb2.SendMessageRequest, _Mapping]] = ..., part: _Optional[_Union[_a2a_pb2.Part, _Mapping]] = ..., raw_chunk: _Optional[bytes] = ...) -> None: ...

class ConverseRequest(_message.Message):
    __slots__ = ("send", "cancel")
    SEND_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    send: _a2a_pb2.SendMessageRequest
    cancel: _a2a_pb2.CancelTaskRequest
    def __init__(self, send: _Optional[_Union[_a2a_pb2.SendMessageRequest, _Mapping]] = ..., cancel: _Optional[_Union[_a2a_pb2.CancelTaskRequest, _Mapping]] = ...) -> None: ...

class ConverseResponse(_message.Message):
    __slots__ = ("in_reply_to", "event", "error")
    IN_REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    in_reply_to: str
    event: _a2a_pb2.StreamResponse
    error: ConverseError
    def __init__(self, in_reply_to: _Optional[str] = ..., event: _Optional[_Union[_a2a_pb2.StreamResponse, _Mapping]] = ..., error: _Optional[_Union[ConverseError, _Mapping]] = ...) -> None: ...

class ConverseError(_message.Message):
    __slots__ = ("code", "message", "reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    reason: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetAgentCardRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
