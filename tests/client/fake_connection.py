"""`FakeConnection`: a `TrialConnection` in memory, to build and drive a `ClientTrial` with no
network and no `Connection`.

Like httpx's `MockTransport`, it is made from one handler: `handler(method, request)` answers
every unary call and every request on an ActionStream, returning the reply or raising a
`CogmentRpcError` (as a real connection raises translated gRPC errors). Everything a trial
asks of it is recorded: calls with their deadlines, the trials kept alive (their `Beating`,
which a test drives by hand instead of waiting for a heartbeat thread), forgotten trials and
trials ended in the background. `close()` makes it refuse use with `LifecycleError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable, NamedTuple, Optional

from cogment.api import orchestrator_pb2
from cogment.client.heartbeat import Beating
from cogment.client.interface import CONNECTION_TIMEOUT, Deadline
from cogment.errors import LifecycleError

Handler = Callable[[str, Any], Any]
CLOSED = "the fake connection is closed"


class Call(NamedTuple):
    method: str  # "Action", "Heartbeat", ...; "ActionStream" for a request on a stream
    request: Any
    timeout: Deadline  # CONNECTION_TIMEOUT, or what the trial asked for


class FakeStream:
    """An ActionStream whose every request is answered by the handler, in order."""

    def __init__(self, connection: FakeConnection, requests: Iterator[Any]) -> None:
        self._connection = connection
        self._requests = requests
        self.cancelled = False

    def __iter__(self) -> Iterator[orchestrator_pb2.TrialActionReply]:
        for request in self._requests:
            yield self._connection.answer("ActionStream", request, CONNECTION_TIMEOUT)

    def cancel(self) -> None:
        self.cancelled = True


class FakeConnection:
    """What a ClientTrial needs from its connection, answered by `handler`."""

    def __init__(
        self,
        settings: Any,
        handler: Handler,
        *,
        timeout: Optional[float] = None,
        heartbeat_interval: Optional[float] = 1.0,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.endpoint = "fake:1"
        self.session_id = "fake-session"
        self.timeout = timeout
        self.heartbeat_interval = heartbeat_interval
        self.is_closed = False
        self.calls: list[Call] = []
        self.kept_alive: list[Beating] = []
        self.forgotten: list[object] = []
        self.ended_in_background: list[str] = []
        self.streams: list[FakeStream] = []

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def answer(self, method: str, request: Any, timeout: Deadline) -> Any:
        self.calls.append(Call(method, request, timeout))
        return self.handler(method, request)

    def close(self) -> None:
        self.is_closed = True

    # ------------------------------------------------------------------ TrialConnection

    def ensure_open(self) -> None:
        if self.is_closed:
            raise LifecycleError(CLOSED)

    def call_unary(self, method: str, request: Any, timeout: Deadline = CONNECTION_TIMEOUT) -> Any:
        self.ensure_open()
        return self.answer(method, request, timeout)

    def open_action_stream(self, requests: Iterator[Any], trial_id: str = "") -> FakeStream:
        self.ensure_open()
        stream = FakeStream(self, requests)
        self.streams.append(stream)
        return stream

    def keep_alive(self, trial: Beating) -> None:
        self.kept_alive.append(trial)

    def stop_keeping_alive(self, trial: Beating) -> None:
        if trial in self.kept_alive:
            self.kept_alive.remove(trial)

    def forget_trial(self, trial: object) -> None:
        self.forgotten.append(trial)

    def end_in_background(self, trial_id: str) -> None:
        self.ended_in_background.append(trial_id)
