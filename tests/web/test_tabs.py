"""Tabs as clients: several tabs in one trial, a tab that vanishes, a tab that comes back (to
the same bridge or to a new one), all against a real orchestrator."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from cogment.web import protocol as p
from cogment.web.server import WebBridge
from tests.waiting import wait_until
from tests.web.conftest import Tab, run

Start = Callable[..., Any]
Bridge = Callable[..., WebBridge]
TWO_HUMANS = (("player", "human"), ("player", "human"), ("watcher", "watcher"))


def test_two_tabs_play_two_slots_of_one_trial(orchestrator: Start, bridge: Bridge) -> None:
    web = bridge(orchestrator(actors=TWO_HUMANS))

    async def body() -> None:
        async with await Tab.open(web) as one, await Tab.open(web) as two:
            joined = await one.request({"type": "start"})
            trial_id = joined["trial_id"]
            assert joined["actor_id"] == 0
            # the second slot's class is the default trial's (player), or named
            joined_two = await two.request(
                {"type": "join", "trial_id": trial_id, "actor_id": 1, "actor_class": "player"}
            )
            assert (joined_two["actor_id"], joined_two["tick_id"]) == (1, 0)
            assert joined_two["observation"] == joined["observation"]

            for tick in range(1, 4):
                await one.send({"type": "act", "id": 100 + tick, "action": {"cell": 0}})
                # the tick waits for the other tab: one action at a time per tab
                pending = await one.request({"type": "act", "action": {"cell": 3}})
                assert pending["code"] == p.ACTION_PENDING, pending
                assert f"tick {tick - 1} is still waiting" in pending["message"]
                reply_two = await two.request({"type": "act", "action": {"cell": 1}})
                reply_one = await one.answer(100 + tick)
                assert reply_one["tick_id"] == reply_two["tick_id"] == tick
                assert reply_one["observation"] == reply_two["observation"]
            # turn 0 moved player 0 (cell 0 += 1), turn 1 player 1 (cell 1 += 2), turn 2 player 0
            assert reply_one["observation"] == {"cells": [2, 2, 0, 0], "turn": 3}

            # the first tab ends the trial: the second hears of it, with the reason
            end = await one.request({"type": "end"})
            assert end["reason"] == "ended by this client"
            told = await two.next(p.ENDED)
            assert (told["trial_id"], told["reason"], told["failed"]) == (
                trial_id,
                "ended by a client",
                False,
            )

    run(body())


def test_a_closed_tab_is_a_vanished_client_an_open_one_is_not(
    orchestrator: Start, bridge: Bridge
) -> None:
    orch = orchestrator(max_inactivity=1)
    web = bridge(orch, heartbeat_interval=0.2)

    async def body() -> None:
        async with await Tab.open(web) as idle:
            kept = await idle.request({"type": "start"})  # idle from now on
            tab = await Tab.open(web)
            gone = await tab.request({"type": "start"})
            await tab.send({"type": "act", "action": {"cell": 0}})  # closed mid-action, even
            await tab.close()
            # no heartbeat comes for it any more: the orchestrator reaps its trial after
            # max_inactivity; by then the idle tab's trial, older, would have been reaped too
            # without the heartbeats its open tab keeps sending
            await asyncio.to_thread(
                wait_until, lambda: orch.trial_count == 1, 15, "the vanished tab's trial is reaped"
            )
            async with await Tab.open(web) as other:
                late = await other.request(
                    {"type": "join", "trial_id": gone["trial_id"], "actor_id": 0}
                )
                assert late["code"] == p.TRIAL_OVER
                assert "no activity from any human for 1 s (max_inactivity)" in late["message"]
            tick = await idle.request({"type": "act", "action": {"cell": 1}})
            assert tick["tick_id"] == 1 and kept["trial_id"] != gone["trial_id"]
            await idle.request({"type": "end"})
        await asyncio.to_thread(wait_until, lambda: web.tab_count == 0, 10, "no tab is left")

    run(body())


def test_a_tab_joins_its_slot_again_after_closing(orchestrator: Start, bridge: Bridge) -> None:
    web = bridge(orchestrator())

    async def body() -> None:
        tab = await Tab.open(web)
        session = tab.session_id
        joined = await tab.request({"type": "start"})
        trial_id = joined["trial_id"]
        tick = await tab.request({"type": "act", "action": {"cell": 2}})
        await tab.close()  # a reloaded page
        await asyncio.to_thread(wait_until, lambda: web.tab_count == 0, 10, "the tab is gone")

        # another session cannot take the slot
        async with await Tab.open(web) as stranger:
            taken = await stranger.request({"type": "join", "trial_id": trial_id, "actor_id": 0})
            assert taken["code"] == p.SLOT_TAKEN

        async with await Tab.open(web, session=session) as again:
            assert again.session_id == session
            back = await again.request({"type": "join", "trial_id": trial_id, "actor_id": 0})
            assert back["type"] == p.JOINED
            assert (back["tick_id"], back["observation"]) == (1, tick["observation"])
            nxt = await again.request({"type": "act", "action": {"cell": 2}})
            assert nxt["tick_id"] == 2
            await again.request({"type": "end"})

    run(body())


def test_a_new_bridge_lets_a_tab_join_its_slot(orchestrator: Start, bridge: Bridge) -> None:
    orch = orchestrator()
    first = bridge(orch)

    async def body() -> None:
        tab = await Tab.open(first)
        session = tab.session_id
        joined = await tab.request({"type": "start"})
        await tab.send({"type": "act", "id": 7, "action": {"cell": 3}})
        await tab.answer(7)
        await asyncio.to_thread(first.stop)  # the bridge goes down: the socket closes (1001)
        assert await tab.closed() == 1001
        await tab.close()

        second = bridge(orch)  # a new bridge process would do the same: it holds no state
        async with await Tab.open(second, session=session) as again:
            back = await again.request(
                {"type": "join", "trial_id": joined["trial_id"], "actor_id": 0}
            )
            assert back["tick_id"] == 1
            assert (await again.request({"type": "act", "action": {"cell": 3}}))["tick_id"] == 2
            await again.request({"type": "end"})

    run(body())


def test_an_orchestrator_over_tls(
    cog_settings: Any, services: Any, tls_certificate: Any, bridge: Bridge
) -> None:
    import cogment
    from tests.e2e.conftest import trial_params

    orch = cogment.Orchestrator(
        cog_settings,
        port=0,
        default_trial_params=trial_params(cog_settings, services),
        pre_hooks=[services.endpoints["hooks"]],
        datalog_endpoint="",
        tls_cert=tls_certificate.cert,
        tls_key=tls_certificate.key,
    ).start()
    try:
        endpoint = f"grpcs://localhost:{orch.port}"
        trusting = bridge(endpoint, tls_ca=str(tls_certificate.cert))
        doubting = bridge(endpoint)  # the system's roots do not know a self-signed certificate

        async def body() -> None:
            async with await Tab.open(trusting) as tab:
                assert (await tab.request({"type": "start"}))["type"] == p.JOINED
                assert (await tab.request({"type": "act", "action": {"cell": 1}}))["tick_id"] == 1
                await tab.request({"type": "end"})
            async with await Tab.open(doubting) as tab:
                refused = await tab.request({"type": "start"})
                assert refused["code"] == p.UNAVAILABLE, refused
                assert "cannot reach the orchestrator" in refused["message"]

        run(body())
    finally:
        orch.stop()
