"""ClientTrial against the fake orchestrator: acting, deltas, feedback, messages, ending."""

from __future__ import annotations

import threading
from typing import Any, Callable

import grpc
import pytest

import cogment
from cogment.api import agent_pb2
from cogment.client import ActionResult, ClientTrial, Connection
from cogment.errors import CogmentError, CogmentRpcError, TrialEndedError, TrialError
from tests.client.fake_orchestrator import FakeOrchestrator, FakeServer
from tests.listeners import END_LISTENER_THREAD, Ends, settle
from tests.waiting import wait_until

Connect = Callable[..., Connection]


def move(conn: Connection, cell: int = 0) -> Any:
    return conn.settings.actor_classes.player.action_space(cell=cell)


def heartbeat_rounds(fake: FakeOrchestrator, idle: ClientTrial, rounds: int) -> None:
    """Waits until `rounds` more heartbeats of `idle` (an idle trial) reach the fake.

    Its connection's one heartbeat thread sends every trial's heartbeats in turn, one call at
    a time: after one round, a heartbeat of another trial that was under way has landed;
    after a few, every other idle trial of the connection was due for one (same interval).
    """
    target = fake.heartbeats(idle.id) + rounds
    wait_until(
        lambda: fake.heartbeats(idle.id) >= target,
        5,
        f"{rounds} more heartbeats of trial {idle.id} reached the fake",
    )


def test_start_gives_the_slot_and_tick_0(connect: Connect) -> None:
    conn = connect()
    trial = conn.start_trial(conn.settings.actor_classes.player)
    assert trial.id.startswith("fake-")
    assert (trial.actor_id, trial.actor_class, trial.tick_id) == (
        0,
        conn.settings.actor_classes.player,
        0,
    )
    assert trial.actor_counts == [2, 1]
    assert list(trial.observation.cells) == [0, 0, 0, 0]
    assert [a.actor_id for a in trial.actors.all] == [0, 1, 2]
    assert [(a.actor_class.id, a.id_in_class) for a in trial.actors.all] == [
        ("player", 0),
        ("player", 1),
        ("watcher", 0),
    ]
    assert trial.actors.watcher[0] is trial.actors.all[2] is trial.actors[2]
    assert all(type(a) is cogment.Actor for a in trial.actors) and len(trial.actors) == 3
    assert trial.actors.get(1) is trial.actors.player[1] and trial.actors.get(3) is None
    with pytest.raises(AttributeError, match="no actor class named 'driver'"):
        _ = trial.actors.driver
    assert trial.latest_reward == agent_pb2.Reward()
    assert not trial.is_over and trial.end_reason == "" and trial.error is None
    assert conn.trials == [trial]


def test_do_action_applies_deltas_and_unpacks_as_a_tuple(connect: Connect) -> None:
    conn = connect()
    trial = conn.start_trial("player")
    for tick, cell in enumerate([2, 0, 3], start=1):
        result = trial.do_action(move(conn, cell))
        assert isinstance(result, ActionResult)
        obs, reward, messages = result
        assert obs is trial.observation and result.observation is obs
        assert obs.cells[cell] == tick and obs.turn == tick
        assert trial.tick_id == tick
        assert reward == agent_pb2.Reward() and isinstance(messages, agent_pb2.MessageCollection)
    assert list(trial.observation.cells) == [2, 0, 1, 3]


def test_an_action_of_the_wrong_type_names_both_types(connect: Connect) -> None:
    conn = connect()
    trial = conn.start_trial("player")
    with pytest.raises(TypeError, match=r"acts with testproject\.Move, got testproject\.Nothing"):
        trial.do_action(conn.settings.actor_classes.watcher.action_space())


def test_feedback_goes_before_the_action_and_comes_back_as_the_reward(
    connect: Connect, fake: FakeOrchestrator
) -> None:
    conn = connect()
    trial = conn.start_trial("player")
    trial.do_action(move(conn))  # now at tick 1
    me = trial.actors.player[0]
    me.add_feedback(value=1.0, confidence=1.0)
    me.add_feedback(value=4.0, confidence=3.0, user_data=move(conn, 3))
    me.add_feedback(value=100.0, confidence=0.0)
    trial.actors.watcher[0].add_feedback(value=-1, confidence=1, tick_id=0)
    _, reward, _ = trial.do_action(move(conn))
    assert fake.methods()[-2:] == ["GiveFeedback", "Action"]
    sent = fake.calls[-2][1].feedbacks
    assert [(f.actor_id, f.agent_id, f.tick_id) for f in sent] == [(0, 0, 1)] * 3 + [(2, 0, 0)]
    assert move(conn).FromString(sent[1].content).cell == 3
    assert reward.value == pytest.approx((1.0 * 1 + 4.0 * 3) / 4)
    assert reward.confidence == pytest.approx(4.0)
    assert len(reward.feedbacks) == 3
    assert trial.latest_reward == reward
    with pytest.raises(ValueError, match="confidence"):
        me.add_feedback(value=1, confidence=-1)


