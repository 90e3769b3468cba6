"""Services written straight on grpcio, as another SDK would: they prove interop at the
protocol level and let tests produce what our SDK never sends (huge observations, bare -1
feedback, bad ObservationSets, calls that fail or never answer in time)."""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any, Callable, Optional

import grpc

from cogment.api import (
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    data_pb2_grpc,
    environment_pb2,
    environment_pb2_grpc,
    hooks_pb2_grpc,
)
from tests.conftest import UNLIMITED

OPTIONS = [*UNLIMITED, ("grpc.so_reuseport", 0)]


class Recorder:
    """Calls received, by method name, in order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, Any]] = []

    def record(self, method: str, request: Any) -> None:
        with self._lock:
            self.calls.append((method, request))

    def of(self, method: str) -> list[Any]:
        with self._lock:
            return [r for m, r in self.calls if m == method]


def one_observation(content: bytes, n_actors: int, tick: int = 0) -> environment_pb2.ObservationSet:
    """An ObservationSet where every actor sees the same snapshot `content`."""
    return environment_pb2.ObservationSet(
        tick_id=tick,
        observations=[common_pb2.ObservationData(content=content, snapshot=True)],
        actors_map=[0] * n_actors,
    )


class RawEnv(environment_pb2_grpc.EnvironmentServicer, Recorder):
    """Start/Update answer with `observation(tick, n_actors)`; `update_hook(request, reply)`
    may add feedback, messages, end_trial."""

    def __init__(
        self,
        observation: Callable[[int, int], environment_pb2.ObservationSet] = (
            lambda tick, n: one_observation(b"", n, tick)
        ),
        update_hook: Optional[Callable[[Any, Any], None]] = None,
    ) -> None:
        Recorder.__init__(self)
        self.observation = observation
        self.update_hook = update_hook
        self.n_actors = 0
        self.tick = 0

    def Start(self, request: Any, context: Any) -> Any:
        self.record("Start", request)
        self.n_actors = sum(request.actor_counts)
        return environment_pb2.EnvStartReply(observation_set=self.observation(0, self.n_actors))

    def Update(self, request: Any, context: Any) -> Any:
        self.record("Update", request)
        self.tick += 1
        reply = environment_pb2.EnvUpdateReply(
            observation_set=self.observation(self.tick, self.n_actors)
        )
        if self.update_hook is not None:
            self.update_hook(request, reply)
        return reply

    def OnMessage(self, request: Any, context: Any) -> Any:
        self.record("OnMessage", request)
        return environment_pb2.EnvOnMessageReply()

    def End(self, request: Any, context: Any) -> Any:
        self.record("End", request)
        return environment_pb2.EnvEndReply()


HELD_AT_MOST = 30.0  # seconds a held Decide waits for its release (a failed test's leftover)


class RawAgent(agent_pb2_grpc.AgentServicer, Recorder):
    """Decide answers `decide(request)` (an empty action by default); with `hold`, only once
    that event is set (a test sets it when done): an agent that never answers in time."""

    def __init__(
        self,
        decide: Optional[Callable[[Any], Any]] = None,
        hold: Optional[threading.Event] = None,
    ):
        Recorder.__init__(self)
        self.decide = decide
        self.hold = hold

    def Start(self, request: Any, context: Any) -> Any:
        self.record("Start", request)
        return agent_pb2.AgentStartReply()

    def Decide(self, request: Any, context: Any) -> Any:
        self.record("Decide", request)
        if self.hold is not None:
            self.hold.wait(HELD_AT_MOST)
        if self.decide is not None:
            return self.decide(request)
        return agent_pb2.AgentDecideReply()

    def Reward(self, request: Any, context: Any) -> Any:
        self.record("Reward", request)
        return agent_pb2.AgentRewardReply()

    def OnMessage(self, request: Any, context: Any) -> Any:
        self.record("OnMessage", request)
        return agent_pb2.AgentOnMessageReply()

    def End(self, request: Any, context: Any) -> Any:
        self.record("End", request)
        return agent_pb2.AgentEndReply()


class RawLogExporter(data_pb2_grpc.LogExporterServicer, Recorder):
    """Keeps every DatalogMsg of every stream (API 0.5 only: no EndTrial).

    `streams` lists each stream's metadata and messages; `gate` (set by default) holds
    every stream until set (an exporter as slow as a test wants); `fail_first` streams end
    with UNAVAILABLE after their first sample."""

    def __init__(self, fail_first: int = 0) -> None:
        Recorder.__init__(self)
        self.finished = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.fail_first = fail_first
        self.streams: list[tuple[dict[str, str], list[Any]]] = []

    def Log(self, request_iterator: Any, context: Any) -> Any:
        from cogment.api import data_pb2

        self.gate.wait(HELD_AT_MOST)
        metadata = {k: v for k, v in context.invocation_metadata() or ()}
        messages: list[Any] = []
        with self._lock:
            self.streams.append((metadata, messages))
            failing = len(self.streams) <= self.fail_first
        for message in request_iterator:
            self.record("Log", message)
            messages.append(message)
            if failing and message.HasField("sample"):
                context.abort(grpc.StatusCode.UNAVAILABLE, "a transient failure")
        self.finished.set()
        return data_pb2.LogReply()

    def samples(self) -> list[Any]:
        """Every sample received, in order (those sent again included)."""
        return [m.sample for m in self.of("Log") if m.HasField("sample")]


class RawHooks(hooks_pb2_grpc.TrialHooksServicer, Recorder):
    """PreTrial lets `rewrite(context)` change the TrialContext in place."""

    def __init__(self, rewrite: Callable[[Any], None]) -> None:
        Recorder.__init__(self)
        self.rewrite = rewrite

    def PreTrial(self, request: Any, context: Any) -> Any:
        self.record("PreTrial", request)
        self.rewrite(request)
        return request


def serve(servicer: Any, port: int = 0) -> tuple[grpc.Server, str]:
    """Serves `servicer` on `port` (0: a free one); returns (server, "grpc://127.0.0.1:<port>")."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=OPTIONS)
    if isinstance(servicer, RawEnv):
        environment_pb2_grpc.add_EnvironmentServicer_to_server(servicer, server)
    elif isinstance(servicer, RawAgent):
        agent_pb2_grpc.add_AgentServicer_to_server(servicer, server)
    elif isinstance(servicer, RawHooks):
        hooks_pb2_grpc.add_TrialHooksServicer_to_server(servicer, server)
    else:
        data_pb2_grpc.add_LogExporterServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, f"grpc://127.0.0.1:{port}"
