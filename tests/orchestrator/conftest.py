"""Fixtures of the orchestrator tests: the test project's services on free ports, an
orchestrator pointed at them, and a raw `cogment.Trial` stub as the client.

* `project` (function): starts BoardEnv, PlayerAgent and WatcherAgent (tests/project/
  services.py) on port 0; `project.params(...)` builds TrialParams pointing at them.
* `orchestrator` (function): `orchestrator(params=None, **kwargs)` starts a
  `cogment.Orchestrator` (no pre-hooks unless given) and stops it at teardown.
* `trial_stub` (function): `trial_stub(orch)` a TrialStub on a fresh channel.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional

import grpc
import pytest

from cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment.orchestrator import Orchestrator
from tests.conftest import endpoint

TIMEOUT = 10.0  # bound of every client call in these tests


class Project:
    """The test project's services, served on free ports."""

    def __init__(self, cog_settings: Any, services: Any, start_server: Callable[..., Any]):
        self.settings = cog_settings
        self.services = services
        self.env = start_server(services.BoardEnv)
        self.player = start_server(services.PlayerAgent)
        self.watcher = start_server(services.WatcherAgent)

    def params(
        self,
        actors: Sequence[tuple[str, str]] = (("player", "human"), ("player", ""), ("watcher", "")),
        max_steps: int = 0,
        max_inactivity: int = 0,
        rounds: int = 0,
        env_endpoint: Optional[str] = None,
        size: int = 4,
    ) -> common_pb2.TrialParams:
        """TrialParams for these services; an actor endpoint "" means this project's agent
        service of that class."""
        import data_pb2

        params = common_pb2.TrialParams(max_steps=max_steps, max_inactivity=max_inactivity)
        params.trial_config.content = data_pb2.TrialConfig(rounds=rounds).SerializeToString()
        params.environment.endpoint = env_endpoint or endpoint(self.env)
        params.environment.config.content = data_pb2.EnvConfig(size=size).SerializeToString()
        agents = {"player": endpoint(self.player), "watcher": endpoint(self.watcher)}
        for actor_class, where in actors:
            entry = params.actors.add(
                actor_class=actor_class, endpoint=where or agents[actor_class]
            )
            if actor_class == "player" and where != "human":
                entry.config.content = data_pb2.PlayerConfig(name="alice").SerializeToString()
        return params


@pytest.fixture
def project(
    cog_settings: types.ModuleType,
    project_services: types.ModuleType,
    start_server: Callable[..., Any],
) -> Project:
    return Project(cog_settings, project_services, start_server)


@pytest.fixture
def orchestrator(cog_settings: types.ModuleType) -> Iterator[Callable[..., Orchestrator]]:
    started: list[Orchestrator] = []

    def start(params: Optional[common_pb2.TrialParams] = None, **kwargs: Any) -> Orchestrator:
        kwargs.setdefault("pre_hooks", [])
        kwargs.setdefault("datalog_endpoint", "")
        kwargs.setdefault("response_timeout", TIMEOUT)
        orch = Orchestrator(cog_settings, default_trial_params=params, **kwargs)
        started.append(orch)
        return orch.start()

    yield start
    for orch in started:
        orch.stop()


@pytest.fixture
def trial_stub(
    grpc_channel: Callable[[int], grpc.Channel],
) -> Callable[[Orchestrator], orchestrator_pb2_grpc.TrialStub]:
    """`trial_stub(orch)`: a Trial stub on a channel to `orch` (closed at teardown)."""

    def make(orch: Orchestrator) -> orchestrator_pb2_grpc.TrialStub:
        return orchestrator_pb2_grpc.TrialStub(grpc_channel(orch.port))

    return make


def start_trial(
    stub: orchestrator_pb2_grpc.TrialStub, rounds: Optional[int] = None, user_id: str = "tester"
) -> orchestrator_pb2.TrialStartReply:
    """Trial.Start (with a TrialConfig(rounds=...) when `rounds` is given)."""
    import data_pb2

    request = orchestrator_pb2.TrialStartRequest(user_id=user_id)
    if rounds is not None:
        request.config.content = data_pb2.TrialConfig(rounds=rounds).SerializeToString()
    return stub.Start(request, timeout=TIMEOUT, metadata=[("session_id", "test-session")])


def act(
    stub: orchestrator_pb2_grpc.TrialStub, trial_id: str, actor_id: int, cell: int = 0
) -> orchestrator_pb2.TrialActionReply:
    """Trial.Action with a Move."""
    import data_pb2

    request = orchestrator_pb2.TrialActionRequest(trial_id=trial_id, actor_id=actor_id)
    request.action.content = data_pb2.Move(cell=cell).SerializeToString()
    return stub.Action(request, timeout=TIMEOUT)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., str]]:
    """`raw_server(servicer, port=0)` serves a tests/orchestrator/raw.py servicer (on a free
    port by default) and returns its grpc:// endpoint; stopped at teardown."""
    from tests.orchestrator.raw import serve

    servers: list[grpc.Server] = []

    def start(servicer: Any, port: int = 0) -> str:
        server, where = serve(servicer, port)
        servers.append(server)
        return where

    yield start
    for server in servers:
        server.stop(None)


def raw_params(
    env: str, actors: Sequence[tuple[str, str]], max_steps: int = 0, max_inactivity: int = 0
) -> common_pb2.TrialParams:
    """TrialParams with the given environment endpoint and (class, endpoint) actors."""
    params = common_pb2.TrialParams(max_steps=max_steps, max_inactivity=max_inactivity)
    params.environment.endpoint = env
    for actor_class, where in actors:
        params.actors.add(actor_class=actor_class, endpoint=where)
    return params
