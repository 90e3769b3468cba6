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
    """Keeps every DatalogMsg of every stream."""

    def __init__(self) -> None:
        Recorder.__init__(self)
        self.finished = threading.Event()

    def Log(self, request_iterator: Any, context: Any) -> Any:
        from cogment.api import data_pb2

        for message in request_iterator:
            self.record("Log", message)
        self.finished.set()
        return data_pb2.LogReply()


class RawHooks(hooks_pb2_grpc.TrialHooksServicer, Recorder):
    """PreTrial lets `rewrite(context)` change the TrialContext in place."""

    def __init__(self, rewrite: Callable[[Any], None]) -> None:
        Recorder.__init__(self)
        self.rewrite = rewrite

    def PreTrial(self, request: Any, context: Any) -> Any:
        self.record("PreTrial", request)
        self.rewrite(request)
        return request


def serve(servicer: Any) -> tuple[grpc.Server, str]:
    """Serves `servicer` on a free port; returns (server, "grpc://127.0.0.1:<port>")."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=OPTIONS)
    if isinstance(servicer, RawEnv):
        environment_pb2_grpc.add_EnvironmentServicer_to_server(servicer, server)
    elif isinstance(servicer, RawAgent):
        agent_pb2_grpc.add_AgentServicer_to_server(servicer, server)
    elif isinstance(servicer, RawHooks):
        hooks_pb2_grpc.add_TrialHooksServicer_to_server(servicer, server)
    else:
        data_pb2_grpc.add_LogExporterServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"grpc://127.0.0.1:{port}"
