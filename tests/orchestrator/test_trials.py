"""Trials over real gRPC: the test project's SDK services, a raw TrialStub as the client."""

from __future__ import annotations

import importlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from cogment.api import common_pb2, orchestrator_pb2
from tests.conftest import endpoint
from tests.orchestrator.conftest import TIMEOUT, act, start_trial


def chats(reply: orchestrator_pb2.TrialActionReply) -> list[tuple[int, str]]:
    import data_pb2

    out = []
    for message in reply.messages.messages:
        chat = data_pb2.Chat()
        assert message.payload.Unpack(chat)
        out.append((message.sender_id, chat.text))
    return out


def chat_message(receiver: int, text: str) -> common_pb2.Message:
    import data_pb2

    message = common_pb2.Message(receiver_id=receiver, sender_id=42)
    message.payload.Pack(data_pb2.Chat(text=text))
    return message


def count(journal: list[tuple[str, str, Any]], who: str, event: str) -> int:
    return sum(1 for w, e, _ in journal if (w, e) == (who, event))


def test_human_trial_observations_rewards_and_messages(project, orchestrator, trial_stub):
    import data_pb2

    delta: Any = importlib.import_module("delta")  # tests/project/delta.py
    orch = orchestrator(project.params())
    stub = trial_stub(orch)
    started = start_trial(stub, rounds=0)
    trial_id = started.trial_id
    assert started.actor_id == 0
    assert list(started.actor_counts) == [2, 1]
    assert started.observation.tick_id == 0 and started.observation.data.snapshot
    board = data_pb2.Board.FromString(started.observation.data.content)
    assert list(board.cells) == [0, 0, 0, 0]

    stub.SendMessage(
        orchestrator_pb2.TrialMessageRequest(
            trial_id=trial_id, messages=[chat_message(-1, "hi env"), chat_message(1, "hi alice")]
        ),
        timeout=TIMEOUT,
        metadata=[("session_id", "test-session")],
    )
    stub.GiveFeedback(
        orchestrator_pb2.TrialFeedbackRequest(
            trial_id=trial_id,
            feedbacks=[common_pb2.Feedback(actor_id=1, value=10, confidence=2, tick_id=-1)],
        ),
        timeout=TIMEOUT,
    )
    received: list[tuple[int, str]] = []
    boards = [(0, [0, 0, 0, 0])]
    n_ticks = 30
    for t in range(n_ticks):
        previous = board
        reply = act(stub, trial_id, 0, cell=t)
        observation = reply.observation
        assert observation.tick_id == t + 1
        assert not reply.trial_is_over
        # players get deltas, and the whole Board every third tick
        assert observation.data.snapshot == ((t + 1) % 3 == 0)
        if observation.data.snapshot:
            board = data_pb2.Board.FromString(observation.data.content)
        else:
            board = delta.apply_board_delta(
                previous, data_pb2.BoardDelta.FromString(observation.data.content)
            )
        assert board.turn == t + 1
        boards.append((board.turn, list(board.cells)))
        # reward of tick t: the watcher's feedback (sum of the cells it saw, confidence 0.5)
        # plus the environment's (the moved cell's value, confidence 1) when actor 0 moved
        feedbacks = [(float(sum(previous.cells)), 0.5)]
        if t % 2 == 0:
            feedbacks.append((float(board.cells[t % 4]), 1.0))
        value = sum(v * c for v, c in feedbacks) / sum(c for _, c in feedbacks)
        assert reply.reward.value == pytest.approx(value), t
        assert reply.reward.confidence == pytest.approx(sum(c for _, c in feedbacks))
        assert {f.tick_id for f in reply.reward.feedbacks} == {t}
        received += chats(reply)
        assert (2, f"turn {t}") in chats(reply)

    assert (-1, "env got: hi env") in received  # the env saw sender 0 and answered it
    stub.End(orchestrator_pb2.TrialEndRequest(trial_id=trial_id), timeout=TIMEOUT)

    journal = project.services.JOURNAL.events(trial_id)
    # the agent saw the same boards the client rebuilt, and its messages
    decided = [d for w, e, d in journal if (w, e) == ("player1", "decide")]
    assert decided[:n_ticks] == boards[:n_ticks]
    on_message = [d for w, e, d in journal if (w, e) == ("player1", "on_message")]
    assert [0, "hi alice"] in [list(m) for batch in on_message for m in batch]
    env_inbox = [m for w, e, d in journal if (w, e) == ("env", "on_message") for m in d]
    assert (0, "hi env") in env_inbox
    assert (1, "hello from alice") in env_inbox
    # alice's reward of tick 0: the client's feedback (10, confidence 2) and the watcher's
    rewards = [d for w, e, d in journal if (w, e) == ("player1", "reward")]
    assert rewards[0] == pytest.approx(((10 * 2 + 0 * 0.5) / 2.5, 2.5))
    # one per tick (the last may have been cut short by End)
    assert n_ticks - 1 <= len(rewards) <= n_ticks
    for who in ("env", "player1", "watcher2"):
        assert count(journal, who, "end") == 1


