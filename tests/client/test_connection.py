"""Connection: endpoints, lifecycle, metadata, error translation, the TrialService seam."""

from __future__ import annotations

import pickle
import socket
import threading
import uuid
from typing import Any, Callable

import grpc
import pytest

from cogment.api import orchestrator_pb2
from cogment.client import Connection
from cogment.endpoint import orchestrator_address
from cogment.errors import (
    CogmentError,
    CogmentRpcError,
    ConfigurationError,
    LifecycleError,
    TrialError,
    from_rpc_error,
)
from tests.client.fake_orchestrator import FakeOrchestrator, FakeRpcError, FakeServer
from tests.waiting import wait_until


@pytest.mark.parametrize(
    ("endpoint", "address"),
    [
        ("127.0.0.1:9000", "127.0.0.1:9000"),
        ("grpc://127.0.0.1:9000", "127.0.0.1:9000"),
        ("localhost:1", "localhost:1"),
        ("grpc://[::1]:65535", "[::1]:65535"),
    ],
)
def test_endpoints_accepted(endpoint: str, address: str) -> None:
    assert orchestrator_address(endpoint) == address


@pytest.mark.parametrize(
    "endpoint",
    ["localhost", "http://127.0.0.1:9000", "127.0.0.1:0", "127.0.0.1:70000", "", "grpc://:9000"],
)
def test_bad_endpoint_is_a_configuration_error_naming_it(settings: Any, endpoint: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid orchestrator endpoint") as info:
        Connection(settings, endpoint)
    assert repr(endpoint) in str(info.value)


def test_endpoint_of_the_wrong_type_is_a_configuration_error(settings: Any) -> None:
    with pytest.raises(ConfigurationError, match="42"):
        Connection(settings, 42)  # type: ignore[arg-type]


def test_settings_must_be_a_cog_settings(settings: Any) -> None:
    with pytest.raises(ConfigurationError, match="has no 'actor_classes'"):
        Connection(object(), "127.0.0.1:9000")


@pytest.mark.parametrize("keyword", ["timeout", "heartbeat_interval"])
def test_non_positive_durations_are_refused(settings: Any, keyword: str) -> None:
    durations: dict[str, Any] = {keyword: 0}
    with pytest.raises(ConfigurationError, match=keyword):
        Connection(settings, "127.0.0.1:9000", **durations)


def test_every_call_carries_the_session_id(
    connect: Callable[..., Connection], fake: FakeOrchestrator
) -> None:
    conn = connect(heartbeat_interval=0.02)
    assert uuid.UUID(conn.session_id).version == 4
    assert conn.get_trial_params().max_steps == 7
    assert conn.version()["cogment-api"] == "v0.5"
    trial = conn.start_trial(conn.settings.actor_classes.player)
    assert trial.session_id == conn.session_id
    trial.actors.player[1].add_feedback(value=1, confidence=1)
    trial.actors.player[1].send_message(conn.settings.actor_classes.player.action_space())
    trial.do_action(conn.settings.actor_classes.player.action_space(cell=1))
    trial.begin_actions_stream()
    trial.do_action(conn.settings.actor_classes.player.action_space(cell=2))
    assert trial.wait_for_end(0.1) is False  # idle: heartbeats go out
    trial.end()
    methods = set(fake.methods())
    assert methods >= {"GetTrialParams", "Version", "Start", "GiveFeedback", "SendMessage"}
    assert methods >= {"Action", "ActionStream", "Heartbeat", "End"}
    assert {metadata.get("session_id") for _, _, metadata in fake.calls} == {conn.session_id}
    other = connect()
    assert other.session_id != conn.session_id


def test_close_is_idempotent_and_a_closed_connection_refuses_use(
    connect: Callable[..., Connection],
) -> None:
    conn = connect()
    trial = conn.start_trial("player")
    conn.close()
    conn.close()
    assert conn.is_closed
    with pytest.raises(CogmentError, match="is closed"):
        conn.start_trial("player")
    with pytest.raises(CogmentError, match="is closed"):
        conn.get_trial_params()
    with pytest.raises(CogmentError, match="is closed"):
        trial.do_action(conn.settings.actor_classes.player.action_space())
    with pytest.raises(CogmentError, match="is closed"):
        trial.end()
    assert not trial.is_over  # the trial itself was left to the orchestrator
    with pytest.raises(CogmentError, match="is closed"), conn:
        pass


def test_context_manager_closes_and_stops_heartbeats(settings: Any, server: FakeServer) -> None:
    with Connection(settings, f"grpc://{server.endpoint}", heartbeat_interval=0.05) as conn:
        conn.start_trial(settings.actor_classes.player)
        heartbeat = conn._heartbeat
        assert heartbeat is not None and heartbeat.is_running
    assert conn.is_closed
    assert not heartbeat.is_running


def test_a_channel_passed_in_is_used_and_left_open(settings: Any, server: FakeServer) -> None:
    channel = grpc.insecure_channel(server.endpoint)
    try:
        with Connection(settings, channel) as conn:
            assert conn.start_trial("player").tick_id == 0
        # still usable by its owner
        grpc.channel_ready_future(channel).result(timeout=5)
    finally:
        channel.close()


def test_an_in_memory_trial_service_fits_the_seam(settings: Any) -> None:
    """Practice 6: any object with the Trial methods can stand in for the channel."""

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, Any, Any]] = []

        def GetTrialParams(self, request: Any, timeout: Any = None, metadata: Any = None) -> Any:
            self.calls.append(("GetTrialParams", timeout, metadata))
            return orchestrator_pb2.GetTrialParamsReply()

        def __getattr__(self, name: str) -> Any:
            raise AttributeError(name)

        Start = Action = GetTrialParams

    service = Recorder()
    with Connection(settings, service, timeout=3.0) as conn:
        conn.get_trial_params()
    assert service.calls == [("GetTrialParams", 3.0, (("session_id", conn.session_id),))]


