"""`Ends`: an end listener for client trials that records each call, its thread and time."""

from __future__ import annotations

import threading
import time
from typing import NamedTuple


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
