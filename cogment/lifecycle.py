"""`Lifecycle`: the states of what cogment starts and stops (`GrpcServer`, `Orchestrator`),
and the one error for using one out of order."""

from __future__ import annotations

import enum

from cogment.errors import LifecycleError


class Lifecycle(enum.Enum):
    """Made, then started once, then stopped for good."""

    CREATED = "created"
    STARTED = "started"
    STOPPED = "stopped"


def misuse(owner: str, call: str, state: Lifecycle) -> LifecycleError:
    """The error of calling `owner.call()` on an object in `state`."""
    remedy = f"; make a new {owner}" if state is Lifecycle.STOPPED else ""
    return LifecycleError(f"{owner}.{call}(): this {owner} was already {state.value}{remedy}")
