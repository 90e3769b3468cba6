"""Service calls a trial makes at its edges: cancelling the ones nobody awaits, and `End`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, Optional

from cogment.api import agent_pb2, environment_pb2

from .actors import Actor

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


async def end_services(
    trial_id: str, env: Optional[tuple[Any, str]], agents: Sequence[Actor], timeout: float
) -> None:
    """Calls End on the environment (stub, description) and on `agents`, concurrently, best
    effort: failures are only logged."""
    calls = []
    names = []
    if env is not None:
        calls.append(env[0].End(environment_pb2.EnvEndRequest(trial_id=trial_id), timeout=timeout))
        names.append(env[1])
    for agent in agents:
        request = agent_pb2.AgentEndRequest(trial_id=trial_id, actor_id=agent.id)
        calls.append(agent.stub.End(request, timeout=timeout))
        names.append(agent.describe())
    results = await asyncio.gather(*calls, return_exceptions=True)
    for name, result in zip(names, results):
        if isinstance(result, BaseException):
            log.debug("trial %s: End on %s failed: %s", trial_id, name, result)
