"""How a client trial ends: the orchestrator's end reasons, and the once-only end listener.

The orchestrator tells a trial's end in three ways (worded as in `cogment.errors`): a
`TrialActionReply` with `trial_is_over` (normal end), ABORTED "trial <id> ended: <reason>" (a
service failed), and, on any later call, NOT_FOUND "trial <id> has ended: <reason>" (normal
end) or "trial <id> failed: <reason>" (failure). `classify` turns the failures into
`TrialError`.

The client ends a trial by itself, as a failure (`TrialError`), in two more cases: it lost
the orchestrator (a call about the trial found it unreachable, or heartbeats did for a while:
trials live in the orchestrator's memory, they do not survive it), or a `do_action` timed out
(the action may or may not have been applied: the trial's state is unknown).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from cogment.errors import (
    TRIAL_ABORTED,
    CogmentRpcError,
    TrialError,
    is_trial_failure,
)

log = logging.getLogger(__name__)

REASON_ORCHESTRATOR = "ended by the orchestrator"
REASON_CLIENT = "ended by this client"
REASON_STREAM_CLOSED = "the orchestrator closed the action stream"
UNREACHABLE = "cannot reach the orchestrator at {endpoint}: {details}"
REASON_LOST = "lost the orchestrator at {endpoint}: {details}"
REASON_UNKNOWN = (
    "the orchestrator at {endpoint} does not know the trial (it restarted, or another "
    "orchestrator answers there)"
)
REASON_TIMED_OUT = (
    "do_action timed out after {timeout:g} s; the trial's state is unknown (the action may "
    "have been applied), so this client ended it"
)


def lost_reason(endpoint: str, error: CogmentRpcError, extra: str = "") -> str:
    """The end reason of a trial whose orchestrator `error` (UNAVAILABLE) found unreachable."""
    details = error.message.removeprefix(UNREACHABLE.format(endpoint=endpoint, details=""))
    return REASON_LOST.format(endpoint=endpoint, details=details) + extra


def failure(trial_id: str, reason: str, cause: CogmentRpcError) -> TrialError:
    """The TrialError of a trial the client ended because of `cause` (its code, details)."""
    return TrialError(
        cause.code, TRIAL_ABORTED.format(trial_id=trial_id, reason=reason), cause.details
    )


def classify(error: CogmentRpcError) -> CogmentRpcError:
    """A status saying a service failure ended the trial becomes a TrialError."""
    if not isinstance(error, TrialError) and is_trial_failure(error.code, error.message):
        return TrialError(error.code, error.message)
    return error


class TrialEnd:
    """Whether and why a trial ended, and who is told: the end listener (at most once, from a
    background thread, only for an end this client did not ask for) and the plugins'
    `trial_ended` callbacks (once each, for any end: in the thread of `end()` when this
    client ends the trial, from a background thread otherwise)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._over = threading.Event()
        self.reason = ""
        self.error: Optional[TrialError] = None
        self.by_client = False
        self._remote = False
        self._listener: Optional[Callable[[], Any]] = None
        self._listener_called = False
        self._on_end: list[Callable[[], Any]] = []  # the plugins' trial_ended, not yet called

    @property
    def is_over(self) -> bool:
        return self._over.is_set()

    def wait(self, timeout: Optional[float]) -> bool:
        return self._over.wait(timeout)

    def claim(self) -> bool:
        """Marks the end as asked for by this client; False when it is over or already asked."""
        with self._lock:
            if self._over.is_set() or self.by_client:
                return False
            self.by_client = True
            return True

    def finish(self, reason: str, error: Optional[TrialError], remote: bool) -> bool:
        """Records the end (the first call wins); True for that first call. The caller then
        releases what the trial holds and calls `notify()`."""
        with self._lock:
            if self._over.is_set():
                return False
            if self.by_client and error is None:  # whoever saw it first, the client asked
                reason = REASON_CLIENT
            self.reason = reason
            self.error = error
            self._remote = remote and not self.by_client
            self._over.set()
            return True

    def set_listener(self, callback: Callable[[], Any]) -> None:
        with self._lock:
            self._listener = callback
        self.notify()

    def call_at_end(self, callback: Callable[[], Any]) -> None:
        """Calls `callback()` once when the trial ends (at once if it is over)."""
        with self._lock:
            self._on_end.append(callback)
        self.notify()

    def notify(self) -> None:
        """Once the trial is over, calls what is due: in this thread when the client ended
        the trial itself, in a new thread otherwise."""
        with self._lock:
            if not self._over.is_set():
                return
            due, self._on_end = self._on_end, []
            listener = self._listener
            if listener is not None and self._remote and not self._listener_called:
                self._listener_called = True
                due.append(listener)
            here = self.by_client
        if not due:
            return
        if here:
            self._run(due)
        else:
            threading.Thread(target=self._run, args=(due,), name=self._name, daemon=True).start()

    def _run(self, callbacks: list[Callable[[], Any]]) -> None:
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("%s: %r raised at the end of the trial", self._name, callback)
