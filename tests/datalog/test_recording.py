"""A trial with a human client, two agents and deltas, recorded directly into SQLite or
through `cogment datalog serve` (a real process), read back and compared field by field
with what the client, the agents and the environment saw."""

from __future__ import annotations

import queue
import threading
import types
from pathlib import Path
from typing import Any, Callable

import pytest

from cogment.api import agent_pb2
from cogment.datalog import open_datalog
from tests.datalog.conftest import (
    TIMEOUT,
    ServeProcess,
    ended_in_store,
    grpc_datalog,
    sqlite,
    trial_ended_in,
)
from tests.e2e.model import texts

TICKS = 12
LATE_AT, LATE_FOR = 7, 3  # the client's feedback at tick 7 about tick 3 (for alice)


def _datalog(way: str, db: Path, serve_datalog: Callable[..., ServeProcess]) -> Any:
    if way == "sqlite":
        return sqlite(db)
    return grpc_datalog(serve_datalog(db).url)


@pytest.mark.parametrize(
    ("way", "transport"), [("sqlite", "stream"), ("sqlite", "unary"), ("serve", "auto")]
)
def test_a_trial_reads_back_as_everyone_saw_it(
    way: str,
    transport: str,
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    serve_datalog: Callable[..., ServeProcess],
    cog_settings: types.ModuleType,
    project_services: types.ModuleType,
) -> None:
    from data_pb2 import Board, Chat, Move

    db = tmp_path / "trials.db"
    orch = recording(_datalog(way, db, serve_datalog), transport=transport)
    trial = connect(orch).start_trial(
        cog_settings.actor_classes.player, trial_cfg=cog_settings.trial.config_type(), user_id="ann"
    )
    seen: dict[int, tuple[Any, ...]] = {0: (trial.observation, None, None, None)}
    for t in range(TICKS):
        if t == 2:
            trial.actors.watcher[0].send_message(Chat(text="hello watcher"))
        if t == LATE_AT:
            trial.actors.player[1].add_feedback(value=42.0, confidence=3.0, tick_id=LATE_FOR)
        move = Move(cell=(t * 3) % 4)
        observation, reward, messages = trial.do_action(move)
        seen[t + 1] = (observation, None, None, None)
        seen[t] = (seen[t][0], move, reward, messages)
    trial.end()
    journal = project_services.JOURNAL
    ended_in_store(db, trial.id)

    with open_datalog(db, cog_settings) as log:
        (recorded,) = log.trials()
        assert (recorded.id, recorded.user_id, recorded.running) == (trial.id, "ann", False)
        assert recorded.end_reason == "ended by a client" and not recorded.failed
        assert (recorded.ticks, recorded.samples_lost, recorded.complete) == (TICKS, 0, True)
        # the parameters after the pre-trial hook
        assert recorded.params.environment.config.label == "hooked:ann"
        assert [a.actor_class for a in recorded.params.actors] == ["player", "player", "watcher"]
        assert recorded.actor_counts == [2, 1]
        assert recorded.started_at is not None and recorded.ended_at is not None
        assert recorded.started_at <= recorded.ended_at

        samples = list(recorded.samples())
        assert [s.tick_id for s in samples] == list(range(TICKS + 1))
        deltas = 0
        for s in samples:
            t = s.tick_id
            observation, move, reward, messages = seen[t]
            assert (s.trial_id, s.user_id) == (trial.id, "ann")
            # the human's whole observation is the client's (deltas applied on both sides)
            assert s.observations.player[0] == observation, t
            deltas += sum(1 for d in s.raw.observations.observations if not d.snapshot)
            # alice and the watcher decided on the observations recorded
            for who, actor in (
                ("player1", s.observations.player[1]),
                ("watcher2", s.observations.watcher[0]),
            ):
                decided = [d for _, e, d in journal.events(trial.id, who) if e == "decide"]
                if t < len(decided):
                    assert decided[t] == (actor.turn, list(actor.cells)), (who, t)
            assert isinstance(s.observations.watcher[0], Board)
            if s.last:
                assert t == TICKS and all(a is None for a in s.actions)
                continue
            # the actions the environment got
            updates = [d for _, e, d in journal.events(trial.id, "env") if e == "update"]
            assert updates[t] == (t, [str(a).strip() for a in s.actions.all]), t
            assert s.actions.player[0] == move
            # the client's reward of tick t, and its messages
            if t == LATE_FOR:
                assert s.rewards.player[0] == reward
            else:
                assert s.rewards.player[0] == (reward if reward.feedbacks else None), t
            assert [m for m in s.messages if m.receiver_id == 0] == list(messages.messages), t
        assert deltas > 0  # players got deltas: the reader applied them

        # the late feedback landed on its tick, without changing what alice received
        late = [f for f in samples[LATE_FOR].rewards.player[1].feedbacks if f.value == 42.0]
        assert [(f.tick_id, f.confidence) for f in late] == [(LATE_FOR, 3.0)]
        received = [d for _, e, d in journal.events(trial.id, "player1") if e == "reward"]
        recorded_values = [
            (s.rewards.player[1].value, s.rewards.player[1].confidence)
            for s in samples
            if s.rewards.player[1] is not None and not s.last
        ]
        assert sorted(recorded_values) == sorted(received)
        assert [f.tick_id for f in samples[LATE_AT].late_feedback] == [LATE_FOR]
        # the client's message to the watcher, the watcher's chats to the players
        by_receiver = {m.receiver_id: m for s in samples for m in s.messages}
        assert texts(agent_pb2.MessageCollection(messages=[by_receiver[2]])) == [
            (0, "hello watcher")
        ]

        # alice's steps, for a learner
        steps = recorded.actor("player", 1)
        assert steps.tick_ids == list(range(TICKS)) and len(steps) == TICKS
        assert steps.observations[5] == samples[5].observations.player[1]
        assert steps.actions == [s.actions.player[1] for s in samples[:-1]]
        assert steps.done == [False] * (TICKS - 1) + [True]
        assert steps.final_observation == samples[-1].observations.player[1]
        assert steps.rewards[LATE_FOR] == samples[LATE_FOR].rewards.player[1].value