def test_unreachable_orchestrator_names_the_endpoint(settings: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = Connection(settings, f"127.0.0.1:{port}", timeout=5.0)
    with conn, pytest.raises(CogmentRpcError) as info:
        conn.start_trial("player")
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert f"cannot reach the orchestrator at 127.0.0.1:{port}" in info.value.message


def test_start_trial_checks_its_arguments(
    connect: Callable[..., Connection], fake: FakeOrchestrator
) -> None:
    conn = connect()
    with pytest.raises(ConfigurationError, match="unknown actor class 'driver'"):
        conn.start_trial("driver")
    with pytest.raises(TypeError, match=r"testproject\.TrialConfig.*testproject\.EnvConfig"):
        conn.start_trial("player", trial_cfg=conn.settings.environment.config_type())
    with pytest.raises(
        ConfigurationError, match=r"a plugin must have a start_trial\(trial\) method, got 'x'"
    ):
        conn.start_trial("player", plugins=["x"])
    assert fake.methods() == []
    conn.start_trial("player", trial_cfg=conn.settings.trial.config_type(rounds=5), user_id="u")
    (_, request, _) = fake.calls[-1]
    assert request.user_id == "u"
    assert conn.settings.trial.config_type.FromString(request.config.content).rounds == 5


def test_a_slot_of_another_class_ends_the_started_trial(
    connect: Callable[..., Connection], fake: FakeOrchestrator
) -> None:
    conn = connect()
    with pytest.raises(ConfigurationError, match="actor 0 is of class 'player', not 'watcher'"):
        conn.start_trial(conn.settings.actor_classes.watcher)
    assert fake.methods() == ["Start", "End"]  # cleaned up on partial failure
    assert conn.trials == []


def test_large_observations_cross(
    connect: Callable[..., Connection], fake: FakeOrchestrator
) -> None:
    fake.observation_size = 4 * 1024 * 1024  # 4 Mi cells of 5 bytes: 20 MiB, over gRPC's 4 MiB
    trial = connect().start_trial("player")
    assert trial.observation.ByteSize() > 16 * 1024 * 1024
    assert len(trial.observation.cells) == 4 + fake.observation_size


@pytest.mark.parametrize("code", list(grpc.StatusCode))
def test_every_status_code_is_translated(code: grpc.StatusCode) -> None:
    error = from_rpc_error(FakeRpcError(code, "what happened"))
    assert isinstance(error, CogmentRpcError)
    assert (error.code, error.message) == (code, "what happened")
    assert isinstance(error, TrialError) == (code is grpc.StatusCode.ABORTED)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.code, again.message) == (type(error), code, "what happened")
    assert code.name in repr(error)


def test_closing_cancels_the_streams_opened_on_a_channel_passed_in(
    settings: Any, server: FakeServer
) -> None:
    """The channel stays open, so closing the Connection must cancel its streams itself."""
    channel = grpc.insecure_channel(server.endpoint)
    try:
        conn = Connection(settings, channel, heartbeat_interval=None)
        trial = conn.start_trial("player")
        trial.begin_actions_stream()
        trial.do_action(settings.actor_classes.player.action_space(cell=1))
        reader = f"cogment-stream-{trial.id}"
        assert reader in [t.name for t in threading.enumerate()]
        conn.close()
        wait_until(
            lambda: reader not in [t.name for t in threading.enumerate()],
            5,
            "the stream's reader thread ended",
        )
        assert not trial.is_over  # closing is not ending
        with pytest.raises(LifecycleError, match="is closed"):
            trial.do_action(settings.actor_classes.player.action_space(cell=2))
        grpc.channel_ready_future(channel).result(timeout=5)  # still usable by its owner
    finally:
        channel.close()
