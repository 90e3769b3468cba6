"""The orchestrator's transports (issue 15): streams with the services that serve them, the
0.5 unary calls with the others, in one trial; the choice of `auto`; the fallback past a
service's `max_streams`; `--transport`; a stream that breaks mid-trial. (The end-to-end
suite runs on both transports: tests/e2e, `BOTH_TRANSPORTS`.)"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import grpc
import pytest

import cogment
from cogment.api import orchestrator_pb2
from cogment.errors import ConfigurationError
from tests.conftest import LOCALHOST, endpoint
from tests.orchestrator.conftest import TIMEOUT, act, start_trial
from tests.orchestrator.raw import RawAgent
from tests.waiting import wait_until

PROJECT = Path(__file__).resolve().parents[1] / "project"


@pytest.fixture
def orchestrator_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="cogment.orchestrator")
    return caplog


def _play(stub: Any, ticks: int) -> str:
    """Starts a trial and acts `ticks` times as its human (actor 0); its id."""
    trial_id = start_trial(stub).trial_id
    for t in range(ticks):
        act(stub, trial_id, 0, t % 4)
    return trial_id


def test_one_trial_mixes_a_streamed_agent_and_a_unary_one(
    project, orchestrator, trial_stub, raw_server, orchestrator_log
):
    raw = RawAgent()  # API 0.5 on bare grpcio: no Version, no streams
    raw_endpoint = raw_server(raw)
    params = project.params(
        actors=[("player", "human"), ("player", ""), ("watcher", raw_endpoint)], max_steps=4
    )
    orch = orchestrator(params)
    stub = trial_stub(orch)
    trial_id = start_trial(stub).trial_id
    # the SDK's player and environment are on streams; the raw watcher gets unary calls
    assert project.player.stream_count == 1 and project.env.stream_count == 1
    for t in range(3):
        reply = act(stub, trial_id, 0, t)
        assert not reply.trial_is_over
    assert act(stub, trial_id, 0, 3).trial_is_over
    assert [r.actor_id for r in raw.of("Start")] == [2]
    assert len(raw.of("Decide")) >= 4 and len(raw.of("End")) == 1
    wait_until(
        lambda: project.player.stream_count + project.env.stream_count == 0,
        TIMEOUT,
        "the streams closed at the trial's end",
    )
    text = orchestrator_log.text
    assert f"agent at {endpoint(project.player)}: streamed" in text
    assert f"environment at {endpoint(project.env)}: streamed" in text
    assert f"agent at {raw_endpoint}: unary calls (it does not serve cogment-py's streams)" in text


def test_auto_calls_a_server_without_streams_unary(
    project, orchestrator, trial_stub, start_server, orchestrator_log
):
    """A GrpcServer with max_streams=0 says in its Version that it serves no streams."""
    watcher = start_server(project.services.WatcherAgent, max_streams=0)
    params = project.params(
        actors=[("player", "human"), ("player", ""), ("watcher", endpoint(watcher))]
    )
    stub = trial_stub(orchestrator(params))
    _play(stub, 2)
    assert project.player.stream_count == 1 and watcher.stream_count == 0
    assert watcher.session_count == 1  # served, by unary calls
    assert f"agent at {endpoint(watcher)}: unary calls" in orchestrator_log.text


def test_a_service_out_of_streams_gets_unary_calls(
    project, orchestrator, trial_stub, start_server, orchestrator_log
):
    player = start_server(project.services.PlayerAgent, max_streams=1)
    where = endpoint(player)
    actors = [("player", "human"), ("player", where), ("player", where), ("watcher", "")]
    stub = trial_stub(orchestrator(project.params(actors=actors, max_steps=6)))
    trial_id = _play(stub, 5)
    assert player.stream_count == 1 and player.session_count == 2  # one streamed, one unary
    assert act(stub, trial_id, 0).trial_is_over  # the trial never noticed
    assert "has no room for another stream: unary calls" in orchestrator_log.text
    wait_until(lambda: player.session_count == 0, TIMEOUT, "both actors ended")


def test_transport_stream_refuses_a_service_without_streams(
    project, orchestrator, trial_stub, raw_server
):
    raw_endpoint = raw_server(RawAgent())
    params = project.params(actors=[("player", "human"), ("watcher", raw_endpoint)])
    stub = trial_stub(orchestrator(params, transport="stream"))
    with pytest.raises(grpc.RpcError) as info:
        start_trial(stub)
    details = info.value.details() or ""
    assert f"agent actor 1 (class 'watcher') at {raw_endpoint}: Start failed: UNIMPLEMENTED" in (
        details
    )
    assert "call it with transport 'auto'" in details


def test_transport_unary_makes_no_stream(project, orchestrator, trial_stub):
    stub = trial_stub(orchestrator(project.params(), transport="unary"))
    _play(stub, 2)
    assert project.player.stream_count == 0 and project.env.stream_count == 0
    assert project.player.session_count == 1 and project.env.session_count == 1


def test_a_bad_transport_is_refused(cog_settings):
    with pytest.raises(ConfigurationError, match="transport must be one of auto, unary, stream"):
        cogment.Orchestrator(cog_settings, port=0, transport="fast")
    result = subprocess.run(
        [sys.executable, "-m", "cogment.cli", "orchestrator", "--transport", "fast"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "argument --transport: invalid choice: 'fast' (choose from 'auto', 'unary', 'stream')"
        in result.stderr
    )


SERVE_PLAYER = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import cog_settings, cogment
from services import PlayerAgent
server = cogment.GrpcServer(PlayerAgent, cog_settings, port=0, host="127.0.0.1").start()
print(server.port, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def player_process(generated_dir: Path) -> Iterator[Callable[[], tuple[str, Any]]]:
    """`player_process()`: the test project's PlayerAgent served by a process of its own;
    its endpoint and the process (killed at teardown)."""
    started: list[subprocess.Popen[str]] = []

    def start() -> tuple[str, subprocess.Popen[str]]:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE_PLAYER, str(generated_dir), str(PROJECT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(PROJECT.parents[1])},
        )
        started.append(process)
        assert process.stdout is not None
        port = int(process.stdout.readline())  # bounded: the process prints or dies
        return f"grpc://{LOCALHOST}:{port}", process

    yield start
    for process in started:
        process.kill()
        process.wait(10)


@pytest.mark.parametrize("transport", ["stream", "unary"])
def test_an_agent_killed_mid_trial_fails_the_trial_alike_on_both_transports(
    project, orchestrator, trial_stub, player_process, transport
):
    where, process = player_process()
    params = project.params(actors=[("player", "human"), ("player", where), ("watcher", "")])
    stub = trial_stub(orchestrator(params, transport=transport))
    trial_id = _play(stub, 2)
    assert project.env.stream_count == (1 if transport == "stream" else 0)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    failure = None
    for t in range(5):  # unary: the next Decide may have been answered already
        try:
            act(stub, trial_id, 0, t)
        except grpc.RpcError as error:
            failure = error
            break
    assert failure is not None, "the trial went on without its agent"
    assert failure.code() is grpc.StatusCode.ABORTED
    details = failure.details() or ""
    # Decide, Reward or OnMessage: whichever came first after the kill; the words of unary
    assert re.match(
        f"trial {re.escape(trial_id)} ended: agent actor 1 \\(class 'player'\\) at "
        f"{re.escape(where)}: \\w+ failed: UNAVAILABLE: the port closed the "
        "connection",
        details,
    ), details
    # the others were told: the environment's session ended (its stream closed)
    wait_until(lambda: project.env.session_count == 0, TIMEOUT, "the environment ended")
    with pytest.raises(grpc.RpcError) as later:
        stub.Action(
            orchestrator_pb2.TrialActionRequest(trial_id=trial_id, actor_id=0), timeout=TIMEOUT
        )
    assert later.value.code() is grpc.StatusCode.NOT_FOUND  # a failed trial, as on unary
    assert later.value.details() == details.replace(" ended: ", " failed: ", 1)


@pytest.mark.parametrize("transport", ["stream", "unary"])
def test_an_agent_that_hangs_fails_the_trial_alike_on_both_transports(
    project, orchestrator, trial_stub, start_server, transport
):
    answer = threading.Event()  # its decide returns once the test is done

    class HangingPlayer(project.services.PlayerAgent):  # type: ignore[name-defined,misc]
        def decide(self, observation: Any) -> Any:
            answer.wait(TIMEOUT)
            return super().decide(observation)

    hanging = start_server(HangingPlayer)
    params = project.params(
        actors=[("player", "human"), ("player", endpoint(hanging)), ("watcher", "")]
    )
    stub = trial_stub(orchestrator(params, transport=transport, response_timeout=0.5))
    try:
        trial_id = start_trial(stub).trial_id
        with pytest.raises(grpc.RpcError) as caught:
            act(stub, trial_id, 0)
        assert caught.value.code() is grpc.StatusCode.ABORTED
        assert caught.value.details() == (
            f"trial {trial_id} ended: agent actor 1 (class 'player') at {endpoint(hanging)}: "
            "Decide failed: DEADLINE_EXCEEDED: Deadline Exceeded (no answer within 0.5 s)"
        )
    finally:
        answer.set()
    # its session is ended: by End on unary, by the stream broken off on a stream
    wait_until(lambda: hanging.session_count == 0, TIMEOUT, "the hanging actor ended")
