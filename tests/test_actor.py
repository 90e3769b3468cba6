"""`cogment.Actor`, `ActorTable` and the `Outbox` behind `cogment.Trial` (shared by clients)."""

from __future__ import annotations

import math
import threading
import types

import pytest

import cogment
from cogment.actor import ActorTable
from cogment.outbox import Outbox


def _trial(cog_settings: types.ModuleType, sender_id: int = -1) -> cogment.Trial:
    return cogment.Trial("t1", cog_settings, [2, 1], sender_id=sender_id)


def test_the_actor_table(cog_settings: types.ModuleType) -> None:
    trial = _trial(cog_settings)
    actors = trial.actors
    assert isinstance(actors, ActorTable) and len(actors) == 3
    assert [(a.actor_class.id, a.id_in_class, a.actor_id) for a in actors] == [
        ("player", 0, 0),
        ("player", 1, 1),
        ("watcher", 0, 2),
    ]
    assert actors.player[1] is actors[1] is actors.all[1] is actors.get(1)
    assert actors.watcher == [actors[2]]
    assert actors.get(3) is None and actors.get(-1) is None
    assert repr(actors[2]) == "Actor(watcher[0], actor_id=2)"
    with pytest.raises(AttributeError, match="the trial has no actor class named 'driver'"):
        _ = actors.driver


def test_feedback_made_during_a_call_gets_its_tick(
    cog_settings: types.ModuleType, data: types.ModuleType
) -> None:
    trial = _trial(cog_settings, sender_id=1)
    outbox = trial._outbox
    assert outbox.drain(outbox.mark(), 5) == ((), ())
    trial.actors[0].add_feedback(1.0, 1.0)  # before the call: stays at -1
    mark = outbox.mark()
    trial.actors[0].add_feedback(2.0, 1.0)  # during the call: gets its tick
    trial.actors[2].add_feedback(3.0, 0.5, tick_id=3, user_data=data.Nothing())
    trial.actors[1].send_message(data.Chat(text="hi"))
    feedbacks, messages = outbox.drain(mark, 7)
    assert [(f.actor_id, f.agent_id, f.tick_id, f.value) for f in feedbacks] == [
        (0, 0, -1, 1.0),
        (0, 0, 7, 2.0),
        (2, 0, 3, 3.0),
    ]
    assert [(m.sender_id, m.receiver_id) for m in messages] == [(1, 1)]
    assert outbox.drain(outbox.mark(), 8) == ((), ())
    with pytest.raises(ValueError, match=r"confidence must be a finite number >= 0, got -1\.0"):
        trial.actors[0].add_feedback(1.0, -1.0)
    with pytest.raises(ValueError, match="confidence must be a finite number >= 0, got inf"):
        trial.actors[0].add_feedback(1.0, math.inf)
    with pytest.raises(ValueError, match="value must be a finite number, got nan"):
        trial.actors[0].add_feedback(math.nan, 1.0)
    with pytest.raises(ValueError, match="tick_id must be -1"):
        trial.actors[0].add_feedback(1.0, 1.0, tick_id=-2)


def test_multi_cast_checks_every_receiver_first(
    cog_settings: types.ModuleType, data: types.ModuleType
) -> None:
    trial = _trial(cog_settings)
    chat = data.Chat(text="hello")
    trial.actors[0].multi_cast(chat, [trial.actors.watcher[0], -1, 0])
    with pytest.raises(ValueError, match=r"trial t1: no actor 3 to send a message to \(actor ids"):
        trial.multi_cast(chat, [1, 3])
    with pytest.raises(TypeError, match="protobuf message"):
        trial.actors[1].send_message("hello")  # type: ignore[arg-type]
    assert [(m.sender_id, m.receiver_id) for m in trial._outbox.take_messages()] == [
        (-1, 2),
        (-1, -1),
        (-1, 0),
    ]
    assert trial._outbox.take_messages() == () and trial._outbox.take_feedbacks() == ()


def test_the_outbox_is_thread_safe(cog_settings: types.ModuleType) -> None:
    actors = _trial(cog_settings).actors
    outbox = Outbox("t1", -1, len(actors))
    taken: list[int] = []
    done = threading.Event()

    def give() -> None:
        for _ in range(2000):
            outbox.add_feedback(actors[0], 1.0, 1.0, -1, None)
        done.set()

    thread = threading.Thread(target=give)
    thread.start()
    while not done.is_set():
        taken.append(len(outbox.take_feedbacks()))
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert sum(taken) + len(outbox.take_feedbacks()) == 2000


def test_table_refuses_ids_out_of_range(cog_settings: types.ModuleType) -> None:
    table = cogment.Trial("t", cog_settings, [2, 1]).actors
    assert table[2].actor_id == 2
    for actor_id in (-1, 3):
        with pytest.raises(IndexError, match=rf"no actor {actor_id} \(actor ids are 0..2"):
            table[actor_id]
