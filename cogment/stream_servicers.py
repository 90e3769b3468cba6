"""cogment-py's streams (cogment/api/stream.proto), served for the same user classes as the
0.5 unary servicers, by the same calls (`cogment.service_calls`).

One stream carries one agent actor (or one environment trial) of one trial: each request gets
exactly one reply, in order; a call that fails is answered with an `error` reply (the status
its unary call would end with) and the stream goes on. The stream handler holds one thread of
the server's pool for the stream's life and runs user code in it (no hop to another thread);
`StreamSlots` bounds how many streams are open at once, and a stream past the bound is refused
with RESOURCE_EXHAUSTED, in the reply to its first request (the orchestrator then makes unary
calls). A stream that closes without
`end` (its orchestrator went away, or the server stops) ends its session as `end` would.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Optional

import grpc

from cogment.api import stream_pb2
from cogment.boundary import check_request, handler, stream_handler
from cogment.errors import StatusError
from cogment.protocol import version_info
from cogment.service_calls import AgentCalls, EnvironmentCalls

STREAM_VERSION = "1"
"""The version of cogment/api/stream.proto a service reports in its Version entry."""

NO_ROOM = (
    "{owner}: {limit} streams are open already (GrpcServer max_streams): make unary calls "
    "for this one"
)
EMPTY_REQUEST = "a stream request must carry one of: {kinds}"


def stream_version_entry(service: str) -> dict[str, str]:
    """The Version entry saying a server serves the stream service `service` (e.g.
    "AgentStream"): its full name, and the version of the stream protocol."""
    return {f"cogment.ext.{service}": STREAM_VERSION}


class StreamSlots:
    """How many streams a server has open, at most `limit` (thread-safe).

    Args:
        limit: the most streams open at once (each holds a thread of the server's pool).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, owner: str) -> Iterator[Optional[StatusError]]:
        """One slot for the life of a stream (yields None), or, when none is left, the
        refusal to answer with (RESOURCE_EXHAUSTED; no slot is held)."""
        with self._lock:
            if self._open >= self.limit:
                refusal: Optional[StatusError] = StatusError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    NO_ROOM.format(owner=owner, limit=self.limit),
                )
            else:
                refusal = None
                self._open += 1
        if refusal is not None:
            yield refusal
            return
        try:
            yield None
        finally:
            with self._lock:
                self._open -= 1

    @property
    def open(self) -> int:
        """The streams open now."""
        with self._lock:
            return self._open


def _requests(requests: Iterable[Any]) -> Iterator[Any]:
    """The stream's requests until it closes; a stream the orchestrator cancelled (or lost)
    just ends."""
    try:
        yield from requests
    except grpc.RpcError:
        return


def error_reply(reply_type: Any, error: StatusError) -> Any:
    """A stream reply carrying the status `error` (the stream goes on)."""
    reply = reply_type()
    reply.error.code = error.code.value[0]
    reply.error.message = error.message
    return reply


class _StreamServicer:
    """What both stream servicers share: the slots, the loop of a stream, and Version.

    A subclass gives `_calls` and `_call(kind, request, reply)`, which does the call of one
    request of that kind (its oneof field's name), fills `reply` and returns the key of the
    session a `start` made (None otherwise).
    """

    _reply_type: Any
    _calls: Any

    def __init__(self, slots: StreamSlots, user_type: type[Any], versions: dict[str, str]):
        self._slots = slots
        self._user_type = user_type
        self._versions = versions

    @handler
    def Version(self, request: Any, context: Any) -> Any:
        return version_info({**self._versions, **self._user_type.VERSIONS})

    def _call(self, kind: Optional[str], request: Any, reply: Any) -> Any:
        raise NotImplementedError

    @stream_handler
    def Run(self, requests: Iterable[Any], context: Any) -> Iterator[Any]:
        reply_type = self._reply_type
        with self._slots.hold(self._calls.name) as refusal:
            if refusal is not None:
                # answered, not aborted: an abort can reach the orchestrator while it writes
                # its first request, which then fails INTERNAL instead of saying why
                for _ in _requests(requests):
                    yield error_reply(reply_type, refusal)
                    break
                return
            started: list[Any] = []  # the sessions this stream started (ended if it breaks)
            try:
                for request in _requests(requests):
                    reply = reply_type()
                    kind: Optional[str] = None
                    try:
                        check_request(request)
                        kind = request.WhichOneof("request")
                        key = self._call(kind, request, reply)
                        if key is not None:
                            started.append(key)
                    except StatusError as error:
                        reply = error_reply(reply_type, error)
                    yield reply
                    if kind == "end":
                        return
            finally:
                for key in started:
                    self._calls.end_abandoned(key)


def _empty(request_type: Any) -> StatusError:
    kinds = ", ".join(request_type.DESCRIPTOR.fields_by_name)
    return StatusError(grpc.StatusCode.INVALID_ARGUMENT, EMPTY_REQUEST.format(kinds=kinds))


class AgentStreamServicer(_StreamServicer):
    """`cogment.ext.AgentStream`: one agent actor of one trial per stream."""

    _reply_type = stream_pb2.AgentStreamReply

    def __init__(self, calls: AgentCalls, slots: StreamSlots, versions: dict[str, str]) -> None:
        super().__init__(slots, calls.user_type, versions)
        self._calls = calls

    def _call(self, kind: Optional[str], request: Any, reply: Any) -> Any:
        calls = self._calls
        if kind == "decide":
            calls.decide(request.decide, reply.decide)
        elif kind == "reward":
            calls.reward(request.reward)
            reply.reward.SetInParent()
        elif kind == "message":
            calls.on_message(request.message)
            reply.message.SetInParent()
        elif kind == "start":
            key = calls.start(request.start)
            reply.start.SetInParent()
            return key
        elif kind == "end":
            calls.end(request.end)
            reply.end.SetInParent()
        else:
            raise _empty(stream_pb2.AgentStreamRequest)
        return None


class EnvironmentStreamServicer(_StreamServicer):
    """`cogment.ext.EnvironmentStream`: one environment trial per stream."""

    _reply_type = stream_pb2.EnvStreamReply

    def __init__(
        self, calls: EnvironmentCalls, slots: StreamSlots, versions: dict[str, str]
    ) -> None:
        super().__init__(slots, calls.user_type, versions)
        self._calls = calls

    def _call(self, kind: Optional[str], request: Any, reply: Any) -> Any:
        calls = self._calls
        if kind == "update":
            calls.update(request.update, reply.update)
        elif kind == "message":
            calls.on_message(request.message)
            reply.message.SetInParent()
        elif kind == "start":
            return calls.start(request.start, reply.start)
        elif kind == "end":
            calls.end(request.end)
            reply.end.SetInParent()
        else:
            raise _empty(stream_pb2.EnvStreamRequest)
        return None
