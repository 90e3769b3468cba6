"""Service calls a trial makes at its edges: cancelling the ones nobody awaits, and `End`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

log = logging.getLogger("cogment.orchestrator")


def consume(future: asyncio.Future[Any]) -> None:
    """Retrieves the outcome of a done future (so asyncio never reports an exception nobody
    retrieved: whoever awaits it still gets it)."""
    if not future.cancelled():
        future.exception()


def spawn(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """A task of the trial's: its failure is raised to whoever awaits it, and never reported
    as unretrieved when nobody does (the trial ended first)."""
    task = asyncio.get_running_loop().create_task(coroutine)
    task.add_done_callback(consume)
    return task


def discard(step: Any) -> None:
    """Cancels a call or task no one will await (and consumes its error if it has one)."""
    if isinstance(step, asyncio.Task) and step.done():
        if not step.cancelled():
            step.exception()
    else:
        step.cancel()


def uncancel() -> None:
    """Clears the cancellation of the current task, so it can still await its cleanup."""
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()


class Ending(Protocol):
    """A transport to a service (`transport.py`), as far as its End goes."""

    async def end(self) -> None:
        """End: the trial is over."""


async def end_services(trial_id: str, services: Sequence[tuple[Ending, str]]) -> None:
    """Calls End on `services` (transport, description), concurrently, best effort: failures
    are only logged."""
    results = await asyncio.gather(
        *(transport.end() for transport, _ in services), return_exceptions=True
    )
    for (_, name), result in zip(services, results):
        if isinstance(result, BaseException):
            log.debug("trial %s: End on %s failed: %s", trial_id, name, result)