def test_messages_are_queued_then_sent_before_the_action(
    connect: Connect, fake: FakeOrchestrator
) -> None:
    conn = connect()
    trial = conn.start_trial("player")
    chat = move(conn, 7)
    trial.actors.player[0].send_message(chat)
    trial.multi_cast(chat, [-1, 1])
    assert "SendMessage" not in fake.methods()
    _, _, messages = trial.do_action(move(conn))
    assert fake.methods()[-2:] == ["SendMessage", "Action"]
    sent = fake.calls[-2][1].messages
    assert [(m.sender_id, m.receiver_id) for m in sent] == [(0, 0), (0, -1), (0, 1)]
    assert [(m.sender_id, m.receiver_id) for m in messages.messages] == [(0, 0)]
    assert messages.messages[0].payload.Unpack(chat) and chat.cell == 7
    assert trial.latest_messages == messages
    with pytest.raises(ValueError, match="no actor 3"):
        trial.multi_cast(chat, [3])
    with pytest.raises(TypeError, match="protobuf message"):
        trial.actors.all[1].send_message("hello")  # type: ignore[arg-type]


def test_flush_sends_without_an_action(connect: Connect, fake: FakeOrchestrator) -> None:
    conn = connect()
    trial = conn.start_trial("player")
    trial.flush_feedback()
    trial.flush_message()
    assert fake.methods() == ["Start"]  # nothing queued, nothing sent
    trial.actors.all[1].add_feedback(value=1, confidence=1)
    trial.actors.all[1].send_message(move(conn))
    trial.flush_feedback()
    trial.flush_message()
    assert fake.methods() == ["Start", "GiveFeedback", "SendMessage"]


def test_end_is_idempotent_and_does_not_call_the_listener(
    connect: Connect, fake: FakeOrchestrator
) -> None:
    conn = connect(heartbeat_interval=0.02)
    trial = conn.start_trial("player")
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    trial.actors.all[1].add_feedback(value=1, confidence=1)
    trial.end()
    trial.end()
    calls = fake.methods()
    assert [m for m in calls if m != "Heartbeat"] == ["Start", "GiveFeedback", "End"]
    assert trial.is_over and trial.end_reason == "ended by this client"
    with pytest.raises(TrialEndedError, match=f"trial {trial.id} is over"):
        trial.do_action(move(conn))
    with pytest.raises(TrialEndedError):
        trial.actors.all[1].add_feedback(value=1, confidence=1)
    assert conn.trials == []
    idle = conn.start_trial("player")  # its heartbeats show the heartbeat thread going on
    heartbeat_rounds(fake, idle, 1)  # a heartbeat of `trial` decided before the end landed
    beats = fake.heartbeats(trial.id)
    heartbeat_rounds(fake, idle, 3)
    settle(trial)
    assert not ends.calls
    assert fake.heartbeats(trial.id) == beats  # none after the end


def test_heartbeats_keep_an_idle_trial_and_detect_its_end(
    connect: Connect, fake: FakeOrchestrator
) -> None:
    conn = connect(heartbeat_interval=0.05)
    trial = conn.start_trial("player")
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    wait_until(lambda: fake.heartbeats(trial.id) >= 3, 5, "3 heartbeats reached the fake")
    fake.end_remotely(trial.id, "the environment ended the trial")
    assert ends.called.wait(5)
    assert trial.is_over and trial.end_reason == "the environment ended the trial"
    with pytest.raises(TrialEndedError, match="the environment ended the trial"):
        trial.do_action(move(conn))
    idle = conn.start_trial("player")  # its heartbeats show the heartbeat thread going on
    heartbeat_rounds(fake, idle, 1)
    beats = fake.heartbeats(trial.id)
    heartbeat_rounds(fake, idle, 3)
    settle(trial)
    assert len(ends.calls) == 1
    thread_name, _ = ends.calls[0]
    assert thread_name != threading.current_thread().name
    assert thread_name == END_LISTENER_THREAD.format(trial_id=trial.id)  # what settle() joins
    assert fake.heartbeats(trial.id) == beats  # stopped with the trial