def test_max_steps_ends_the_trial(project, orchestrator, trial_stub):
    orch = orchestrator(project.params(max_steps=4))
    stub = trial_stub(orch)
    started = start_trial(stub)
    replies = [act(stub, started.trial_id, 0) for _ in range(4)]
    assert [r.trial_is_over for r in replies] == [False, False, False, True]
    assert replies[-1].observation.tick_id == 4
    with pytest.raises(grpc.RpcError) as caught:
        act(stub, started.trial_id, 0)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == f"trial {started.trial_id} has ended: max_steps (4) reached"
    journal = project.services.JOURNAL.events(started.trial_id)
    assert count(journal, "env", "update") == 4
    for who in ("env", "player1", "watcher2"):
        assert count(journal, who, "end") == 1


def test_the_environment_ends_the_trial(project, orchestrator, trial_stub):
    orch = orchestrator(project.params(rounds=3))
    stub = trial_stub(orch)
    started = start_trial(stub)  # no config: the default rounds=3 applies
    replies = [act(stub, started.trial_id, 0) for _ in range(3)]
    assert [r.trial_is_over for r in replies] == [False, False, True]
    with pytest.raises(grpc.RpcError) as caught:
        stub.Heartbeat(orchestrator_pb2.TrialHeartbeatRequest(trial_id=started.trial_id))
    assert "the environment ended the trial" in (caught.value.details() or "")


