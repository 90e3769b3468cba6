"""`Ends`: an end listener for client trials that records each call, its thread and time;
`settle(trial)`: waits until what a client does in the background for an ended trial is done.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

from tests.waiting import join_threads

# the name of the thread that calls a trial's end listener (ClientTrial: one per call)
END_LISTENER_THREAD = "cogment-end-{trial_id}"


class EndCall(NamedTuple):
    thread: str  # the name of the thread that called it
    at: float  # time.monotonic() of the call


class Ends:
    """An end listener (`trial.set_on_trial_end_event_listener(ends)`, called with no
    arguments) recording its calls."""

    def __init__(self) -> None:
        self.calls: list[EndCall] = []
        self.called = threading.Event()

    def __call__(self) -> None:
        self.calls.append(EndCall(threading.current_thread().name, time.monotonic()))
        self.called.set()


def settle(trial: Any, timeout: float = 5.0) -> None:
    """Waits until every background thread the client runs for `trial` (named
    `cogment-<what>-<trial id>`: its end listener's calls, its action or watch stream's
    reader, an end call in the background) has finished. For a trial that is over: then no
    end-listener call can still be on its way, and a test can assert there was none (or
    one) instead of sleeping first."""
    suffix = f"-{trial.id}"
    join_threads(lambda name: name.startswith("cogment-") and name.endswith(suffix), timeout)
