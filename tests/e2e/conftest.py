"""End-to-end fixtures: the test project's services, orchestrators and client connections.

* `services` (session): every service of the test project (and of services_extra.py) served
  in-process by GrpcServers on free ports; `services.endpoints[name]` is its grpc:// endpoint
  (names: env, player, watcher, failing_env, failing_player, hooks, dead).
* `transport` (function): how the `orchestrator` fixture's orchestrators call the services:
  "auto" (the default: streams, as our GrpcServers serve them); a test module or test
  parametrized with `BOTH_TRANSPORTS` runs once on "stream" and once on "unary" (the 0.5
  calls), each forced (no fallback from one to the other but a service's max_streams).
* `orchestrator` (function): `orchestrator(actors=..., **params)` starts a
  `cogment.Orchestrator` whose default trial parameters point at those services (see
  `trial_params`) and whose pre-trial hook is the routing hook, with `transport`; stopped
  at teardown.
* `connect` (function): `connect(orch, **kwargs)` opens a client Connection (timeout 30 s
  unless given), closed at teardown.
"""

from __future__ import annotations

import dataclasses
import socket
import types
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import pytest

import cogment
from cogment.api import common_pb2
from cogment.client import Connection

LOCALHOST = "127.0.0.1"
HUMAN_TRIAL = (("player", "human"), ("player", "player"), ("watcher", "watcher"))
BOTH_TRANSPORTS = pytest.mark.parametrize("transport", ["stream", "unary"])
"""Runs a test (or, as `pytestmark`, a module) on both of the orchestrator's transports."""


@dataclasses.dataclass
class Services:
    endpoints: dict[str, str]
    servers: list[cogment.GrpcServer]
    journal: Any


def free_port() -> int:
    """A port nobody listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def services(
    cog_settings: types.ModuleType, project_services: types.ModuleType
) -> Iterator[Services]:
    from tests.e2e import services_extra as extra

    classes = {
        "env": project_services.BoardEnv,
        "player": project_services.PlayerAgent,
        "watcher": project_services.WatcherAgent,
        "failing_env": extra.FailingEnv,
        "failing_player": extra.FailingPlayer,
    }
    servers = []
    endpoints = {"dead": f"grpc://{LOCALHOST}:{free_port()}"}
    for name, service_class in classes.items():
        server = cogment.GrpcServer(service_class, cog_settings, port=0, host=LOCALHOST).start()
        servers.append(server)
        endpoints[name] = f"grpc://{LOCALHOST}:{server.port}"
    routes = {
        "": {
            "environment": endpoints["env"],
            "player": endpoints["player"],
            "watcher": endpoints["watcher"],
        },
        "fail-env": {
            "environment": endpoints["failing_env"],
            "player": endpoints["player"],
            "watcher": endpoints["watcher"],
        },
        "fail-agent": {
            "environment": endpoints["env"],
            "player": endpoints["failing_player"],
            "watcher": endpoints["watcher"],
        },
        "unreachable-env": {"environment": endpoints["dead"]},
        "unreachable-agent": {
            "environment": endpoints["env"],
            "player": endpoints["dead"],
            "watcher": endpoints["watcher"],
        },
    }
    hooks = cogment.GrpcServer(
        extra.RoutingHooks.with_routes(routes), cog_settings, port=0, host=LOCALHOST
    ).start()
    servers.append(hooks)
    endpoints["hooks"] = f"grpc://{LOCALHOST}:{hooks.port}"
    yield Services(endpoints, servers, project_services.JOURNAL)
    for server in servers:
        server.stop()


def trial_params(
    cog_settings: Any,
    services: Services,
    actors: Sequence[tuple[str, str]] = HUMAN_TRIAL,
    *,
    max_steps: int = 100,
    max_inactivity: int = 30,
    rounds: int = 0,
    env_size: int = 0,
) -> common_pb2.TrialParams:
    """Trial parameters on the served services: `actors` are (class, endpoint name or
    "human") pairs; the player agent of the default trial is configured as "alice"."""
    params = common_pb2.TrialParams(max_steps=max_steps, max_inactivity=max_inactivity)
    params.trial_config.content = cog_settings.trial.config_type(
        rounds=rounds, env_size=env_size
    ).SerializeToString()
    params.environment.endpoint = services.endpoints["env"]
    params.environment.config.content = cog_settings.environment.config_type(
        size=4, label="default"
    ).SerializeToString()
    named = False
    for class_id, where in actors:
        actor = params.actors.add(actor_class=class_id)
        actor.endpoint = "human" if where == "human" else services.endpoints[where]
        if class_id == "player" and where != "human" and not named:
            actor.config.content = cog_settings.actor_classes.player.config_type(
                name="alice"
            ).SerializeToString()
            named = True
    return params


@pytest.fixture
def transport() -> str:
    """The orchestrator's transport (overridden by `BOTH_TRANSPORTS`)."""
    return "auto"


@pytest.fixture
def orchestrator(
    cog_settings: types.ModuleType, services: Services, transport: str
) -> Iterator[Callable[..., cogment.Orchestrator]]:
    started: list[cogment.Orchestrator] = []

    def start(
        actors: Sequence[tuple[str, str]] = HUMAN_TRIAL, **params: Any
    ) -> cogment.Orchestrator:
        response_timeout = params.pop("response_timeout", 10.0)
        how = params.pop("transport", transport)
        orch = cogment.Orchestrator(
            cog_settings,
            port=0,
            response_timeout=response_timeout,
            default_trial_params=trial_params(cog_settings, services, actors, **params),
            pre_hooks=[services.endpoints["hooks"]],
            datalog_endpoint="",
            transport=how,
        )
        started.append(orch.start())
        return orch

    yield start
    for orch in started:
        orch.stop()


@pytest.fixture
def connect(cog_settings: types.ModuleType) -> Iterator[Callable[..., Connection]]:
    opened: list[Connection] = []

    def make(orch: cogment.Orchestrator, **kwargs: Any) -> Connection:
        kwargs.setdefault("timeout", 30.0)
        connection = Connection(cog_settings, orch.endpoint, **kwargs)
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        connection.close()