def test_a_past_tick_feedback_from_an_agent_lands_on_its_tick(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    cog_settings: types.ModuleType,
) -> None:
    """Feedback about a tick whose rewards were sent (here, from the client, two ticks
    late, for itself) is kept for the datalog only, on the tick it is about."""
    from data_pb2 import Move

    db = tmp_path / "trials.db"
    trial = connect(recording(sqlite(db))).start_trial(cog_settings.actor_classes.player)
    rewards = []
    for t in range(6):
        if t == 4:
            trial.actors.player[0].add_feedback(value=-5.0, confidence=1.0, tick_id=1)
        rewards.append(trial.do_action(Move(cell=t)).reward)
    trial.end()
    ended_in_store(db, trial.id)
    with open_datalog(db, cog_settings) as log:
        samples = list(log.trial(trial.id).samples())
    tick1 = samples[1].rewards.player[0]
    assert [f.value for f in tick1.feedbacks if f.tick_id == 1][-1] == -5.0
    assert (tick1.value, tick1.confidence) == (rewards[1].value, rewards[1].confidence)
    assert len(tick1.feedbacks) == len(rewards[1].feedbacks) + 1
    for t in (0, 2, 3, 4, 5):
        assert samples[t].rewards.player[0] == rewards[t], t


def test_32_concurrent_trials_into_one_store(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    cog_settings: types.ModuleType,
) -> None:
    from data_pb2 import Move

    db = tmp_path / "trials.db"
    orch = recording(sqlite(db))
    connection = connect(orch)
    played: queue.Queue[tuple[str, list[Any]]] = queue.Queue()
    errors: list[BaseException] = []

    def play(i: int) -> None:
        try:
            trial = connection.start_trial(cog_settings.actor_classes.player, user_id=f"u{i}")
            observations = [trial.observation]
            for t in range(8):
                observations.append(trial.do_action(Move(cell=(t + i) % 4)).observation)
            trial.end()
            played.put((trial.id, observations))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=play, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert not errors, errors[:3]
    games = dict(played.get_nowait() for _ in range(32))
    for trial_id in games:
        ended_in_store(db, trial_id)
    with open_datalog(db, cog_settings) as log:
        trials = log.trials()
        assert {t.id for t in trials} == set(games)
        assert {t.user_id for t in trials} == {f"u{i}" for i in range(32)}
        for recorded in trials:
            assert recorded.complete and recorded.ticks == 8
            observations = [s.observations.player[0] for s in recorded.samples()]
            assert observations == games[recorded.id]


