from cogment.api import common_pb2 as _common_pb2
from cogment.api import agent_pb2 as _agent_pb2
from cogment.api import environment_pb2 as _environment_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class AgentStreamRequest(_message.Message):
    __slots__ = ("start", "decide", "reward", "message", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    DECIDE_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _agent_pb2.AgentStartRequest
    decide: _agent_pb2.AgentDecideRequest
    reward: _agent_pb2.AgentRewardRequest
    message: _agent_pb2.AgentOnMessageRequest
    end: _agent_pb2.AgentEndRequest
    def __init__(self, start: _Optional[_Union[_agent_pb2.AgentStartRequest, _Mapping]] = ..., decide: _Optional[_Union[_agent_pb2.AgentDecideRequest, _Mapping]] = ..., reward: _Optional[_Union[_agent_pb2.AgentRewardRequest, _Mapping]] = ..., message: _Optional[_Union[_agent_pb2.AgentOnMessageRequest, _Mapping]] = ..., end: _Optional[_Union[_agent_pb2.AgentEndRequest, _Mapping]] = ...) -> None: ...

class AgentStreamReply(_message.Message):
    __slots__ = ("start", "decide", "reward", "message", "end", "error")
    START_FIELD_NUMBER: _ClassVar[int]
    DECIDE_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    start: _agent_pb2.AgentStartReply
    decide: _agent_pb2.AgentDecideReply
    reward: _agent_pb2.AgentRewardReply
    message: _agent_pb2.AgentOnMessageReply
    end: _agent_pb2.AgentEndReply
    error: StreamError
    def __init__(self, start: _Optional[_Union[_agent_pb2.AgentStartReply, _Mapping]] = ..., decide: _Optional[_Union[_agent_pb2.AgentDecideReply, _Mapping]] = ..., reward: _Optional[_Union[_agent_pb2.AgentRewardReply, _Mapping]] = ..., message: _Optional[_Union[_agent_pb2.AgentOnMessageReply, _Mapping]] = ..., end: _Optional[_Union[_agent_pb2.AgentEndReply, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...

class EnvStreamRequest(_message.Message):
    __slots__ = ("start", "update", "message", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _environment_pb2.EnvStartRequest
    update: _environment_pb2.EnvUpdateRequest
    message: _environment_pb2.EnvOnMessageRequest
    end: _environment_pb2.EnvEndRequest
    def __init__(self, start: _Optional[_Union[_environment_pb2.EnvStartRequest, _Mapping]] = ..., update: _Optional[_Union[_environment_pb2.EnvUpdateRequest, _Mapping]] = ..., message: _Optional[_Union[_environment_pb2.EnvOnMessageRequest, _Mapping]] = ..., end: _Optional[_Union[_environment_pb2.EnvEndRequest, _Mapping]] = ...) -> None: ...

class EnvStreamReply(_message.Message):
    __slots__ = ("start", "update", "message", "end", "error")
    START_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    start: _environment_pb2.EnvStartReply
    update: _environment_pb2.EnvUpdateReply
    message: _environment_pb2.EnvOnMessageReply
    end: _environment_pb2.EnvEndReply
    error: StreamError
    def __init__(self, start: _Optional[_Union[_environment_pb2.EnvStartReply, _Mapping]] = ..., update: _Optional[_Union[_environment_pb2.EnvUpdateReply, _Mapping]] = ..., message: _Optional[_Union[_environment_pb2.EnvOnMessageReply, _Mapping]] = ..., end: _Optional[_Union[_environment_pb2.EnvEndReply, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...
