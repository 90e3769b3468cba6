"""The client when things go wrong: one clean traceback, timeouts, a lost orchestrator,
a tolerant `end()`; and the slot's decoded config."""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any, Callable

import grpc
import pytest

import cogment.client.heartbeat as heartbeat
from cogment.client import Connection
from cogment.client.heartbeat import LOST_AFTER_BEATS, LOST_AFTER_SECONDS, Unreachable
from cogment.errors import CogmentError, CogmentRpcError, TrialError
from tests.client.fake_orchestrator import FakeOrchestrator, FakeServer
from tests.listeners import Ends, settle
from tests.waiting import wait_until

Connect = Callable[..., Connection]
TIMED_OUT = (
    "do_action timed out after 0.3 s; the trial's state is unknown (the action may have been "
    "applied), so this client ended it"
)


def move(conn: Connection, cell: int = 0) -> Any:
    return conn.settings.actor_classes.player.action_space(cell=cell)


@pytest.fixture
def holding() -> Iterator[FakeServer]:
    """A fake whose actions wait until released (or until the trial ends)."""
    served = FakeServer(FakeOrchestrator(hold_actions=True))
    yield served
    served.fake.release.set()
    served.stop()


# ---------------------------------------------------------------------- one traceback


def test_a_translated_error_shows_one_traceback(connect: Connect, fake: FakeOrchestrator) -> None:
    conn = connect()
    trial = conn.start_trial("player")
    fake.fail_next("Action", grpc.StatusCode.INVALID_ARGUMENT, "bad action bytes")
    with pytest.raises(CogmentRpcError) as info:
        trial.do_action(move(conn))
    error = info.value
    assert error.__cause__ is None and error.__suppress_context__
    shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert "_InactiveRpcError" not in shown and "direct cause" not in shown
    assert "INVALID_ARGUMENT: bad action bytes" in shown
    assert isinstance(error.details, str) and "bad action bytes" in error.details  # gRPC's debug


def test_an_unreachable_orchestrator_shows_one_traceback(settings: Any) -> None:
    from tests.e2e.conftest import free_port

    conn = Connection(settings, f"127.0.0.1:{free_port()}", timeout=5)
    with conn, pytest.raises(CogmentRpcError) as info:
        conn.get_trial_params()
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert info.value.__cause__ is None and info.value.__suppress_context__


# ---------------------------------------------------------------------- timeouts


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
def test_a_timed_out_action_ends_the_trial(
    settings: Any, holding: FakeServer, streaming: bool
) -> None:
    fake = holding.fake
    with Connection(settings, holding.endpoint, timeout=0.3, heartbeat_interval=None) as conn:
        trial = conn.start_trial("player")
        if streaming:
            trial.begin_actions_stream()
        ends = Ends()
        trial.set_on_trial_end_event_listener(ends)
        started = time.monotonic()
        with pytest.raises(TrialError) as info:
            trial.do_action(move(conn))
        assert 0.25 < time.monotonic() - started < 5.0
        assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert info.value.message == f"trial {trial.id} ended: {TIMED_OUT}"
        assert trial.is_over and trial.end_reason == TIMED_OUT and trial.tick_id == 0
        assert ends.called.wait(5)
        # ended on the orchestrator too (best effort, in the background)
        wait_until(lambda: "End" in fake.methods(), 5, "the End call reached the fake")
        wait_until(lambda: fake.trials[trial.id].over, 5, "the fake ended the trial")
        with pytest.raises(TrialError, match=re.escape(TIMED_OUT)):
            trial.do_action(move(conn))
        trial.end()  # nothing more to do
        settle(trial)  # the background End call, the stream's reader, the listener: done
        assert fake.methods().count("End") == 1 and len(ends.calls) == 1
        assert conn.trials == []


def test_without_a_timeout_an_action_waits(settings: Any, holding: FakeServer) -> None:
    with Connection(settings, holding.endpoint, heartbeat_interval=None) as conn:
        trial = conn.start_trial("player")
        results: list[Any] = []
        worker = threading.Thread(target=lambda: results.append(trial.do_action(move(conn))))
        worker.start()
        wait_until(lambda: "Action" in holding.fake.methods(), 5, "the action reached the fake")
        # no deadline on the call: nothing but a reply (or the trial's end) ends the wait
        assert [left for name, left in holding.fake.deadlines if name == "Action"] == [None]
        assert not results and not trial.is_over
        holding.fake.release.set()
        worker.join(5)
        assert results and trial.tick_id == 1


# ---------------------------------------------------------------------- end() is cleanup


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        (grpc.StatusCode.NOT_FOUND, "trial x has ended: orchestrator shutdown"),
        (grpc.StatusCode.NOT_FOUND, "trial x not found"),
        (grpc.StatusCode.UNAVAILABLE, "Connection refused"),
    ],
)
def test_end_tolerates_what_means_the_trial_is_gone(
    connect: Connect,
    fake: FakeOrchestrator,
    caplog: pytest.LogCaptureFixture,
    code: grpc.StatusCode,
    details: str,
) -> None:
    conn = connect(heartbeat_interval=None)
    trial = conn.start_trial("player")
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    fake.fail_next("End", code, details)
    with caplog.at_level(logging.DEBUG, logger="cogment.client.trial"):
        trial.end()
    assert fake.methods() == ["Start", "End"]
    assert trial.is_over and trial.end_reason == "ended by this client" and trial.error is None
    assert details in caplog.text
    settle(trial)
    assert not ends.calls


