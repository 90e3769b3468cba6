"""Fixtures of the bridge tests: served envs and agents, and orchestrators pointed at them.

* `serve` (function): `serve(service_class, settings=None)` starts a `cogment.GrpcServer` on
  127.0.0.1, port 0, with the bridges' built-in settings by default; stopped at teardown.
  Returns its grpc:// endpoint.
* `orchestrate` (function): `orchestrate(env_endpoint, env_config, players=("human",),
  observers=(), max_steps=0, settings=None)` starts a `cogment.Orchestrator` (built-in
  settings by default) whose default trial runs that env; stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional

import pytest

pytest.importorskip("gymnasium")

import cogment
from cogment.bridges import settings as builtin

LOCALHOST = "127.0.0.1"
TIMEOUT = 20.0  # bound of every call in these tests


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    servers: list[cogment.GrpcServer] = []

    def start(service_class: type, settings: Optional[Any] = None) -> str:
        server = cogment.GrpcServer(
            service_class, settings or builtin, port=0, host=LOCALHOST
        ).start()
        servers.append(server)
        return f"grpc://{LOCALHOST}:{server.port}"

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def orchestrate() -> Iterator[Callable[..., cogment.Orchestrator]]:
    started: list[cogment.Orchestrator] = []

    def start(
        env_endpoint: str,
        env_config: Any,
        players: Sequence[str] = ("human",),
        observers: Sequence[str] = (),
        max_steps: int = 0,
        settings: Optional[Any] = None,
    ) -> cogment.Orchestrator:
        params = builtin.trial_params(
            env_endpoint, env_config, players=players, observers=observers, max_steps=max_steps
        )
        orchestrator = cogment.Orchestrator(
            settings or builtin,
            default_trial_params=params,
            pre_hooks=[],
            datalog_endpoint="",
            response_timeout=TIMEOUT,
        ).start()
        started.append(orchestrator)
        return orchestrator

    yield start
    for orchestrator in started:
        orchestrator.stop()
