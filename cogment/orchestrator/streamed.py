"""cogment-py's transport: one bidirectional stream per agent actor, or environment, per trial
(cogment/api/stream.proto), to a service that serves it (cogment.GrpcServer does).

Each request embeds the 0.5 request (a Decide request is still encoded around the
observation bytes once, `wire.decide_request(..., field=...)`) and gets exactly one reply;
the environment's replies are sliced out of the stream's bytes, never copied. A failure the
service answers is raised as `CogmentRpcError` with the status its unary call would have had,
so a trial ends, and says why, as on unary calls.

A service with no room for another stream (RESOURCE_EXHAUSTED, answered to its start) gets unary calls
for that actor of that trial; one that does not serve the streams (UNIMPLEMENTED) gets unary
calls from then on when the transport is `auto`, and fails the trial's start when it is
`stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Callable, Optional

import grpc

from cogment.api import agent_pb2, environment_pb2, stream_pb2
from cogment.errors import CogmentRpcError

from . import wire
from .calls import spawn
from .endpoints import SERVICES, Endpoints
from .unary import UnaryAgent, UnaryEnvironment

log = logging.getLogger("cogment.orchestrator")

_CODES = {code.value[0]: code for code in grpc.StatusCode}
NOT_STREAMED = "the service does not serve cogment-py's streams: call it with transport 'auto'"
DEADLINE = "Deadline Exceeded"  # what grpc says of a unary call past its deadline
CORE_ERROR = "Internal error from Core"  # what grpc.aio says of a write that failed in core
BROKEN_UNDER_WRITE = "the stream broke while a request was being sent to the service"

Pick = Callable[[Any], Any]
_EOF = grpc.aio.EOF  # type: ignore[attr-defined]  # what read() gives at the stream's end


def _error(error: stream_pb2.StreamError) -> CogmentRpcError:
    """The status an error reply carries."""
    return CogmentRpcError(_CODES.get(error.code, grpc.StatusCode.UNKNOWN), error.message)


def _code(error: BaseException) -> Optional[grpc.StatusCode]:
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code()
    if isinstance(error, CogmentRpcError):
        return error.code
    return None


def _write_failure(error: grpc.aio.AioRpcError) -> BaseException:
    """What a failed write on a stream means. grpc reports a stream that broke under a write
    (its service died, the connection went) as INTERNAL "Internal error from Core", hiding
    the status: the stream is broken, as UNAVAILABLE says of a unary call."""
    if error.code() == grpc.StatusCode.INTERNAL and error.details() == CORE_ERROR:
        return CogmentRpcError(grpc.StatusCode.UNAVAILABLE, BROKEN_UNDER_WRITE)
    return error


async def _ended(call: Any) -> CogmentRpcError:
    """The status of a stream that ended (before the reply it was waiting for)."""
    code = await call.code()
    details = await call.details()
    if code == grpc.StatusCode.OK:
        return CogmentRpcError(grpc.StatusCode.UNKNOWN, "the service closed the stream")
    return CogmentRpcError(code, details or "")


class _Stream:
    """One open stream whose requests each get one reply, in order.

    An exchange (write a request, read its reply) starts at once and runs to its end even when
    its caller stops waiting (a trial ended from outside cancels what it waits for): the next
    exchange starts after it, so requests and replies stay paired. Each exchange is bounded by
    `timeout` seconds; one past it breaks the stream (DEADLINE_EXCEEDED), which its service
    ends as if `end` had come.

    Args:
        method: the stream-stream method (from `Endpoints.stream`); called to open the stream.
        timeout: the bound of each exchange, in seconds.
    """

    def __init__(self, method: Any, timeout: float) -> None:
        self._call = method()
        self._timeout = timeout
        self._last: Optional[asyncio.Future[Any]] = None
        self._expired = False

    def exchange(
        self, request: bytes, pick: Optional[Pick] = None, timeout: Optional[float] = None
    ) -> asyncio.Future[Any]:
        """Sends `request` (after the exchanges under way); the future of its reply, read by
        `pick` when given. Cancelling the future does not cut the exchange."""
        task = spawn(self._exchange(request, self._last, pick, timeout or self._timeout))
        self._last = task
        return asyncio.shield(task)

    async def _exchange(
        self,
        request: bytes,
        previous: Optional[asyncio.Future[Any]],
        pick: Optional[Pick],
        timeout: float,
    ) -> Any:
        if previous is not None and not previous.done():
            await asyncio.wait((previous,))
        call = self._call
        if call.done():
            raise await _ended(call)
        timer = asyncio.get_running_loop().call_later(timeout, self._expire)
        try:
            try:
                await call.write(request)
            except grpc.aio.AioRpcError as error:
                raise _write_failure(error) from None
            reply = await call.read()
        except asyncio.CancelledError:
            if self._expired:
                raise CogmentRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE) from None
            raise
        except asyncio.InvalidStateError:  # the stream ended between two exchanges
            raise await _ended(call) from None
        finally:
            timer.cancel()
        if reply is _EOF:
            raise await _ended(call)
        return reply if pick is None else pick(reply)

    def _expire(self) -> None:
        self._expired = True
        self._call.cancel()

    async def close(self, request: bytes, pick: Pick, timeout: float) -> None:
        """Sends the last request (`end`) once the exchanges under way are over, then closes
        the stream; all within `timeout` seconds. A stream that ended already has nothing to
        end (its service ended the session when it closed)."""
        call = self._call
        previous = self._last
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if previous is not None and not previous.done():
            await asyncio.wait((previous,), timeout=timeout)
            if not previous.done():
                self._expire()
                raise CogmentRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE)
        if call.done():
            return
        await self.exchange(request, pick, max(deadline - loop.time(), 0.001))
        with contextlib.suppress(Exception):  # the service may have closed it already
            await call.done_writing()

    def cancel(self) -> None:
        """Breaks the stream off (its service ends the session on its own)."""
        self._call.cancel()


def _agent_pick(kind: str) -> Pick:
    def pick(reply: stream_pb2.AgentStreamReply) -> Any:
        got = reply.WhichOneof("reply")
        if got == kind:
            return getattr(reply, kind)
        if got == "error":
            raise _error(reply.error)
        raise CogmentRpcError(
            grpc.StatusCode.INTERNAL, f"the service answered a {kind} request with {got}"
        )

    return pick


_START, _DECIDE, _REWARD, _MESSAGE, _END = (
    _agent_pick(k) for k in ("start", "decide", "reward", "message", "end")
)
_AGENT_FIELDS = {f.name: f.number for f in stream_pb2.AgentStreamRequest.DESCRIPTOR.fields}


class _Refusal:
    """What a service's refusal of a new stream means: unary calls for this actor, or (a
    service that serves no streams, with transport `stream`) a failure saying so."""

    @staticmethod
    async def falls_back(
        error: BaseException,
        endpoints: Endpoints,
        kind: str,
        endpoint: str,
        who: str,
        timeout: float,
    ) -> bool:
        code = _code(error)
        if isinstance(error, CogmentRpcError) and error.message == BROKEN_UNDER_WRITE:
            # grpc hid the status the stream ended with, under its first write (a refusal
            # racing the write, or a service that went away): its Version tells
            offered = await endpoints.offers_streams(kind, endpoint, timeout)
            if offered is False:
                code = grpc.StatusCode.UNIMPLEMENTED
                error = CogmentRpcError(
                    code, f"the service does not serve cogment.ext.{SERVICES[kind]}Stream"
                )
            elif endpoints.transport == "auto":
                log.info("%s: its stream broke as it opened: unary calls", who)
                return True
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            log.info("%s: its service has no room for another stream: unary calls", who)
            return True
        if code == grpc.StatusCode.UNIMPLEMENTED:
            if endpoints.transport == "auto":
                endpoints.set_transport(kind, endpoint, "unary", "its stream service is not served")
                return True
            details = str(error.details() if isinstance(error, grpc.aio.AioRpcError) else error)
            raise CogmentRpcError(code, f"{details} ({NOT_STREAMED})") from None
        return False


class StreamedAgent:
    """One agent actor of one trial, on its own stream (see `UnaryAgent` for the arguments)."""

    def __init__(
        self,
        endpoints: Endpoints,
        endpoint: str,
        trial_id: str,
        actor_id: int,
        timeout: float,
        end_timeout: float,
    ) -> None:
        self._endpoints = endpoints
        self._endpoint = endpoint
        self._trial_id = trial_id
        self._trial_field = wire.string_field(trial_id)
        self._actor_id = actor_id
        self._timeout = timeout
        self._end_timeout = end_timeout
        self._stream: Optional[_Stream] = None
        self._unary: Optional[UnaryAgent] = None  # when the service refused the stream

    @property
    def transport(self) -> str:
        """ "stream", or "unary" when the service refused the stream."""
        return "unary" if self._unary is not None else "stream"

    async def start(self, request: agent_pb2.AgentStartRequest) -> None:
        stream = self._stream = _Stream(
            self._endpoints.stream("agent", self._endpoint), self._timeout
        )
        data = wire.embed(_AGENT_FIELDS["start"], request.SerializeToString())
        try:
            await stream.exchange(data, _START)
            return
        except Exception as error:
            who = f"trial {self._trial_id}: agent actor {self._actor_id} at {self._endpoint}"
            if not await _Refusal.falls_back(
                error, self._endpoints, "agent", self._endpoint, who, self._timeout
            ):
                raise
            self._unary = UnaryAgent(
                self._endpoints,
                self._endpoint,
                self._trial_id,
                self._actor_id,
                self._timeout,
                self._end_timeout,
            )
            await self._unary.start(request)

    def decide(self, observation: wire.EncodedObservation) -> Any:
        if self._unary is not None:
            return self._unary.decide(observation)
        assert self._stream is not None, "decide before start"
        data = wire.decide_request(
            self._trial_field, self._actor_id, observation, _AGENT_FIELDS["decide"]
        )
        return self._stream.exchange(data, _DECIDE)

    async def reward(self, request: agent_pb2.AgentRewardRequest) -> None:
        if self._unary is not None:
            return await self._unary.reward(request)
        assert self._stream is not None, "reward before start"
        data = wire.embed(_AGENT_FIELDS["reward"], request.SerializeToString())
        await self._stream.exchange(data, _REWARD)

    async def message(self, request: agent_pb2.AgentOnMessageRequest) -> None:
        if self._unary is not None:
            return await self._unary.message(request)
        assert self._stream is not None, "message before start"
        data = wire.embed(_AGENT_FIELDS["message"], request.SerializeToString())
        await self._stream.exchange(data, _MESSAGE)

    async def end(self) -> None:
        if self._unary is not None:
            return await self._unary.end()
        if self._stream is None:
            return
        request = agent_pb2.AgentEndRequest(trial_id=self._trial_id, actor_id=self._actor_id)
        data = wire.embed(_AGENT_FIELDS["end"], request.SerializeToString())
        await self._stream.close(data, _END, self._end_timeout)


_ENV_FIELDS = {f.name: f.number for f in stream_pb2.EnvStreamRequest.DESCRIPTOR.fields}
_ENV_ERROR = stream_pb2.EnvStreamReply.DESCRIPTOR.fields_by_name["error"].number


def _env_pick(kind: str) -> Pick:
    number = stream_pb2.EnvStreamReply.DESCRIPTOR.fields_by_name[kind].number

    def pick(data: bytes) -> memoryview:
        try:
            got, inner = wire.stream_reply(data)
        except ValueError as error:
            raise CogmentRpcError(
                grpc.StatusCode.INTERNAL, f"malformed stream reply: {error}"
            ) from None
        if got == number:
            return inner
        if got == _ENV_ERROR:
            raise _error(stream_pb2.StreamError.FromString(bytes(inner)))
        raise CogmentRpcError(
            grpc.StatusCode.INTERNAL, f"the service answered a {kind} request with field {got}"
        )

    return pick


_ENV_START, _ENV_UPDATE, _ENV_MESSAGE, _ENV_END = (
    _env_pick(k) for k in ("start", "update", "message", "end")
)


class StreamedEnvironment:
    """The environment of one trial, on its own stream (see `UnaryEnvironment`)."""

    def __init__(
        self, endpoints: Endpoints, endpoint: str, trial_id: str, timeout: float, end_timeout: float
    ) -> None:
        self._endpoints = endpoints
        self._endpoint = endpoint
        self._trial_id = trial_id
        self._timeout = timeout
        self._end_timeout = end_timeout
        self._stream: Optional[_Stream] = None
        self._unary: Optional[UnaryEnvironment] = None  # when the service refused the stream

    @property
    def transport(self) -> str:
        """ "stream", or "unary" when the service refused the stream."""
        return "unary" if self._unary is not None else "stream"

    async def start(self, request: environment_pb2.EnvStartRequest) -> wire.Bytes:
        method = self._endpoints.stream("environment", self._endpoint)
        stream = self._stream = _Stream(method, self._timeout)
        data = wire.embed(_ENV_FIELDS["start"], request.SerializeToString())
        try:
            return await stream.exchange(data, _ENV_START)  # type: ignore[no-any-return]
        except Exception as error:
            who = f"trial {self._trial_id}: environment at {self._endpoint}"
            if not await _Refusal.falls_back(
                error, self._endpoints, "environment", self._endpoint, who, self._timeout
            ):
                raise
        self._unary = UnaryEnvironment(
            self._endpoints, self._endpoint, self._trial_id, self._timeout, self._end_timeout
        )
        return await self._unary.start(request)

    async def update(self, request: environment_pb2.EnvUpdateRequest) -> wire.Bytes:
        if self._unary is not None:
            return await self._unary.update(request)
        assert self._stream is not None, "update before start"
        data = wire.embed(_ENV_FIELDS["update"], request.SerializeToString())
        return await self._stream.exchange(data, _ENV_UPDATE)  # type: ignore[no-any-return]

    async def message(self, request: environment_pb2.EnvOnMessageRequest) -> None:
        if self._unary is not None:
            return await self._unary.message(request)
        assert self._stream is not None, "message before start"
        data = wire.embed(_ENV_FIELDS["message"], request.SerializeToString())
        await self._stream.exchange(data, _ENV_MESSAGE)

    async def end(self) -> None:
        if self._unary is not None:
            return await self._unary.end()
        if self._stream is None:
            return
        request = environment_pb2.EnvEndRequest(trial_id=self._trial_id)
        data = wire.embed(_ENV_FIELDS["end"], request.SerializeToString())
        await self._stream.close(data, _ENV_END, self._end_timeout)
