"""The WebSocket protocol of `cogment web`, request by request, against a real bridge, a real
orchestrator and the test project's services (all on loopback)."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from cogment.web import protocol as p
from cogment.web.server import WebBridge
from tests.e2e.conftest import Services
from tests.waiting import wait_until
from tests.web.conftest import Tab, run

Start = Callable[..., Any]
Bridge = Callable[..., WebBridge]


def test_welcome_describes_the_project(orchestrator: Start, bridge: Bridge) -> None:
    web = bridge(orchestrator())

    async def body() -> dict[str, Any]:
        async with await Tab.open(web) as tab:
            return tab.welcome

    welcome = run(body())
    assert welcome["protocol"] == p.PROTOCOL_VERSION
    assert p.SESSION_ID_RE.match(welcome["session_id"])
    assert welcome["max_frame"] == p.DEFAULT_MAX_FRAME
    project = welcome["project"]
    assert [c["id"] for c in project["actor_classes"]] == ["player", "watcher"]
    assert project["actor_classes"][0] == {
        "id": "player",
        "action": "testproject.Move",
        "observation": "testproject.Board",
        "config": "testproject.PlayerConfig",
    }
    assert project["trial_config"] == "testproject.TrialConfig"
    assert project["human_slots"] == [{"actor_id": 0, "actor_class": "player"}]
    types_ = project["types"]
    assert types_["testproject.Move"] == {"fields": [{"name": "cell", "type": "int32"}]}
    assert {"name": "cells", "type": "int32", "repeated": True} in types_["testproject.Board"][
        "fields"
    ]
    assert set(types_) >= {"testproject.Nothing", "testproject.PlayerConfig"}


def test_a_trial_start_to_end(orchestrator: Start, bridge: Bridge, services: Services) -> None:
    web = bridge(orchestrator())

    async def body() -> None:
        async with await Tab.open(web) as tab:
            joined = await tab.request(
                {"type": "start", "config": {"rounds": 3, "env_size": 5}, "user_id": "tab"}
            )
            assert joined["type"] == p.JOINED
            assert (joined["actor_id"], joined["actor_class"]) == (0, "player")
            assert joined["actor_counts"] == [2, 1]
            assert joined["actors"][2] == {
                "actor_id": 2,
                "actor_class": "watcher",
                "id_in_class": 0,
            }
            assert (joined["tick_id"], joined["observation"]) == (0, {"cells": [0] * 5, "turn": 0})
            trial_id = joined["trial_id"]
            assert services.journal.events(trial_id, "env")[0] == (
                "env",
                "start",
                (5, "hooked:tab"),
            )

            ticks = [await tab.request({"type": "act", "action": {"cell": c}}) for c in (1, 1, 2)]
            assert [t["type"] for t in ticks] == [p.TICK] * 3
            assert [t["tick_id"] for t in ticks] == [1, 2, 3]
            assert [t["last"] for t in ticks] == [False, False, True]
            # tick 0 moved the human (actor 0): cell 1 += 1; deltas are applied by the bridge
            assert ticks[0]["observation"] == {"cells": [0, 1, 0, 0, 0], "turn": 1}
            assert ticks[2]["observation"]["turn"] == 3
            # the watcher gives players feedback and a message every tick
            assert ticks[1]["reward"]["feedbacks"][0]["tick_id"] == 1
            assert {
                "sender_id": 2,
                "receiver_id": 0,
                "payload": {"@type": "testproject.Chat", "text": "turn 1"},
            } in ticks[1]["messages"]
            end = await tab.next(p.ENDED)
            assert end == {
                "type": p.ENDED,
                "trial_id": trial_id,
                "reason": "the environment ended the trial",
                "failed": False,
            }
            late = await tab.request({"type": "act", "action": {"cell": 1}})
            assert late["code"] == p.TRIAL_OVER and trial_id in late["message"]
            # a new trial on the same socket
            again = await tab.request({"type": "start"})
            assert again["type"] == p.JOINED and again["trial_id"] != trial_id
            await tab.request({"type": "end"})

    run(body())


def test_feedback_and_messages_reach_the_services(
    orchestrator: Start, bridge: Bridge, services: Services
) -> None:
    web = bridge(orchestrator())

    async def body() -> None:
        async with await Tab.open(web) as tab:
            joined = await tab.request({"type": "start"})
            trial_id = joined["trial_id"]
            chat = {"@type": "testproject.Chat", "text": "hi env"}
            sent = await tab.request({"type": "message", "to": "environment", "payload": chat})
            assert sent == {"type": p.SENT, "count": 1, "id": sent["id"]}
            sent = await tab.request(
                {
                    "type": "message",
                    "to": ["watcher", 1],
                    "payload": {"@type": "type.googleapis.com/testproject.Chat", "text": "hi all"},
                }
            )
            assert sent["count"] == 2
            sent = await tab.request(
                {"type": "feedback", "to": 1, "value": 3, "confidence": 2, "user_data": chat}
            )
            assert sent == {"type": p.SENT, "count": 1, "id": sent["id"]}
            first = await tab.request({"type": "act", "action": {"cell": 0}})
            second = await tab.request({"type": "act", "action": {"cell": 0}})
            # the environment answers each message in its next update
            payloads = [m["payload"] for m in first["messages"] + second["messages"]]
            assert {"@type": "testproject.Chat", "text": "env got: hi env"} in payloads
            journal = services.journal

            def heard(who: str) -> bool:
                events = journal.events(trial_id, who)
                return any(e[1] == "on_message" and (0, "hi all") in e[2] for e in events)

            wait_until(lambda: heard("watcher2") and heard("player1"), 10, "both heard the tab")

            def rewards() -> list[Any]:
                return [e[2] for e in journal.events(trial_id, "player1") if e[1] == "reward"]

            # alice's reward for tick 0: the watcher's (0, 0.5) and the tab's (3, 2)
            wait_until(rewards, 10, "alice got a reward")
            assert rewards()[0] == (pytest.approx(6 / 2.5), pytest.approx(2.5))
            await tab.request({"type": "end"})

    run(body())


def test_end_answers_with_the_reason_and_later_requests_are_refused(
    orchestrator: Start, bridge: Bridge
) -> None:
    web = bridge(orchestrator())

    async def body() -> None:
        async with await Tab.open(web) as tab:
            assert (await tab.request({"type": "end"}))["code"] == p.NO_TRIAL
            joined = await tab.request({"type": "start"})
            await tab.request({"type": "act", "action": {}})  # an empty action is a valid Move
            end = await tab.request({"type": "end"})
            assert end["type"] == p.ENDED and end["trial_id"] == joined["trial_id"]
            assert (end["reason"], end["failed"]) == ("ended by this client", False)
            assert (await tab.request({"type": "end"}))["type"] == p.ENDED  # idempotent
            for frame in (
                {"type": "act", "action": {"cell": 1}},
                {"type": "feedback", "to": 1, "value": 1},
                {"type": "message", "to": -1, "payload": {"@type": "testproject.Chat"}},
            ):
                refused = await tab.request(frame)
                assert refused["code"] == p.TRIAL_OVER, refused
                assert refused["request"] == frame["type"]
                assert "ended by this client" in refused["message"]
            assert tab.frames == []  # no end frame of its own for an end the tab asked for

    run(body())


BAD_FRAMES = [
    # (frame sent, error code, words the message must hold)
    ("{not json", p.BAD_JSON, ["not JSON"]),
    ("[1, 2]", p.BAD_JSON, ["JSON object", "a list"]),
    ('"act"', p.BAD_JSON, ["JSON object"]),
    ({"action": {}}, p.BAD_REQUEST, ["no 'type'", "start, join, act"]),
    ({"type": "fly"}, p.BAD_REQUEST, ["unknown request type 'fly'"]),
    ({"type": "start", "id": {"a": 1}}, p.BAD_REQUEST, ["'id' must be a string or a number"]),
    (
        {"type": "start", "actor_class": "pilot"},
        p.BAD_REQUEST,
        ["unknown actor class 'pilot'", "player, watcher"],
    ),
    ({"type": "start", "config": {"rounds": "many"}}, p.BAD_DATA, ["start: config", "rounds"]),
    ({"type": "start", "config": {"laps": 3}}, p.BAD_DATA, ["start: config", "laps"]),
    ({"type": "start", "config": [3]}, p.BAD_REQUEST, ["'config' must be an object", "a list"]),
    ({"type": "join", "actor_id": 0}, p.BAD_REQUEST, ["join: missing key 'trial_id'"]),
    (
        {"type": "join", "trial_id": "x", "actor_id": "0"},
        p.BAD_REQUEST,
        ["'actor_id' must be an integer"],
    ),
    (
        {"type": "act", "action": {"cell": 1}},
        p.NO_TRIAL,
        ["act: this tab has not started or joined"],
    ),
]


@pytest.mark.parametrize(
    ("frame", "code", "words"), BAD_FRAMES, ids=[b[1] + str(i) for i, b in enumerate(BAD_FRAMES)]
)
def test_bad_frames_get_an_error_and_the_socket_stays_open(
    orchestrator: Start, bridge: Bridge, frame: Any, code: str, words: list[str]
) -> None:
    web = bridge(orchestrator())

    async def body() -> dict[str, Any]:
        async with await Tab.open(web) as tab:
            await tab.send_text(frame if isinstance(frame, str) else json.dumps(frame))
            error = await tab.next()
            joined = await tab.request({"type": "start"})  # still usable
            assert joined["type"] == p.JOINED
            await tab.request({"type": "end"})
            return error

    error = run(body())
    assert error["type"] == p.ERROR and error["code"] == code, error
    for word in words:
        assert word in error["message"], error
    if isinstance(frame, dict) and frame.get("type") in p.REQUESTS:
        assert error["request"] == frame["type"]


BAD_IN_TRIAL = [
    (
        {"type": "act", "action": {"cel": 1}},
        p.BAD_DATA,
        ["act: action", 'no field named "cel"', "cell"],
    ),
    ({"type": "act", "action": {"cell": "one"}}, p.BAD_DATA, ["act: action", "cell"]),
    ({"type": "act", "action": {"cell": 1.5}}, p.BAD_DATA, ["act: action", "cell"]),
    ({"type": "act"}, p.BAD_REQUEST, ["act: missing key 'action'"]),
    ({"type": "start"}, p.IN_TRIAL, ["end it first"]),
    ({"type": "join", "trial_id": "x", "actor_id": 0}, p.IN_TRIAL, ["end it first"]),
    ({"type": "feedback", "to": 7, "value": 1}, p.BAD_REQUEST, ["no actor 7", "0..2"]),
    ({"type": "feedback", "to": -1, "value": 1}, p.BAD_REQUEST, ["no actor -1"]),
    ({"type": "feedback", "to": "crowd", "value": 1}, p.BAD_REQUEST, ["unknown receiver 'crowd'"]),
    (
        {"type": "feedback", "to": 1, "value": "lots"},
        p.BAD_REQUEST,
        ["'value' must be an integer or a number"],
    ),
    (
        {"type": "feedback", "to": 1, "value": 1, "confidence": -1},
        p.BAD_REQUEST,
        ["confidence must be a finite number >= 0"],
    ),
    ({"type": "feedback", "to": [], "value": 1}, p.BAD_REQUEST, ["names no receiver"]),
    ({"type": "message", "to": 1, "payload": {"text": "hi"}}, p.BAD_DATA, ['missing "@type"']),
    (
        {"type": "message", "to": 1, "payload": {"@type": "testproject.Shout"}},
        p.BAD_DATA,
        ["unknown message type 'testproject.Shout'"],
    ),
    (
        {"type": "message", "to": 1, "payload": {"@type": "testproject.Chat", "txt": "hi"}},
        p.BAD_DATA,
        ["message: payload", "txt"],
    ),
    (
        {"type": "message", "to": [1, True], "payload": {"@type": "testproject.Chat"}},
        p.BAD_REQUEST,
        ["actor ids or class names only"],
    ),
]


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    BAD_IN_TRIAL,
    ids=[b[1] + str(i) for i, b in enumerate(BAD_IN_TRIAL)],
)
def test_bad_requests_in_a_trial_get_an_error_and_the_trial_goes_on(
    orchestrator: Start, bridge: Bridge, frame: dict[str, Any], code: str, words: list[str]
) -> None:
    web = bridge(orchestrator())

    async def body() -> dict[str, Any]:
        async with await Tab.open(web) as tab:
            await tab.request({"type": "start"})
            error = await tab.request(frame)
            tick = await tab.request({"type": "act", "action": {"cell": 1}})
            assert tick["type"] == p.TICK and tick["tick_id"] == 1
            await tab.request({"type": "end"})
            return error

    error = run(body())
    assert error["type"] == p.ERROR and error["code"] == code, error
    assert error["request"] == frame["type"]
    for word in words:
        assert word in error["message"], error


def test_frame_size_is_bounded(orchestrator: Start, bridge: Bridge) -> None:
    web = bridge(orchestrator(), max_frame=4096)

    async def body() -> None:
        async with await Tab.open(web) as tab:
            assert tab.welcome["max_frame"] == 4096
            big = json.dumps({"type": "start", "user_id": "x" * 5000})
            await tab.send_text(big)
            error = await tab.next()
            assert error["code"] == p.FRAME_TOO_LARGE
            assert "over this bridge's limit of 4096 bytes" in error["message"]
            assert (await tab.request({"type": "start"}))["type"] == p.JOINED
            await tab.request({"type": "end"})
            # beyond HARD_FRAME_FACTOR times the limit, the frame is not even read
            await tab.send_text("x" * (4096 * p.HARD_FRAME_FACTOR + 1))
            assert await tab.closed() == 1009  # message too big

    run(body())


def test_join_errors_say_what_is_wrong(orchestrator: Start, bridge: Bridge) -> None:
    orch = orchestrator(actors=(("player", "human"), ("player", "player"), ("watcher", "human")))
    web = bridge(orch)

    async def body() -> None:
        async with await Tab.open(web) as one, await Tab.open(web) as two:
            joined = await one.request({"type": "start"})
            trial_id = joined["trial_id"]
            taken = await two.request({"type": "join", "trial_id": trial_id, "actor_id": 0})
            assert taken["code"] == p.SLOT_TAKEN and "already joined" in taken["message"]
            agent = await two.request(
                {"type": "join", "trial_id": trial_id, "actor_id": 1, "actor_class": "player"}
            )
            assert agent["code"] == p.NOT_FOUND and "not a human slot" in agent["message"]
            missing = await two.request(
                {"type": "join", "trial_id": "no-such-trial", "actor_id": 0}
            )
            assert missing["code"] == p.NOT_FOUND and "no-such-trial" in missing["message"]
            nobody = await two.request({"type": "join", "trial_id": trial_id, "actor_id": 7})
            assert nobody["code"] == p.NOT_FOUND and "no actor 7" in nobody["message"]
            wrong = await two.request(
                {"type": "join", "trial_id": trial_id, "actor_id": 2, "actor_class": "player"}
            )
            assert wrong["code"] == p.BAD_REQUEST
            assert "actor 2 is of class 'watcher', not 'player'" in wrong["message"]
            # with the right class, it joins (by default, the class of that human slot in the
            # orchestrator's default trial; a slot taken by the failed join is this session's)
            right = await two.request({"type": "join", "trial_id": trial_id, "actor_id": 2})
            assert (right["type"], right["actor_class"]) == (p.JOINED, "watcher")
            await one.request({"type": "end"})
            assert (await two.next(p.ENDED))["reason"] == "ended by a client"
            over = await two.request({"type": "join", "trial_id": trial_id, "actor_id": 0})
            assert over["code"] == p.TRIAL_OVER and "ended by a client" in over["message"]

    run(body())


def test_a_failing_service_ends_the_trial_as_failed(orchestrator: Start, bridge: Bridge) -> None:
    web = bridge(orchestrator())

    async def body() -> None:
        async with await Tab.open(web) as tab:
            await tab.request({"type": "start", "user_id": "fail-env:1"})
            assert (await tab.request({"type": "act", "action": {"cell": 1}}))["type"] == p.TICK
            failed = await tab.request({"type": "act", "action": {"cell": 1}})
            assert failed["code"] == p.TRIAL_FAILED and "board on fire" in failed["message"]
            end = await tab.next(p.ENDED)
            assert end["failed"] is True and "board on fire" in end["reason"]

    run(body())


def test_an_unreachable_orchestrator_is_reported(bridge: Bridge) -> None:
    from tests.e2e.conftest import free_port

    web = bridge(f"127.0.0.1:{free_port()}")

    async def body() -> dict[str, Any]:
        async with await Tab.open(web) as tab:
            return await tab.request({"type": "start"})

    error = run(body())
    assert error["code"] == p.UNAVAILABLE and "cannot reach the orchestrator" in error["message"]


def test_the_origin_must_be_the_pages_own(orchestrator: Start, bridge: Bridge) -> None:
    web = bridge(orchestrator(), allowed_origins=("http://friend.example:8000",))
    own = web.url.rstrip("/")

    async def body() -> None:
        evil = await Tab.open(web, origin="http://evil.example", welcome=False)
        refused = await evil.next()
        assert refused["code"] == p.ORIGIN_REFUSED and "evil.example" in refused["message"]
        assert await evil.closed() == 1008
        await evil.close()
        for origin in (own, "http://friend.example:8000", None):
            async with await Tab.open(web, origin=origin) as tab:
                assert tab.welcome["type"] == p.WELCOME

    run(body())


def test_tabs_and_sessions_are_bounded(orchestrator: Start, bridge: Bridge) -> None:
    web = bridge(orchestrator(), max_tabs=2)

    async def body() -> None:
        async with await Tab.open(web) as first:
            same = await Tab.open(web, session=first.session_id, welcome=False)
            in_use = await same.next()
            assert in_use["code"] == p.SESSION_IN_USE
            assert await same.closed() == 1008
            await same.close()
            bad = await Tab.open(web, session="no!", welcome=False)
            assert (await bad.next())["code"] == p.BAD_REQUEST
            await bad.close()
            async with await Tab.open(web):
                third = await Tab.open(web, welcome=False)
                full = await third.next()
                assert full["code"] == p.BRIDGE_FULL and "--max-tabs" in full["message"]
                assert await third.closed() == 1013
                await third.close()
        wait_until(lambda: web.tab_count == 0, 10, "every tab is gone")

    run(body())
