"""Faults and bad input at the orchestrator and the SDK services: each is answered with a
status naming what is wrong, and none is left to grow or to log errors that are not."""

from __future__ import annotations

import functools
import gc
import logging
import math
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import grpc
import pytest

import cogment
from cogment.api import (
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    environment_pb2,
    environment_pb2_grpc,
    orchestrator_pb2,
)
from tests.conftest import endpoint
from tests.orchestrator.conftest import TIMEOUT, act, start_trial


def _requests(q: queue.Queue) -> Iterator[Any]:
    while True:
        item = q.get()
        if item is None:
            return
        yield item


def test_a_client_leaving_an_idle_action_stream_is_not_an_error(
    project, orchestrator, trial_stub, caplog
):
    import data_pb2

    caplog.set_level(logging.ERROR)
    orch = orchestrator(project.params())
    stub = trial_stub(orch)
    for _ in range(10):
        started = start_trial(stub)
        q: queue.Queue = queue.Queue()
        replies = stub.ActionStream(_requests(q), timeout=TIMEOUT)
        request = orchestrator_pb2.TrialActionRequest(trial_id=started.trial_id, actor_id=0)
        request.action.content = data_pb2.Move(cell=0).SerializeToString()
        q.put(request)
        assert next(replies).observation.tick_id == 1
        replies.cancel()  # the client goes away while the stream is idle
        stub.End(orchestrator_pb2.TrialEndRequest(trial_id=started.trial_id), timeout=TIMEOUT)
    orch.stop()
    gc.collect()  # a task whose exception nobody retrieved is reported when collected
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