def test_no_heartbeat_while_an_action_is_pending(settings: Any, connect: Connect) -> None:
    fake_hold = FakeOrchestrator(hold_actions=True)
    server = FakeServer(fake_hold)
    try:
        conn = Connection(settings, server.endpoint, heartbeat_interval=0.02, timeout=10)
        trial = conn.start_trial("player")
        idle = conn.start_trial("player")  # its heartbeats show the heartbeat thread going on
        wait_until(lambda: fake_hold.heartbeats(trial.id), 5, "a heartbeat reached the fake")
        worker = threading.Thread(target=trial.do_action, args=(move(conn),))
        worker.start()
        wait_until(lambda: "Action" in fake_hold.methods(), 5, "the action reached the fake")
        heartbeat_rounds(fake_hold, idle, 1)  # a heartbeat already under way landed
        beats = fake_hold.heartbeats(trial.id)
        heartbeat_rounds(fake_hold, idle, 3)
        assert fake_hold.heartbeats(trial.id) == beats
        fake_hold.release.set()
        worker.join(5)
        assert trial.tick_id == 1
        wait_until(
            lambda: fake_hold.heartbeats(trial.id) > beats, 5, "the trial's heartbeats resumed"
        )
        conn.close()
    finally:
        fake_hold.release.set()
        server.stop()


def test_one_heartbeat_thread_per_connection(connect: Connect) -> None:
    conn = connect(heartbeat_interval=0.05)
    trials = [conn.start_trial("player") for _ in range(3)]
    names = [t.name for t in threading.enumerate() if t.name.startswith("cogment-heartbeat")]
    assert names == [f"cogment-heartbeat-{conn.session_id[:8]}"]
    assert conn._heartbeat is not None and conn._heartbeat.registered == 3
    trials[0].end()
    assert conn._heartbeat.registered == 2


def test_heartbeats_can_be_disabled(connect: Connect, fake: FakeOrchestrator) -> None:
    conn = connect(heartbeat_interval=None)
    trial = conn.start_trial("player")
    # the clock: a trial idle on another connection beats a few times meanwhile
    beating = connect(heartbeat_interval=0.02).start_trial("player")
    wait_until(lambda: fake.heartbeats(beating.id) >= 3, 5, "the other trial beat 3 times")
    assert conn._heartbeat is None and conn.heartbeat_interval is None
    heartbeat_thread = f"cogment-heartbeat-{conn.session_id[:8]}"
    assert heartbeat_thread not in [t.name for t in threading.enumerate()]
    assert fake.heartbeats(trial.id) == 0


def test_a_listener_set_after_the_end_is_called(connect: Connect, fake: FakeOrchestrator) -> None:
    conn = connect(heartbeat_interval=None)
    trial = conn.start_trial("player")
    fake.end_remotely(trial.id, "max_steps (5) reached")
    with pytest.raises(TrialEndedError, match=r"max_steps \(5\) reached"):  # NOT_FOUND "has ended"
        trial.do_action(move(conn))
    assert trial.is_over and trial.error is None
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    assert ends.called.wait(5)
    trial.set_on_trial_end_event_listener(ends)
    settle(trial)
    assert len(ends.calls) == 1


def test_a_trial_over_reply_to_a_pending_action_ends_it(settings: Any) -> None:
    fake_hold = FakeOrchestrator(hold_actions=True)
    server = FakeServer(fake_hold)
    try:
        with Connection(settings, server.endpoint, heartbeat_interval=None) as conn:
            trial = conn.start_trial("player")
            ends = Ends()
            trial.set_on_trial_end_event_listener(ends)
            results: list[Any] = []
            worker = threading.Thread(target=lambda: results.append(trial.do_action(move(conn))))
            worker.start()
            wait_until(lambda: "Action" in fake_hold.methods(), 5, "the action reached the fake")
            fake_hold.end_remotely(trial.id, "ended by a client")
            worker.join(5)
            assert results and trial.is_over
            assert trial.end_reason == "ended by a client"  # asked with a Heartbeat
            assert ends.called.wait(5)
    finally:
        fake_hold.release.set()
        server.stop()


