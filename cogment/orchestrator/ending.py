"""How a trial ends, owned by one object: `TrialEnd`.

A trial ends once, for one reason, by whoever sees it first: its own task (the environment
ended it, `max_steps`, a failing service, a start refused), a client's `End`, the
inactivity timer, or the orchestrator's shutdown. Each of them calls `TrialEnd.finish` (or
`end` from outside the trial's task); the first call wins and is the only writer of the
end: the reason, whether it failed, what the Start call and the waiting clients are told,
the inactivity timer, the tombstone the registry keeps (through the `on_over` callback).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Optional, Protocol, Union

import grpc

from cogment.api import orchestrator_pb2
from cogment.endpoint import GRPCS_SCHEME
from cogment.errors import CogmentRpcError, StatusError
from cogment.tls import explained

from . import status
from .humans import OVER_REPLY, Aborted, Reply

log = logging.getLogger("cogment.orchestrator")

ENDED_BY_CLIENT = "ended by a client"
ENDED_BY_ENV = "the environment ended the trial"
MAX_STEPS_REACHED = "max_steps ({max_steps}) reached"
SHUTDOWN = "orchestrator shutdown"
INACTIVITY = "no activity from any human for {limit:g} s (max_inactivity)"

StartResult = Union[orchestrator_pb2.TrialStartReply, StatusError]


class Waiters(Protocol):
    """The clients waiting on a trial (its human slots)."""

    def stop_waiting(self) -> None:
        """The trial waits for no more actions."""

    def notify(self, answer: Reply) -> None:
        """Answers every waiting client: the trial is over (`answer`)."""


def service_failure(where: str, method: str, error: BaseException, timeout: float) -> StatusError:
    """The failure (ABORTED: it ends the trial) of the call `method` on the service `where`
    (which ends with the service's endpoint), whatever its transport: a unary call's
    `AioRpcError` and a streamed call's `CogmentRpcError` read the same; what it says of TLS
    comes first."""
    if isinstance(error, grpc.aio.AioRpcError):
        code, details = error.code(), error.details() or ""
    elif isinstance(error, CogmentRpcError):  # the same status, from a call on a stream
        code, details = error.code, error.message
    elif isinstance(error, StatusError):  # a failure of ours, that names the service already
        return error
    else:
        code = None
    if code is not None:
        if code == grpc.StatusCode.UNAVAILABLE:
            details = explained(details, secure=GRPCS_SCHEME in where)
        text = f"{code.name}: {details}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            text += f" (no answer within {timeout:g} s)"
    else:
        text = repr(error)
    return StatusError(grpc.StatusCode.ABORTED, f"{where}: {method} failed: {text}")


class TrialEnd:
    """Whether, why and how one trial ended, and who is told (event loop only).

    Args:
        trial_id: the trial's id.
        waiters: its human slots.
        on_over: called once with (trial id, reason, failed) when the trial is over.
        interrupt: stops the trial's task (called when it is ended from outside).
    """

    def __init__(
        self,
        trial_id: str,
        waiters: Waiters,
        on_over: Callable[[str, str, bool], None],
        interrupt: Callable[[], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        self._trial_id = trial_id
        self._waiters = waiters
        self._on_over = on_over
        self._interrupt = interrupt
        self._loop = loop
        self.reason = ""
        self.failed = False
        self.started: asyncio.Future[StartResult] = loop.create_future()
        """What the Start call answers: the start reply, or the status it fails with."""
        self.told: asyncio.Future[Reply] = loop.create_future()
        """What clients waiting on the trial's end are told (set once they are)."""
        self._timer: Optional[asyncio.TimerHandle] = None

    @property
    def over(self) -> bool:
        """True once the trial has ended."""
        return bool(self.reason)

    def started_with(self, reply: orchestrator_pb2.TrialStartReply) -> None:
        """The trial started: the Start call gets `reply` (unless it ended meanwhile)."""
        if not self.started.done():
            self.started.set_result(reply)

    def finish(
        self, reason: str, *, failed: bool = False, start_error: Optional[StatusError] = None
    ) -> bool:
        """Ends the trial (the first call wins; True for it): records why, answers a Start
        still waiting (`start_error`, or ABORTED), stops waiting for actions, and tells the
        clients at once after a failure (after a normal end, the trial tells them once its
        services got their End: `tell_clients`)."""
        if self.over:
            return False
        self.reason = reason or "ended"
        self.failed = failed
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._on_over(self._trial_id, self.reason, failed)
        if not self.started.done():
            self.started.set_result(start_error or status.aborted(self._trial_id, self.reason))
        self._waiters.stop_waiting()
        if failed:  # nothing to wait for from a failed service: tell the clients at once
            log.warning("trial %s ended: %s", self._trial_id, self.reason)
            self.tell_clients()
        else:
            log.info("trial %s ended: %s", self._trial_id, self.reason)
        return True

    def finish_by(self, error: BaseException) -> None:
        """Ends the trial because its task raised `error`: a service failure (ABORTED), a
        refused start (the status Start answers with), or a bug of ours."""
        if isinstance(error, StatusError):
            start_error = None if error.code is grpc.StatusCode.ABORTED else error
            self.finish(error.message, failed=True, start_error=start_error)
            return
        log.error("trial %s: internal error", self._trial_id, exc_info=error)
        self.finish(f"orchestrator internal error: {error!r}", failed=True)

    def end(self, reason: str, *, failed: bool = False) -> None:
        """Ends the trial from outside its task (a client's End, inactivity, shutdown, a
        failed datalog)."""
        if self.finish(reason, failed=failed):
            self._interrupt()

    def tell_clients(self) -> None:
        """Tells every waiting client that the trial is over (once)."""
        if self.told.done():
            return
        reply: Reply = (
            Aborted(status.aborted(self._trial_id, self.reason)) if self.failed else OVER_REPLY
        )
        self._waiters.notify(reply)
        self.told.set_result(reply)

    def watch_inactivity(self, limit: float, idle_for: Callable[[float], Optional[float]]) -> None:
        """Ends the trial once `idle_for(now)` (seconds without human activity, None while no
        human is waited for) reaches `limit`: checked by a timer, not at the next request."""

        def check() -> None:
            self._timer = None
            if self.over:
                return
            idle = idle_for(self._loop.time())
            if idle is not None and idle >= limit:
                self.end(INACTIVITY.format(limit=limit))
                return
            self._timer = self._loop.call_later(limit if idle is None else limit - idle, check)

        if not self.over:
            self._timer = self._loop.call_later(limit, check)