class _LogWatch(logging.Handler):
    """Sets `seen` once a record of the "cogment" logger contains `text`."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if self.text in message:
            self.seen.set()


@pytest.fixture
def cogment_log() -> Iterator[Callable[[str], _LogWatch]]:
    logger = logging.getLogger("cogment")
    watches: list[_LogWatch] = []
    level = logger.level

    def watch(text: str) -> _LogWatch:
        handler = _LogWatch(text)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        watches.append(handler)
        return handler

    yield watch
    for handler in watches:
        logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_slow_pre_trial_hook_does_not_hold_other_starts(
    project, orchestrator, trial_stub, start_server
):
    entered, release = threading.Event(), threading.Event()

    class SlowForSome(cogment.TrialHooks):
        def pre_trial(self, trial_id: str, user_id: str, trial_params: Any) -> Any:
            if user_id == "slow":
                entered.set()
                release.wait(TIMEOUT)
            return trial_params

    hooks = start_server(SlowForSome)
    orch = orchestrator(project.params(), pre_hooks=[endpoint(hooks)], response_timeout=5.0)
    stub = trial_stub(orch)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(start_trial, stub, None, "slow")
        assert entered.wait(TIMEOUT)
        others = [start_trial(stub, user_id=f"user{i}") for i in range(4)]  # while it waits
        assert len({o.trial_id for o in others}) == 4
        assert not slow.done()
        release.set()
        assert slow.result(TIMEOUT).trial_id


def test_a_hook_call_the_orchestrator_gave_up_on_is_not_run(
    project, orchestrator, trial_stub, start_server, cogment_log
):
    entered, release = threading.Event(), threading.Event()
    called: list[str] = []

    class OneAtATime(cogment.TrialHooks):
        def pre_trial(self, trial_id: str, user_id: str, trial_params: Any) -> Any:
            called.append(user_id)
            if user_id == "slow":
                entered.set()
                release.wait(TIMEOUT)
            return trial_params

    discarded = cogment_log("its result is discarded")
    hooks = start_server(OneAtATime, max_workers=1)  # the second call waits for a thread
    orch = orchestrator(project.params(), pre_hooks=[endpoint(hooks)], response_timeout=1.0)
    stub = trial_stub(orch)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(start_trial, stub, None, "slow")
        assert entered.wait(TIMEOUT)
        with pytest.raises(grpc.RpcError) as queued:
            start_trial(stub, user_id="queued")
        assert queued.value.code() is grpc.StatusCode.ABORTED
        assert "DEADLINE_EXCEEDED" in (queued.value.details() or "")
        with pytest.raises(grpc.RpcError):
            slow.result(TIMEOUT)
    release.set()
    assert discarded.seen.wait(TIMEOUT), discarded.messages
    # the next call runs on the one thread: had the queued one been kept, it would be first
    assert start_trial(stub, user_id="after").trial_id
    assert called == ["slow", "after"]


def _refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details() or ""


def test_bad_feedback_and_messages_from_a_client_are_refused(project, orchestrator, trial_stub):
    import data_pb2

    stub = trial_stub(orchestrator(project.params()))
    trial_id = start_trial(stub).trial_id
    good = common_pb2.Feedback(actor_id=0, tick_id=-1, value=1.0, confidence=1.0)
    bad: dict[str, dict[str, Any]] = {
        "actor_id: no actor 2147483647 (actor ids are 0..2)": dict(actor_id=2**31 - 1),
        "value: nan is not a finite number": dict(value=math.nan),
        "confidence: inf is not a finite number >= 0": dict(confidence=math.inf),
        "confidence: -1.0 is not a finite number >= 0": dict(confidence=-1.0),
        "tick_id: -2 is neither a tick nor -1 (the current tick)": dict(tick_id=-2),
    }
    for expected, change in bad.items():
        feedback = common_pb2.Feedback(actor_id=0, tick_id=-1, value=1.0, confidence=1.0)
        for name, value in change.items():
            setattr(feedback, name, value)
        request = orchestrator_pb2.TrialFeedbackRequest(
            trial_id=trial_id, feedbacks=[good, feedback]
        )
        code, details = _refused(functools.partial(stub.GiveFeedback, request, timeout=TIMEOUT))
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert details == f"trial {trial_id}: feedbacks[1].{expected}"
    message = common_pb2.Message(receiver_id=12345)
    message.payload.Pack(data_pb2.Chat(text="to nobody"))
    sent = orchestrator_pb2.TrialMessageRequest(trial_id=trial_id, messages=[message])
    code, details = _refused(functools.partial(stub.SendMessage, sent, timeout=TIMEOUT))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == (
        f"trial {trial_id}: messages[0].receiver_id: no receiver 12345 "
        "(actor ids are 0..2, -1 is the environment)"
    )
    # nothing of a refused batch was filed: the human (actor 0) got no feedback for tick 0
    # but the watcher's (confidence 0.5); the env only rewards the mover, actor 0 at tick 0
    reply = act(stub, trial_id, 0)
    assert sorted((f.value, f.confidence) for f in reply.reward.feedbacks) == [
        (0.0, 0.5),
        (1.0, 1.0),
    ]


def test_bytes_that_are_not_a_request_are_invalid_argument(
    project, orchestrator, grpc_channel, cogment_log
):
    errors = cogment_log("internal error")
    orch = orchestrator(project.params())
    garbage = b"\xff\xff\xff\xff"
    for port, method, type_name in (
        (orch.port, "/cogment.Trial/Start", "cogment.TrialStartRequest"),
        (orch.port, "/cogment.Trial/GiveFeedback", "cogment.TrialFeedbackRequest"),
        (project.player.port, "/cogment.Agent/Decide", "cogment.AgentDecideRequest"),
        (project.env.port, "/cogment.Environment/Update", "cogment.EnvUpdateRequest"),
    ):
        call = grpc_channel(port).unary_unary(method)
        code, details = _refused(functools.partial(call, garbage, timeout=TIMEOUT))
        assert code is grpc.StatusCode.INVALID_ARGUMENT, (method, code, details)
        assert details.startswith(f"the request is not a valid {type_name} (4 bytes: "), details
    stream = grpc_channel(orch.port).stream_stream("/cogment.Trial/ActionStream")
    code, details = _refused(lambda: list(stream(iter([garbage]), timeout=TIMEOUT)))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "cogment.TrialActionRequest" in details
    assert not errors.seen.is_set(), errors.messages


def test_actor_counts_a_service_cannot_serve_are_refused(project, grpc_channel):
    agent = agent_pb2_grpc.AgentStub(grpc_channel(project.player))
    env = environment_pb2_grpc.EnvironmentStub(grpc_channel(project.env))
    for counts, expected in (
        ([-1, 2], "actor_counts [-1, 2]: a count is negative"),
        (
            [1_000_000, 0],
            "actor_counts [1000000, 0]: 1000000 actors, more than a trial may have (10000)",
        ),
    ):
        request = agent_pb2.AgentStartRequest(trial_id="t", actor_id=0, actor_counts=counts)
        code, details = _refused(functools.partial(agent.Start, request, timeout=TIMEOUT))
        assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, f"trial t: {expected}")
        started = environment_pb2.EnvStartRequest(trial_id="t", actor_counts=counts)
        code, details = _refused(functools.partial(env.Start, started, timeout=TIMEOUT))
        assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, f"trial t: {expected}")


def test_requests_larger_than_the_limit_are_resource_exhausted(
    project, orchestrator, trial_stub, start_server, grpc_channel
):
    import data_pb2

    orch = orchestrator(project.params(), max_message_mb=1)
    stub = trial_stub(orch)
    request = orchestrator_pb2.TrialStartRequest()
    request.config.content = b"x" * (2 * 1024 * 1024)
    code, details = _refused(lambda: stub.Start(request, timeout=TIMEOUT))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(1024 * 1024) in details  # grpc names the limit
    assert start_trial(stub).trial_id  # and the orchestrator is fine

    small = start_server(project.services.PlayerAgent, max_message_mb=1)
    agent = agent_pb2_grpc.AgentStub(grpc_channel(small))
    decide = agent_pb2.AgentDecideRequest(trial_id="t", actor_id=1)
    decide.observation.data.content = data_pb2.Board(cells=[1] * (1024 * 1024)).SerializeToString()
    code, _ = _refused(lambda: agent.Decide(decide, timeout=TIMEOUT))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    # the default (64 MiB) lets a 17 MiB observation through to a service
    agent = agent_pb2_grpc.AgentStub(grpc_channel(project.player))
    decide.observation.data.content = b"\x08\x01" * (17 * 512 * 1024)
    code, details = _refused(lambda: agent.Decide(decide, timeout=TIMEOUT))
    assert code is grpc.StatusCode.NOT_FOUND  # it got in: there is no such actor


def test_a_join_for_another_class_is_refused_before_the_slot_is_taken(
    project, orchestrator, trial_stub
):
    actors = [("player", "human"), ("player", "human"), ("watcher", "")]
    stub = trial_stub(orchestrator(project.params(actors=actors)))
    trial_id = start_trial(stub).trial_id
    join = orchestrator_pb2.TrialJoinRequest(trial_id=trial_id, actor_id=1)
    wrong = [("actor_class", "watcher")]
    code, details = _refused(functools.partial(stub.Join, join, timeout=TIMEOUT, metadata=wrong))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details == f"trial {trial_id}: actor 1 is of class 'player', not 'watcher'"
    joined = stub.Join(join, timeout=TIMEOUT, metadata=[("actor_class", "player")])
    assert joined.actor_id == 1  # the slot was still free
