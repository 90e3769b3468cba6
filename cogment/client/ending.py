"""How a client trial ends: the orchestrator's end reasons, and the once-only end listener.

The orchestrator tells a trial's end in three ways: a `TrialActionReply` with
`trial_is_over` (normal end), ABORTED "trial <id> ended: <reason>" (a service failed), and,
on any later call, NOT_FOUND "trial <id> has ended: <reason>" (either). `classify` turns the
last into a `TrialError` when the reason is not one of the normal ends.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

import grpc

from cogment.errors import CogmentRpcError, TrialError
from cogment.orchestrator.registry import INACTIVITY
from cogment.orchestrator.tick import ENDED_BY_CLIENT, ENDED_BY_ENV, MAX_STEPS_REACHED, SHUTDOWN

log = logging.getLogger(__name__)

REASON_ORCHESTRATOR = "ended by the orchestrator"
REASON_CLIENT = "ended by this client"
REASON_STREAM_CLOSED = "the orchestrator closed the action stream"
HAS_ENDED = " has ended: "
# how the orchestrator words the end of a trial that ended without a failure; any other
# reason in "trial <id> has ended: <reason>" names a service that failed
_NORMAL_ENDS = (ENDED_BY_CLIENT, ENDED_BY_ENV, SHUTDOWN)
_NORMAL_END_PREFIXES = tuple(t.split("{", 1)[0] for t in (MAX_STEPS_REACHED, INACTIVITY))


def reason_of(message: str) -> str:
    """The reason in "trial <id> has ended: <reason>" / "trial <id> ended: <reason>"."""
    for marker in (HAS_ENDED, " ended: "):
        if marker in message:
            return message.split(marker, 1)[1]
    return message


def ended_by_failure(reason: str) -> bool:
    """Whether an orchestrator's end reason says a service failed, rather than the trial
    ending normally (client, environment, max_steps, inactivity, shutdown)."""
    return reason not in _NORMAL_ENDS and not reason.startswith(_NORMAL_END_PREFIXES)


def classify(error: CogmentRpcError) -> CogmentRpcError:
    """NOT_FOUND "trial <id> has ended: <a failure>" becomes a TrialError, as ABORTED is."""
    if (
        error.code is grpc.StatusCode.NOT_FOUND
        and not isinstance(error, TrialError)
        and HAS_ENDED in error.message
        and ended_by_failure(reason_of(error.message))
    ):
        return TrialError(error.code, error.message)
    return error


class TrialEnd:
    """Whether and why a trial ended, and its end listener (called at most once, from a
    background thread, and only for an end this client did not ask for)."""

    def __init__(self, subject: Any, name: str) -> None:
        self._subject = subject  # what the listener is called with
        self._name = name
        self._lock = threading.Lock()
        self._over = threading.Event()
        self.reason = ""
        self.error: Optional[TrialError] = None
        self.by_client = False
        self._remote = False
        self._listener: Optional[Callable[[Any], Any]] = None
        self._called = False

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

    def set_listener(self, callback: Callable[[Any], Any]) -> None:
        with self._lock:
            self._listener = callback
        self.notify()

    def notify(self) -> None:
        """Calls the listener in a new thread if the trial ended remotely and it was not yet."""
        with self._lock:
            callback = self._listener
            if callback is None or self._called or not self._remote:
                return
            self._called = True
        threading.Thread(target=self._run, args=(callback,), name=self._name, daemon=True).start()

    def _run(self, callback: Callable[[Any], Any]) -> None:
        try:
            callback(self._subject)
        except Exception:
            log.exception("%s: the end listener raised", self._name)