def test_end_raises_other_refusals(connect: Connect, fake: FakeOrchestrator) -> None:
    conn = connect(heartbeat_interval=None)
    trial = conn.start_trial("player")
    fake.fail_next("End", grpc.StatusCode.INTERNAL, "the orchestrator broke")
    with pytest.raises(CogmentRpcError, match="INTERNAL: the orchestrator broke"):
        trial.end()
    assert trial.is_over  # for this client, nonetheless


def test_end_has_a_deadline_without_a_connection_timeout(settings: Any) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.fake = FakeOrchestrator()
            self.deadlines: dict[str, Any] = {}

        def Start(self, request: Any, timeout: Any = None, metadata: Any = None) -> Any:
            self.deadlines["Start"] = timeout
            return self.fake.Start(request, _Context())

        def End(self, request: Any, timeout: Any = None, metadata: Any = None) -> Any:
            self.deadlines["End"] = timeout
            return self.fake.End(request, _Context())

        def __getattr__(self, name: str) -> Any:
            raise AttributeError(name)

        Action = Start

    class _Context:
        def invocation_metadata(self) -> tuple[()]:
            return ()

        def time_remaining(self) -> None:
            return None

    service = Recorder()
    with Connection(settings, service, heartbeat_interval=None) as conn:
        conn.start_trial("player").end()
    assert service.deadlines == {"Start": None, "End": 30.0}


# ---------------------------------------------------------------------- a lost orchestrator


@pytest.mark.parametrize("method", ["Action", "GiveFeedback"])
def test_a_call_that_finds_the_orchestrator_unreachable_ends_the_trial(
    connect: Connect, fake: FakeOrchestrator, server: FakeServer, method: str
) -> None:
    conn = connect(heartbeat_interval=None)
    trial = conn.start_trial("player")
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    trial.actors.all[1].add_feedback(value=1, confidence=1)
    fake.fail_next(method, grpc.StatusCode.UNAVAILABLE, "Connection refused")
    reason = f"lost the orchestrator at {server.endpoint}: Connection refused"
    with pytest.raises(TrialError) as info:
        trial.do_action(move(conn))
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert info.value.message == f"trial {trial.id} ended: {reason}"
    assert trial.is_over and trial.end_reason == reason and trial.error is not None
    assert ends.called.wait(5)
    with pytest.raises(TrialError, match=re.escape(reason)):
        trial.do_action(move(conn))
    assert fake.methods()[-1] == method and conn.trials == []


def test_when_heartbeats_say_the_orchestrator_is_lost() -> None:
    assert (LOST_AFTER_BEATS, LOST_AFTER_SECONDS) == (3, 5.0)
    beats = Unreachable()
    assert not beats.failed(100.0)
    assert not beats.failed(101.0)
    assert not beats.failed(104.0)  # 3 in a row, over 4 s only
    assert beats.failed(105.0)  # 4 in a row, over 5 s
    beats.reached()
    assert not beats.failed(200.0)
    assert not beats.failed(206.0)  # over 6 s, but 2 only
    assert beats.failed(206.5)
    assert beats.describe(206.5) == " (3 heartbeats failed in a row over 6.5 s)"


def test_one_failed_heartbeat_does_not_end_a_trial(
    connect: Connect, fake: FakeOrchestrator
) -> None:
    conn = connect(heartbeat_interval=0.02)
    trial = conn.start_trial("player")
    wait_until(lambda: "Heartbeat" in fake.methods(), 5, "a heartbeat reached the fake")
    fake.fail_next("Heartbeat", grpc.StatusCode.UNAVAILABLE, "a blip")
    wait_until(lambda: "Heartbeat" not in fake.failures, 5, "a heartbeat failed")
    beats = fake.methods().count("Heartbeat")
    wait_until(
        lambda: fake.methods().count("Heartbeat") >= beats + 3, 5, "3 more heartbeats arrived"
    )
    assert not trial.is_over
    assert trial.do_action(move(conn)).observation.turn == 1


def test_an_idle_trial_learns_that_its_orchestrator_is_gone(
    connect: Connect, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heartbeat, "LOST_AFTER_SECONDS", 0.3)  # tests/e2e waits the real one
    conn = connect(heartbeat_interval=0.05)
    trial = conn.start_trial("player")
    idle = conn.start_trial("player")
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    wait_until(
        lambda: server.fake.methods().count("Heartbeat") >= 2, 5, "2 heartbeats reached the fake"
    )
    server.stop()
    assert ends.called.wait(10)
    assert trial.is_over and isinstance(trial.error, TrialError)
    assert trial.error.code is grpc.StatusCode.UNAVAILABLE
    assert trial.end_reason.startswith(f"lost the orchestrator at {server.endpoint}: ")
    assert "heartbeats failed in a row over" in trial.end_reason
    with pytest.raises(TrialError, match="lost the orchestrator at"):
        trial.do_action(move(conn))
    assert idle.wait_for_end(10) and isinstance(idle.error, TrialError)
    assert conn.trials == [] and len(ends.calls) == 1


# ---------------------------------------------------------------------- the slot's config


def test_the_slot_config_is_decoded(connect: Connect, fake: FakeOrchestrator) -> None:
    from data_pb2 import PlayerConfig

    conn = connect(heartbeat_interval=None)
    assert conn.start_trial("player").config is None  # no config in the reply
    fake.human_config = PlayerConfig(name="bob").SerializeToString()
    started = conn.start_trial("player")
    assert started.config == PlayerConfig(name="bob")
    fake.human_config = PlayerConfig(name="carol").SerializeToString()
    assert connect().join_trial("player", started.id, 1).config == PlayerConfig(name="carol")
    fake.human_config = b"\xff\xff"
    with pytest.raises(CogmentError, match=r"config of actor 0: cannot parse 2 bytes as "):
        conn.start_trial("player")
    assert fake.methods()[-2:] == ["Start", "End"]  # the trial it could not use is ended