def test_a_reader_following_a_running_trial_sees_every_tick_in_order(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    cog_settings: types.ModuleType,
) -> None:
    from data_pb2 import Move

    db = tmp_path / "trials.db"
    trial = connect(recording(sqlite(db))).start_trial(cog_settings.actor_classes.player)
    followed: queue.Queue[Any] = queue.Queue()

    def follow() -> None:
        with open_datalog(db, cog_settings) as log:
            for sample in log.follow(trial.id, timeout=TIMEOUT):
                followed.put(sample)
        followed.put(None)  # the iteration ended with the trial

    threading.Thread(target=follow, daemon=True).start()
    seen = [trial.observation]
    for t in range(10):
        seen.append(trial.do_action(Move(cell=t)).observation)
        sample = followed.get(timeout=TIMEOUT)  # tick t, while the trial runs
        assert sample.tick_id == t and sample.observations.player[0] == seen[t]
        assert not trial.is_over
    trial.end()
    last = followed.get(timeout=TIMEOUT)
    assert (last.tick_id, last.last, last.observations.player[0]) == (10, True, seen[10])
    assert followed.get(timeout=TIMEOUT) is None


def test_a_trial_that_ends_is_told_at_once_and_its_record_drains_after(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    cog_settings: types.ModuleType,
) -> None:
    """The store is locked by another process while the trial plays and ends: the client
    hears of the end at once, the samples wait in the queue, then all are stored."""
    import sqlite3

    from data_pb2 import Move

    db = tmp_path / "trials.db"
    orch = recording(sqlite(db), params=None)
    trial = connect(orch).start_trial(cog_settings.actor_classes.player)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # every write of the orchestrator waits
    try:
        for t in range(5):
            trial.do_action(Move(cell=t))
        trial.end()
        assert trial.is_over
        assert trial_ended_in(db, trial.id) is None
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ended_in_store(db, trial.id) == ("ended by a client", 6, 0)


def test_the_datalog_store_of_a_project_is_next_to_its_cogment_yaml(tmp_path: Path) -> None:
    import shutil

    from cogment.generate import generate
    from tests.conftest import PROJECT_DIR

    for name in ("cogment.yaml", "data.proto", "delta.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    with open(tmp_path / "cogment.yaml", "a", encoding="utf-8") as f:
        f.write("datalog: {type: sqlite, path: logs/trials.db, on_failure: continue}\n")
    out = generate(str(tmp_path / "cogment.yaml"), str(tmp_path / "out"))
    text = Path(out).read_text()
    assert "path=_os.path.join(_os.path.dirname(project_file), 'logs/trials.db')" in text
    import importlib.util
    import sys

    sys.path.insert(0, str(tmp_path / "out"))
    try:
        spec = importlib.util.spec_from_file_location("moved_settings", out)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(tmp_path / "out"))
    assert module.datalog.type == "sqlite" and module.datalog.on_failure == "continue"
    assert module.datalog.path == str(tmp_path / "logs" / "trials.db")
    assert module.datalog.where == f"sqlite:{tmp_path / 'logs' / 'trials.db'}"


def test_what_a_client_gives_with_its_end_is_in_the_last_sample(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    cog_settings: types.ModuleType,
) -> None:
    from data_pb2 import Chat, Move

    db = tmp_path / "trials.db"
    trial = connect(recording(sqlite(db))).start_trial(cog_settings.actor_classes.player)
    for t in range(3):
        trial.do_action(Move(cell=t))
    trial.actors.player[1].add_feedback(value=7.0, confidence=1.0)  # about tick 3
    trial.multi_cast(Chat(text="bye"), [-1])
    trial.end()
    ended_in_store(db, trial.id)
    with open_datalog(db, cog_settings) as log:
        last = list(log.trial(trial.id).samples())[-1]
    assert last.last and last.tick_id == 3
    reward = last.rewards.player[1]
    assert (reward.value, [(f.tick_id, f.value) for f in reward.feedbacks]) == (7.0, [(3, 7.0)])
    assert [(m.sender_id, m.receiver_id) for m in last.messages] == [(0, -1)]


def test_recording_through_a_tls_datalog_serve(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    serve_datalog: Callable[..., ServeProcess],
    tls_certificate: Any,
    cog_settings: types.ModuleType,
) -> None:
    from data_pb2 import Move

    db = tmp_path / "trials.db"
    cert, key = str(tls_certificate.cert), str(tls_certificate.key)
    serve = serve_datalog(db, 0, "--tls-cert", cert, "--tls-key", key)
    assert serve.url.startswith("grpcs://")
    orch = recording(grpc_datalog(serve.url), tls_ca=cert)
    trial = connect(orch).start_trial(cog_settings.actor_classes.player)
    for t in range(3):
        trial.do_action(Move(cell=t))
    trial.end()
    assert ended_in_store(db, trial.id) == ("ended by a client", 4, 0)
