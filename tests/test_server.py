"""GrpcServer: choosing the service, lifecycle, signals, message sizes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest

import cogment
from cogment.api import (
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    environment_pb2,
    environment_pb2_grpc,
    hooks_pb2_grpc,
)

from .conftest import LOCALHOST, UNLIMITED

TIMEOUT = 5.0


def _version(port: int, stub_type: Any = environment_pb2_grpc.EnvironmentStub) -> list[str]:
    with grpc.insecure_channel(f"{LOCALHOST}:{port}") as channel:
        info = stub_type(channel).Version(common_pb2.VersionRequest(), timeout=TIMEOUT)
    return [v.name for v in info.versions]


def test_the_class_picks_the_service(
    project_services: Any, start_server: Any, grpc_channel: Any
) -> None:
    env = start_server(project_services.BoardEnv)
    agent = start_server(project_services.PlayerAgent)
    hooks = start_server(project_services.Hooks)
    assert _version(env.port)[-1] == "board-env"
    assert _version(agent.port, agent_pb2_grpc.AgentStub)[-1] == "player-agent"
    assert _version(hooks.port, hooks_pb2_grpc.TrialHooksStub)[-1] == "hooks"
    # the environment server does not answer the Agent service
    with pytest.raises(grpc.RpcError) as error:
        _version(env.port, agent_pb2_grpc.AgentStub)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


class Abstract(cogment.Agent):
    pass


class NoClass(cogment.Agent):
    def decide(self, observation: Any) -> Any:
        return None


class StringClass(cogment.Agent):
    actor_class = "player"  # type: ignore[assignment]

    def decide(self, observation: Any) -> Any:
        return None


@pytest.mark.parametrize(
    ("service", "message"),
    [
        (
            int,
            "GrpcServer: int is not a subclass of cogment.Agent, cogment.Environment, "
            "cogment.TrialHooks or cogment.LogExporter",
        ),
        ("BoardEnv()", "GrpcServer: expected a class"),
        (Abstract, "GrpcServer: Abstract cannot be served: it does not implement decide"),
        (
            NoClass,
            "NoClass.actor_class is not set: set it to cog_settings.actor_classes.<id> (one of: player, watcher)",
        ),
        (
            StringClass,
            "StringClass.actor_class is 'player', not an ActorClass: set it to cog_settings.actor_classes.<id>",
        ),
    ],
)
def test_unservable_classes(
    service: Any, message: str, cog_settings: Any, project_services: Any
) -> None:
    if service == "BoardEnv()":
        service = object.__new__(project_services.BoardEnv)
    with pytest.raises(cogment.ConfigurationError) as error:
        cogment.GrpcServer(service, cog_settings, port=0)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("port", [-1, 65536, "abc", 1.5, True])
def test_bad_ports(port: Any, cog_settings: Any, project_services: Any) -> None:
    with pytest.raises(cogment.ConfigurationError) as error:
        cogment.GrpcServer(project_services.BoardEnv, cog_settings, port=port)
    assert str(error.value) == (
        f"GrpcServer: port must be a whole number from 0 to 65535 (0 picks a free one), got {port!r}"
    )


def test_bad_settings(project_services: Any) -> None:
    with pytest.raises(
        cogment.ConfigurationError, match="settings must be the project's generated cog_settings"
    ):
        cogment.GrpcServer(project_services.BoardEnv, object(), port=0)


def test_lifecycle_start_stop_and_misuse(project_services: Any, cog_settings: Any) -> None:
    server = cogment.GrpcServer(project_services.BoardEnv, cog_settings, port=0, host=LOCALHOST)
    assert server.port > 0
    # the port is taken while the server exists
    with pytest.raises(cogment.CogmentError, match=f"cannot listen on {LOCALHOST}:{server.port}"):
        cogment.GrpcServer(
            project_services.BoardEnv, cog_settings, port=server.port, host=LOCALHOST
        )
    server.start()
    with pytest.raises(cogment.LifecycleError, match=r"GrpcServer\.start\(\).* already started"):
        server.start()
    assert _version(server.port)[0] == "cogment-api"
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(cogment.LifecycleError, match="stopped; make a new GrpcServer"):
        server.start()
    with pytest.raises(cogment.LifecycleError, match="stopped; make a new GrpcServer"):
        server.serve()
    with pytest.raises(grpc.RpcError):
        _version(server.port)


def test_serve_in_a_thread_returns_after_stop(project_services: Any, cog_settings: Any) -> None:
    server = cogment.GrpcServer(project_services.BoardEnv, cog_settings, port=0, host=LOCALHOST)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    assert _version(server.port)[-1] == "board-env"
    server.stop()
    thread.join(TIMEOUT)
    assert not thread.is_alive()


def test_context_manager(project_services: Any, cog_settings: Any) -> None:
    with cogment.GrpcServer(project_services.Hooks, cog_settings, port=0, host=LOCALHOST) as server:
        assert _version(server.port, hooks_pb2_grpc.TrialHooksStub)[-1] == "hooks"
    with pytest.raises(grpc.RpcError):
        _version(server.port, hooks_pb2_grpc.TrialHooksStub)


def test_large_observations(project_services: Any, start_server: Any, cog_settings: Any) -> None:
    """17 MiB observations go both ways (gRPC's default limit is 4 MiB)."""
    import data_pb2

    size = 17 * 1024 * 1024 // 5  # int32 varints of 5 bytes each

    class BigEnv(cogment.Environment):
        def start(self, config: Any) -> Any:
            return data_pb2.Board(cells=[2**30] * config.size)

        def update(self, actions: Any) -> Any:
            raise NotImplementedError

    env = start_server(BigEnv)
    agent = start_server(project_services.PlayerAgent)
    with grpc.insecure_channel(f"{LOCALHOST}:{env.port}", options=UNLIMITED) as channel:
        request = environment_pb2.EnvStartRequest(trial_id="big", actor_counts=[1, 0])
        request.config.content = data_pb2.EnvConfig(size=size).SerializeToString()
        reply = environment_pb2_grpc.EnvironmentStub(channel).Start(request, timeout=30)
    content = reply.observation_set.observations[0].content
    assert len(content) > 16 * 1024 * 1024
    board = data_pb2.Board(cells=[2**30] * size)
    with grpc.insecure_channel(f"{LOCALHOST}:{agent.port}", options=UNLIMITED) as channel:
        stub = agent_pb2_grpc.AgentStub(channel)
        stub.Start(
            agent_pb2.AgentStartRequest(trial_id="big", actor_id=0, actor_counts=[1, 0]),
            timeout=TIMEOUT,
        )
        observation = common_pb2.Observation(
            data=common_pb2.ObservationData(content=board.SerializeToString(), snapshot=True)
        )
        assert len(observation.data.content) > 16 * 1024 * 1024
        reply = stub.Decide(
            agent_pb2.AgentDecideRequest(trial_id="big", actor_id=0, observation=observation),
            timeout=30,
        )
    assert data_pb2.Move.FromString(reply.action.content).cell == 0


SERVE_SCRIPT = """
import sys
import cog_settings, cogment, services
server = cogment.GrpcServer(services.BoardEnv, cog_settings, port=0, host="127.0.0.1")
print(server.port, flush=True)
server.serve()
print("stopped", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_cleanly_on_signals(
    signum: int, generated_dir: Path, project_dir: Path
) -> None:
    root = Path(cogment.__file__).resolve().parents[1]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(generated_dir), str(project_dir), str(root)])
    )
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # bounded by pytest-timeout if the child hangs
        assert line.strip().isdigit(), process.stderr.read() if process.stderr else line
        assert _version(int(line))[-1] == "board-env"
        process.send_signal(signum)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)
    assert process.returncode == 0, err
    assert out.strip() == "stopped"
