from cogment.api import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class TrialLogEnd(_message.Message):
    __slots__ = ("trial_id", "timestamp", "reason", "failed", "ticks", "samples")
    TRIAL_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    TICKS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    trial_id: str
    timestamp: int
    reason: str
    failed: bool
    ticks: int
    samples: int
    def __init__(self, trial_id: _Optional[str] = ..., timestamp: _Optional[int] = ..., reason: _Optional[str] = ..., failed: bool = ..., ticks: _Optional[int] = ..., samples: _Optional[int] = ...) -> None: ...

class TrialLogEndReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
