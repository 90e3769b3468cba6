"""The live trials, the tombstones of ended ones, and shutdown.

The registry lists trials; it never writes into them. A trial tells the registry it is over
through the `retire` callback it was made with.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from cogment.errors import TRIAL_ENDED, TRIAL_FAILED, TRIAL_NOT_FOUND

from . import status
from .tick import Trial

log = logging.getLogger("cogment.orchestrator")

MAX_TOMBSTONES = 10_000


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
        """Registers a new trial (made with `retire` as its `on_over`) and launches it."""
        self._live[trial.id] = trial
        task = trial.launch()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            raise status.not_found(TRIAL_NOT_FOUND.format(trial_id=trial_id))
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

    async def shutdown(self, reason: str, timeout: float) -> None:
        """Ends every live trial and waits (at most `timeout` s) for their ends to finish."""
        for trial in list(self._live.values()):
            trial.end.end(reason)
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("%d trials did not finish ending in time", len(pending))
                await asyncio.wait(pending, timeout=1.0)
