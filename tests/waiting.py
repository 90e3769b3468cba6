"""Waiting for events in tests, never for time (STYLE.md, practice 18).

Wait on what announces an event where there is one (a `threading.Event`, a future, a reply,
a recorded call); a test that asserts something did *not* happen first waits for a later
event that would have come after it. For the rest:

* `wait_until(predicate, timeout, message)`: polls a condition that no event announces (a
  journal entry, a call a fake recorded, a process gone) and fails with `message` when it
  is not met in time.
* `join_threads(match, timeout)`: waits for every live thread whose name `match` accepts to
  finish (the background threads a client starts for a trial, say).
* `TrialLookups(orch)`: records the trials an in-process Orchestrator looked up to serve
  client calls, so a test can wait until a call it sent has reached its trial.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")

POLL = 0.01  # seconds between two looks at a condition


def wait_until(
    predicate: Callable[[], Optional[T]], timeout: float, message: str, *, interval: float = POLL
) -> T:
    """Polls `predicate` until it returns a true value, and returns that value.

    Args:
        predicate: the condition (called from the test's thread).
        timeout: seconds after which the wait fails: a hang fails instead of stalling.
        message: what was waited for ("a heartbeat reached the fake"), for the failure.
        interval: seconds between two calls of `predicate`.

    Raises:
        AssertionError: the condition was not met within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting until {message} (last value: {value!r})"
            )
        time.sleep(interval)  # the poll interval: what is awaited is the predicate


def join_threads(match: Callable[[str], bool], timeout: float = 5.0) -> None:
    """Waits until no live thread has a name `match` accepts, including threads that those
    threads start meanwhile (a stream's reader that starts an end listener's thread).

    Raises:
        AssertionError: some are still alive after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        current = threading.current_thread()
        alive = [t for t in threading.enumerate() if t is not current and match(t.name)]
        if not alive:
            return
        for thread in alive:
            thread.join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline and any(t.is_alive() for t in alive):
            names = [t.name for t in alive if t.is_alive()]
            raise AssertionError(f"threads still alive after {timeout:g} s: {names}")


class TrialLookups:
    """The trial ids an in-process `cogment.Orchestrator` looked up to serve client calls
    (Action, ActionStream, Heartbeat, Join, End, ...), in order.

    It wraps the lookup of the orchestrator's registry of live trials, which every call about
    a trial goes through. A call is filed with its trial (a pending action, a watcher) in the
    same event-loop step as its lookup, so once `wait` returns, anything the test asks of the
    orchestrator next (`orch.stop()` goes through that event loop too) comes after the call.
    """

    def __init__(self, orch: Any) -> None:
        self._changed = threading.Condition()
        self._ids: list[str] = []
        registry = orch._server.registry
        lookup = registry.get

        def get(trial_id: str) -> Any:
            try:
                return lookup(trial_id)
            finally:
                with self._changed:
                    self._ids.append(trial_id)
                    self._changed.notify_all()

        registry.get = get

    def count(self, trial_id: str) -> int:
        """How many calls about `trial_id` reached the orchestrator so far."""
        with self._changed:
            return self._ids.count(trial_id)

    def wait(self, trial_id: str, count: int, timeout: float, message: str) -> None:
        """Waits until `count` calls about `trial_id` reached the orchestrator in all.

        Raises:
            AssertionError: fewer did within `timeout` seconds (`message` says what they are).
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self._ids.count(trial_id) >= count, timeout):
                seen = self._ids.count(trial_id)
                raise AssertionError(
                    f"timed out after {timeout:g} s waiting until {message} "
                    f"({seen} of {count} calls about trial {trial_id} arrived)"
                )
