"""Twenty trials at once, each driven from its own thread, on one orchestrator."""

from __future__ import annotations

import threading
from typing import Any, Callable

from cogment.client import Connection
from tests.e2e.conftest import BOTH_TRANSPORTS, Services
from tests.e2e.model import BoardModel, texts
from tests.waiting import wait_until

TRIALS = 20
TICKS = 15


@BOTH_TRANSPORTS
def test_twenty_trials_in_parallel(
    orchestrator: Callable[..., Any], connect: Callable[..., Connection], services: Services
) -> None:
    from data_pb2 import Board, Move

    orch = orchestrator()
    shared = connect(orch)  # half of the trials share one connection (and its heartbeat thread)
    barrier = threading.Barrier(TRIALS, timeout=30)
    failures: list[str] = []
    trial_ids: list[str] = []

    def run(n: int) -> None:
        try:
            conn = shared if n % 2 else connect(orch)
            trial = conn.start_trial("player", user_id=f"user-{n}")
            trial_ids.append(trial.id)
            if n % 4 == 0:
                trial.begin_actions_stream()
            barrier.wait()  # every trial is running before anyone acts
            model = BoardModel(4, player_ids=[0, 1])
            for t in range(TICKS):
                alice_cell = model.agent_move(1)
                cell = (n + t) % 4
                obs, _, messages = trial.do_action(Move(cell=cell))
                model.step([cell, alice_cell])
                if obs != model.board(Board) or texts(messages) != [(2, f"turn {t}")]:
                    failures.append(f"trial {n} tick {t}: {obs} {texts(messages)}")
                    return
            trial.end()
        except Exception as error:  # reported below, with the trial's number
            failures.append(f"trial {n}: {error!r}")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(TRIALS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert len(set(trial_ids)) == TRIALS
    wait_until(lambda: orch.trial_count == 0, 5, "every trial is over on the orchestrator")
    for trial_id in trial_ids:
        updates = [e for _, e, _ in services.journal.events(trial_id, "env") if e == "update"]
        assert len(updates) == TICKS
