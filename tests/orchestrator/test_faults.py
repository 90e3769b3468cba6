"""Faults and bad input at the orchestrator and the SDK services: each is answered with a
status naming what is wrong, and none is left to grow or to log errors that are not."""

from __future__ import annotations

import gc
import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import grpc
import pytest

import cogment
from cogment.api import orchestrator_pb2
from tests.conftest import endpoint
from tests.orchestrator.conftest import TIMEOUT, start_trial


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