def test_client_end_and_unknown_trials(project, orchestrator, trial_stub):
    orch = orchestrator(project.params())
    stub = trial_stub(orch)
    started = start_trial(stub)
    act(stub, started.trial_id, 0)
    stub.End(orchestrator_pb2.TrialEndRequest(trial_id=started.trial_id), timeout=TIMEOUT)
    journal = project.services.JOURNAL.events(started.trial_id)
    for who in ("env", "player1", "watcher2"):
        assert count(journal, who, "end") == 1
    for call in (
        lambda: stub.End(orchestrator_pb2.TrialEndRequest(trial_id=started.trial_id)),
        lambda: stub.Heartbeat(orchestrator_pb2.TrialHeartbeatRequest(trial_id=started.trial_id)),
        lambda: act(stub, started.trial_id, 0),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert caught.value.details() == f"trial {started.trial_id} has ended: ended by a client"
    with pytest.raises(grpc.RpcError) as caught:
        stub.Join(orchestrator_pb2.TrialJoinRequest(trial_id="nope", actor_id=0), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "trial nope not found"


def test_agent_only_trial_and_a_watcher(project, orchestrator, trial_stub):
    orch = orchestrator(project.params(actors=[("player", ""), ("watcher", "")], max_steps=20))
    stub = trial_stub(orch)
    started = start_trial(stub)
    assert started.actor_id == -1
    assert not started.HasField("observation")
    watch = stub.ActionStream(
        iter([orchestrator_pb2.TrialActionRequest(trial_id=started.trial_id, actor_id=-1)]),
        timeout=TIMEOUT,
    )
    replies = list(watch)
    assert len(replies) == 1 and replies[0].trial_is_over
    journal = project.services.JOURNAL.events(started.trial_id)
    assert count(journal, "env", "update") == 20
    assert count(journal, "player0", "reward") == 20  # the watcher's feedback every tick
    assert count(journal, "env", "end") == 1


def requests(q: queue.Queue) -> Iterator[orchestrator_pb2.TrialActionRequest]:
    while True:
        item = q.get(timeout=TIMEOUT)
        if item is None:
            return
        yield item


def test_action_stream(project, orchestrator, trial_stub):
    import data_pb2

    orch = orchestrator(project.params(max_steps=5))
    stub = trial_stub(orch)
    started = start_trial(stub)
    q: queue.Queue = queue.Queue()
    replies = stub.ActionStream(requests(q), timeout=TIMEOUT)
    ticks = []
    for t in range(5):
        request = orchestrator_pb2.TrialActionRequest(trial_id=started.trial_id, actor_id=0)
        request.action.content = data_pb2.Move(cell=t).SerializeToString()
        q.put(request)
        reply = next(replies)
        ticks.append((reply.observation.tick_id, reply.trial_is_over))
    q.put(None)
    assert ticks == [(1, False), (2, False), (3, False), (4, False), (5, True)]
    assert list(replies) == []  # the orchestrator closed the stream


def test_client_errors(project, orchestrator, trial_stub):
    orch = orchestrator(
        project.params(actors=[("player", "human"), ("player", "human"), ("watcher", "")])
    )
    stub = trial_stub(orch)
    started = start_trial(stub)
    trial_id = started.trial_id

    def status_of(call: Any) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        return caught.value.code(), caught.value.details() or ""

    join = stub.Join
    assert status_of(lambda: act(stub, trial_id, 7)) == (
        grpc.StatusCode.NOT_FOUND,
        f"trial {trial_id}: no actor 7",
    )
    code, message = status_of(lambda: act(stub, trial_id, 2))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not a human slot" in message
    code, message = status_of(lambda: act(stub, trial_id, 1))  # not joined yet
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, message = status_of(
        lambda: join(
            orchestrator_pb2.TrialJoinRequest(trial_id=trial_id, actor_id=2), timeout=TIMEOUT
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not a human slot" in message
    code, message = status_of(
        lambda: join(
            orchestrator_pb2.TrialJoinRequest(trial_id=trial_id, actor_id=0), timeout=TIMEOUT
        )
    )
    assert (code, message) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        f"trial {trial_id}: actor 0 is already joined",
    )
    bad = orchestrator_pb2.TrialActionRequest(trial_id=trial_id, actor_id=0)
    bad.action.content = b"\x08\x80"  # a truncated varint
    code, message = status_of(lambda: stub.Action(bad, timeout=TIMEOUT))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "testproject.Move" in message and "'player'" in message

    # actor 0's action waits for actor 1's: a second one is refused
    pending = stub.Action.future(
        orchestrator_pb2.TrialActionRequest(trial_id=trial_id, actor_id=0), timeout=TIMEOUT
    )
    code, message = grpc.StatusCode.OK, ""
    for _ in range(100):  # until the first one is filed
        try:
            act(stub, trial_id, 0)
        except grpc.RpcError as error:
            code, message = error.code(), error.details() or ""
            break
    assert (code, message) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        f"trial {trial_id}: actor 0 already has an action pending",
    )
    assert not pending.done()
    stub.End(orchestrator_pb2.TrialEndRequest(trial_id=trial_id), timeout=TIMEOUT)
    reply = pending.result(timeout=TIMEOUT)
    assert reply.trial_is_over and not reply.HasField("observation")


def test_a_second_human_joins(project, orchestrator, trial_stub):
    import data_pb2

    orch = orchestrator(
        project.params(
            actors=[("player", "human"), ("player", "human"), ("watcher", "")], max_steps=3
        )
    )
    stub = trial_stub(orch)
    first = start_trial(stub)
    joined = stub.Join(
        orchestrator_pb2.TrialJoinRequest(trial_id=first.trial_id, actor_id=1), timeout=TIMEOUT
    )
    assert joined.trial_id == first.trial_id and joined.actor_id == 1
    assert list(joined.actor_counts) == [2, 1]
    assert joined.observation.tick_id == 0 and joined.observation.data.snapshot
    assert data_pb2.Board.FromString(joined.observation.data.content).cells == [0, 0, 0, 0]
    for t in range(3):
        other = stub.Action.future(
            orchestrator_pb2.TrialActionRequest(
                trial_id=first.trial_id,
                actor_id=1,
                action=common_pb2.Action(content=data_pb2.Move(cell=1).SerializeToString()),
            ),
            timeout=TIMEOUT,
        )
        mine = act(stub, first.trial_id, 0, cell=0)
        theirs = other.result(timeout=TIMEOUT)
        assert mine.observation.tick_id == theirs.observation.tick_id == t + 1
        assert mine.trial_is_over == theirs.trial_is_over == (t == 2)
    journal = project.services.JOURNAL.events(first.trial_id)
    updates = [d for w, e, d in journal if (w, e) == ("env", "update")]
    assert updates[0][1][:2] == ["", "cell: 1"]  # both humans' actions, by actor id


def test_pre_hook_rewrites_the_parameters(project, orchestrator, trial_stub, start_server):
    import data_pb2

    hooks = start_server(
        project.services.Hooks.pointing_to(
            environment=endpoint(project.env),
            agents={"player": endpoint(project.player), "watcher": endpoint(project.watcher)},
        )
    )
    # the project's defaults point at fixed ports; the hook points them at ours
    orch = orchestrator(None, pre_hooks=[endpoint(hooks)])
    stub = trial_stub(orch)
    request = orchestrator_pb2.TrialStartRequest(user_id="ann")
    request.config.content = data_pb2.TrialConfig(rounds=2, env_size=6).SerializeToString()
    started = stub.Start(request, timeout=TIMEOUT)
    assert len(data_pb2.Board.FromString(started.observation.data.content).cells) == 6
    assert [act(stub, started.trial_id, 0).trial_is_over for _ in range(2)] == [False, True]
    journal = project.services.JOURNAL.events(started.trial_id)
    assert ("hooks", "pre_trial", "ann") in journal
    assert ("env", "start", (6, "hooked:ann")) in journal


def test_invalid_hook_result_fails_the_start(project, orchestrator, trial_stub, start_server):
    class BadHooks(project.services.Hooks):  # type: ignore[name-defined,misc]
        def pre_trial(self, trial_id: str, user_id: str, trial_params: Any) -> Any:
            trial_params.environment.endpoint = "somewhere"
            return trial_params

    hooks = start_server(BadHooks)
    orch = orchestrator(None, pre_hooks=[endpoint(hooks)])
    stub = trial_stub(orch)
    with pytest.raises(grpc.RpcError) as caught:
        start_trial(stub)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert f"pre-trial hook {endpoint(hooks)}" in details
    assert "'somewhere'" in details


def test_twenty_trials_in_parallel(project, orchestrator, trial_stub):
    orch = orchestrator(project.params(max_steps=15))
    errors: list[BaseException] = []
    done: list[str] = []

    def run() -> None:
        try:
            stub = trial_stub(orch)
            started = start_trial(stub, rounds=0)
            for t in range(15):
                reply = act(stub, started.trial_id, 0, cell=t)
                assert reply.observation.tick_id == t + 1
            assert reply.trial_is_over
            done.append(started.trial_id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[0]
    assert len(set(done)) == 20
    for trial_id in done:
        assert count(project.services.JOURNAL.events(trial_id), "env", "end") == 1


def test_trial_params_and_version(project, orchestrator, trial_stub):
    params = project.params(max_steps=7)
    orch = orchestrator(params)
    stub = trial_stub(orch)
    assert (
        stub.GetTrialParams(orchestrator_pb2.GetTrialParamsRequest(), timeout=TIMEOUT).params
        == params
    )
    import cogment

    versions = stub.Version(common_pb2.VersionRequest(), timeout=TIMEOUT).versions
    assert [(v.name, v.version) for v in versions][:2] == [
        ("cogment-api", cogment.API_VERSION),
        ("cogment-py", cogment.__version__),
    ]


def test_a_bad_trial_config_is_refused(project, orchestrator, trial_stub):
    stub = trial_stub(orchestrator(project.params()))
    request = orchestrator_pb2.TrialStartRequest()
    request.config.content = b"\x08"  # a truncated varint
    with pytest.raises(grpc.RpcError) as caught:
        stub.Start(request, timeout=TIMEOUT)  # no session_id metadata: accepted all the same
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "testproject.TrialConfig" in (caught.value.details() or "")
