"""What a trial is made of: its actors, the runtime all trials share, failures."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

import grpc

from cogment.api import agent_pb2, common_pb2, environment_pb2
from cogment.settings import ActorClass

from .endpoints import Endpoints

if TYPE_CHECKING:
    from .registry import Registry

log = logging.getLogger("cogment.orchestrator")


class TrialFailure(Exception):
    """A service the trial depends on failed; `reason` names it and says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class Runtime:
    """What every trial shares: the project, the channels, the deadlines, the registry."""

    settings: Any
    endpoints: Endpoints
    registry: Registry
    default_params: common_pb2.TrialParams
    pre_hooks: Sequence[str]
    datalog_endpoint: Optional[str]
    response_timeout: float
    end_timeout: float


class Actor:
    """One actor of a trial (an agent, or a human slot when `stub` is None)."""

    __slots__ = (
        "actor_class",
        "config",
        "decide",
        "endpoint",
        "id",
        "index_in_class",
        "started",
        "stub",
    )

    def __init__(
        self,
        actor_id: int,
        actor_class: ActorClass,
        index_in_class: int,
        params: common_pb2.ActorParams,
    ) -> None:
        self.id = actor_id
        self.actor_class = actor_class
        self.index_in_class = index_in_class
        self.endpoint: str = params.endpoint
        # None when the parameters give no config: it then stays off the wire
        self.config: Optional[common_pb2.ActorConfig] = (
            params.config if params.HasField("config") else None
        )
        self.stub: Any = None  # an AgentStub (agents only)
        self.decide: Any = None  # Agent.Decide taking a request encoded by `wire`
        self.started = False

    def describe(self) -> str:
        return f"agent actor {self.id} (class {self.actor_class.id!r}) at {self.endpoint}"


def failure(where: str, method: str, error: BaseException, timeout: float) -> TrialFailure:
    """The TrialFailure for `error` raised by the call `method` on the service `where`."""
    if isinstance(error, TrialFailure):
        return error
    if isinstance(error, grpc.aio.AioRpcError):
        code = error.code()
        text = f"{code.name}: {error.details()}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            text += f" (no answer within {timeout:g} s)"
    else:
        text = repr(error)
    return TrialFailure(f"{where}: {method} failed: {text}")


def discard(step: Any) -> None:
    """Cancels a call or task no one will await (and consumes its error if it has one)."""
    if isinstance(step, asyncio.Task) and step.done():
        if not step.cancelled():
            step.exception()
    else:
        step.cancel()


def uncancel() -> None:
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
