"""The live trials, the tombstones of ended ones, inactivity reaping and shutdown."""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING

from cogment.errors import TRIAL_ENDED, TRIAL_FAILED

from . import status

if TYPE_CHECKING:
    from .tick import Trial

log = logging.getLogger("cogment.orchestrator")

MAX_TOMBSTONES = 10_000
INACTIVITY = "no activity from any human for {limit:g} s (max_inactivity)"


class Registry:
    """Trials by id: live ones, and the reasons ended ones ended (a bounded LRU)."""

    def __init__(self, max_tombstones: int = MAX_TOMBSTONES) -> None:
        self._live: dict[str, Trial] = {}
        self._ended: collections.OrderedDict[str, tuple[str, bool]] = collections.OrderedDict()
        self._max_tombstones = max_tombstones
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._live)

    def add(self, trial: Trial) -> None:
        """Registers a new trial and runs its task."""
        self._live[trial.id] = trial
        task = asyncio.get_running_loop().create_task(trial.run(), name=f"trial {trial.id}")
        trial.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _task: trial.notify())

    def get(self, trial_id: str) -> Trial:
        """The live trial `trial_id`.

        Raises:
            StatusError: NOT_FOUND, saying whether the trial ended (and why) or never was.
        """
        trial = self._live.get(trial_id)
        if trial is not None:
            return trial
        ended = self._ended.get(trial_id)
        if ended is None:
            raise status.not_found(status.TRIAL_NOT_FOUND.format(trial_id=trial_id))
        self._ended.move_to_end(trial_id)
        reason, failed = ended
        wording = TRIAL_FAILED if failed else TRIAL_ENDED
        raise status.not_found(wording.format(trial_id=trial_id, reason=reason))

    def retire(self, trial_id: str, reason: str, failed: bool = False) -> None:
        """Forgets a trial that ended, keeping why (and whether a failure ended it)."""
        self._live.pop(trial_id, None)
        self._ended[trial_id] = (reason, failed)
        while len(self._ended) > self._max_tombstones:
            self._ended.popitem(last=False)

    def watch_inactivity(self, trial: Trial, limit: float) -> None:
        """Ends `trial` once no human acted, joined or sent a heartbeat for `limit` seconds
        (checked by a timer, not at the next request)."""
        loop = asyncio.get_running_loop()

        def check() -> None:
            trial.inactivity_timer = None
            if trial.over:
                return
            idle = trial.humans.idle_for(loop.time())
            if idle is not None and idle >= limit:
                trial.end(INACTIVITY.format(limit=limit))
                return
            wait = limit if idle is None else limit - idle
            trial.inactivity_timer = loop.call_later(wait, check)

        trial.inactivity_timer = loop.call_later(limit, check)

    async def shutdown(self, reason: str, timeout: float) -> None:
        """Ends every live trial and waits (at most `timeout` s) for their ends to finish."""
        for trial in list(self._live.values()):
            trial.end(reason)
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("%d trials did not finish ending in time", len(pending))
                await asyncio.wait(pending, timeout=1.0)