def test_a_failure_while_acting_raises_trial_error(settings: Any) -> None:
    fake_hold = FakeOrchestrator(hold_actions=True)
    server = FakeServer(fake_hold)
    reason = "environment at grpc://127.0.0.1:1 failed: UNKNOWN: boom"
    try:
        with Connection(settings, server.endpoint, heartbeat_interval=None) as conn:
            trial = conn.start_trial("player")
            ends = Ends()
            trial.set_on_trial_end_event_listener(ends)
            errors: list[BaseException] = []

            def act() -> None:
                try:
                    trial.do_action(move(conn))
                except BaseException as error:
                    errors.append(error)

            worker = threading.Thread(target=act)
            worker.start()
            wait_until(lambda: "Action" in fake_hold.methods(), 5, "the action reached the fake")
            fake_hold.end_remotely(trial.id, reason, failed=True)
            worker.join(5)
            assert len(errors) == 1 and isinstance(errors[0], TrialError)
            assert errors[0].code is grpc.StatusCode.ABORTED
            assert errors[0].message == f"trial {trial.id} ended: {reason}"
            assert trial.error is not None and trial.end_reason == reason
            assert ends.called.wait(5)
            with pytest.raises(TrialError, match="boom"):  # and so does every later call
                trial.do_action(move(conn))
    finally:
        fake_hold.release.set()
        server.stop()


def test_a_failed_trial_seen_by_a_heartbeat_is_a_trial_error(
    connect: Connect, fake: FakeOrchestrator
) -> None:
    conn = connect(heartbeat_interval=0.02)
    trial = conn.start_trial("player")
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    fake.end_remotely(
        trial.id, "agent 1 (player) at grpc://127.0.0.1:1 is unreachable", failed=True
    )
    assert ends.called.wait(5)
    assert isinstance(trial.error, TrialError) and "unreachable" in trial.error.message
    with pytest.raises(TrialError, match="unreachable"):
        trial.do_action(move(conn))


def test_concurrent_actions_get_failed_precondition(settings: Any) -> None:
    fake_hold = FakeOrchestrator(hold_actions=True)
    server = FakeServer(fake_hold)
    try:
        with Connection(settings, server.endpoint, heartbeat_interval=None) as conn:
            trial = conn.start_trial("player")
            worker = threading.Thread(target=trial.do_action, args=(move(conn),))
            worker.start()
            wait_until(lambda: "Action" in fake_hold.methods(), 5, "the action reached the fake")
            with pytest.raises(CogmentRpcError) as info:
                trial.do_action(move(conn))
            assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
            assert info.value.message == f"trial {trial.id}: actor 0 already has an action pending"
            fake_hold.release.set()
            worker.join(5)
            assert trial.tick_id == 1 and not trial.is_over
    finally:
        fake_hold.release.set()
        server.stop()


def test_the_action_stream_carries_every_action(connect: Connect, fake: FakeOrchestrator) -> None:
    conn = connect(heartbeat_interval=None)
    trial = conn.start_trial("player")
    trial.do_action(move(conn, 1))
    trial.begin_actions_stream()
    trial.begin_actions_stream()  # idempotent
    for cell in (2, 3):
        trial.actors.all[0].add_feedback(value=2, confidence=1)
        obs, reward, _ = trial.do_action(move(conn, cell))
        assert obs.cells[cell] == trial.tick_id == cell
        assert reward.value == 2
    assert fake.methods().count("ActionStream") == 1
    assert fake.methods().count("Action") == 1
    trial.end()
    assert trial.is_over


def test_a_streaming_trial_learns_of_its_end_while_idle(
    connect: Connect, fake: FakeOrchestrator
) -> None:
    conn = connect(heartbeat_interval=None)
    trial = conn.start_trial("player")
    trial.begin_actions_stream()
    trial.do_action(move(conn))
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    fake.end_remotely(trial.id, "no activity from any human for 30 s (max_inactivity)")
    assert ends.called.wait(5)
    assert trial.is_over
    with pytest.raises(TrialEndedError):
        trial.do_action(move(conn))


def test_a_second_action_on_a_busy_stream_is_refused(settings: Any) -> None:
    fake_hold = FakeOrchestrator(hold_actions=True)
    server = FakeServer(fake_hold)
    try:
        with Connection(settings, server.endpoint, heartbeat_interval=None) as conn:
            trial = conn.start_trial("player")
            trial.begin_actions_stream()
            worker = threading.Thread(target=trial.do_action, args=(move(conn),))
            worker.start()
            wait_until(lambda: fake_hold.trials[trial.id].pending, 5, "the action reached the fake")
            with pytest.raises(CogmentRpcError, match="already has an action pending"):
                trial.do_action(move(conn))
            fake_hold.release.set()
            worker.join(5)
            assert trial.tick_id == 1
    finally:
        fake_hold.release.set()
        server.stop()


def test_a_trial_without_a_slot_is_watched(settings: Any) -> None:
    fake_agents = FakeOrchestrator(human=False)
    server = FakeServer(fake_agents)
    try:
        with Connection(settings, server.endpoint, heartbeat_interval=None) as conn:
            trial = conn.start_trial("player")
            assert (trial.actor_id, trial.actor_class, trial.observation) == (-1, None, None)
            with pytest.raises(CogmentError, match="no actor slot"):
                trial.do_action(move(conn))
            with pytest.raises(CogmentError, match="no actor slot"):
                trial.begin_actions_stream()
            ends = Ends()
            trial.set_on_trial_end_event_listener(ends)
            wait_until(
                lambda: "ActionStream" in fake_agents.methods(),
                5,
                "the watch stream reached the fake",
            )
            fake_agents.end_remotely(trial.id, "the environment ended the trial")
            assert ends.called.wait(5)
            assert trial.wait_for_end(1)

            failing = conn.start_trial("player")
            wait_until(
                lambda: fake_agents.methods().count("ActionStream") == 2,
                5,
                "a second watch stream reached the fake",
            )
            fake_agents.end_remotely(failing.id, "environment failed: boom", failed=True)
            assert failing.wait_for_end(5)
            assert isinstance(failing.error, TrialError) and "boom" in failing.error.message

            ended = conn.start_trial("player")
            later = Ends()
            ended.set_on_trial_end_event_listener(later)
            ended.end()
            assert ended.is_over
            settle(ended)  # its watch stream's reader, which hears the end too, finished
            assert not later.calls
    finally:
        server.stop()


def test_join_takes_a_named_slot(connect: Connect, fake: FakeOrchestrator) -> None:
    conn = connect()
    first = conn.start_trial("player")
    other = connect().join_trial("player", first.id, 1)
    assert (other.id, other.actor_id, other.actor_class) == (
        first.id,
        1,
        conn.settings.actor_classes.player,
    )
    assert fake.calls[-1][1].actor_id == 1
    from cogment.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="actor 2 is of class 'watcher', not 'player'"):
        conn.join_trial("player", first.id, 2)
    with pytest.raises(CogmentRpcError) as info:
        conn.join_trial("player", "nope", 1)
    assert (
        info.value.code is grpc.StatusCode.NOT_FOUND
        and "trial nope not found" in info.value.message
    )


@pytest.mark.parametrize(
    ("code", "message", "failure"),
    [
        (grpc.StatusCode.NOT_FOUND, "trial t has ended: max_steps (5) reached", False),
        (grpc.StatusCode.NOT_FOUND, "trial t has ended: ended by a client", False),
        (grpc.StatusCode.NOT_FOUND, "trial t not found", False),
        (grpc.StatusCode.NOT_FOUND, "trial t failed: environment at grpc://h:1: boom", True),
        (grpc.StatusCode.ABORTED, "trial t ended: agent actor 1 at grpc://h:1: gone", True),
        (grpc.StatusCode.FAILED_PRECONDITION, "trial t: actor 0 is already joined", False),
    ],
)
def test_statuses_tell_failures_apart(code: grpc.StatusCode, message: str, failure: bool) -> None:
    from cogment.client.ending import classify
    from cogment.errors import CogmentRpcError

    assert isinstance(classify(CogmentRpcError(code, message)), TrialError) is failure


def test_closing_the_connection_stops_its_threads(settings: Any) -> None:
    servers = [FakeServer(FakeOrchestrator()), FakeServer(FakeOrchestrator(human=False))]
    try:
        conn = Connection(settings, servers[0].endpoint, heartbeat_interval=0.02)
        streaming = conn.start_trial("player")
        streaming.begin_actions_stream()
        streaming.do_action(move(conn))
        conn.start_trial("player")  # idle, heartbeats
        watcher_conn = Connection(settings, servers[1].endpoint, heartbeat_interval=0.02)
        watched = watcher_conn.start_trial("player")
        names = {f"cogment-stream-{streaming.id}", f"cogment-watch-{watched.id}"}
        names |= {f"cogment-heartbeat-{conn.session_id[:8]}"}

        def alive() -> set[str]:
            return {t.name for t in threading.enumerate() if t.is_alive()} & names

        wait_until(lambda: alive() == names, 5, "every thread of the connections started")
        conn.close()
        watcher_conn.close()
        wait_until(lambda: not alive(), 5, "every thread of the closed connections ended")
        assert not watched.is_over  # closing is not ending
    finally:
        for server in servers:
            server.stop()
