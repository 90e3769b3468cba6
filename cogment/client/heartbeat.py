"""One background thread per Connection that keeps its idle trials alive with `Heartbeat`,
and the rule that says when failing heartbeats mean the orchestrator is gone."""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional, Protocol

log = logging.getLogger(__name__)

# An idle trial's orchestrator is lost when this many heartbeats in a row found it unreachable
# (UNAVAILABLE) over at least this many seconds: a network blip or a reconnection (gRPC backs
# off about 1 s) is not the end of a trial, an orchestrator gone for good is.
LOST_AFTER_BEATS = 3
LOST_AFTER_SECONDS = 5.0


class Unreachable:
    """Counts the heartbeats in a row that found the orchestrator unreachable."""

    def __init__(self) -> None:
        self.count = 0
        self.since = 0.0  # time.monotonic() of the first of them

    def reached(self) -> None:
        """A heartbeat got an answer (whatever it was): the orchestrator is there."""
        self.count = 0

    def failed(self, now: float) -> bool:
        """One more unreachable heartbeat; True when the orchestrator counts as lost."""
        if self.count == 0:
            self.since = now
        self.count += 1
        return self.count >= LOST_AFTER_BEATS and now - self.since >= LOST_AFTER_SECONDS

    def describe(self, now: float) -> str:
        """What to add to the end reason: how long the heartbeats failed."""
        return f" ({self.count} heartbeats failed in a row over {now - self.since:.1f} s)"


class Beating(Protocol):
    """What the heartbeat thread needs of a trial (a ClientTrial's `Contact` provides it)."""

    def heartbeat_due(self, now: float, interval: float) -> bool:
        """True when the trial is idle and has been quiet for `interval` seconds."""
        ...

    def send_heartbeat(self) -> None:
        """Sends one Heartbeat; handles (never raises) its errors."""
        ...


class HeartbeatThread:
    """Sends a heartbeat for each registered trial that has been idle for `interval` seconds.

    The thread starts with the first registered trial and runs until `stop()`.
    """

    def __init__(self, interval: float, name: str = "cogment-heartbeat") -> None:
        self.interval = interval
        self._name = name
        self._lock = threading.Lock()
        self._trials: list[Beating] = []
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        # how often the thread looks at its trials: often enough to be on time, at most 1 s
        self._poll = min(max(interval / 4.0, 0.02), 1.0)

    def register(self, trial: Beating) -> None:
        """Sends heartbeats for `trial` from now on (starts the thread if need be)."""
        with self._lock:
            if self._stopping.is_set():
                return
            if trial not in self._trials:
                self._trials.append(trial)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def unregister(self, trial: Beating) -> None:
        """No more heartbeats for `trial` (idempotent)."""
        with self._lock:
            if trial in self._trials:
                self._trials.remove(trial)

    @property
    def registered(self) -> int:
        """How many trials the thread keeps alive."""
        with self._lock:
            return len(self._trials)

    @property
    def is_running(self) -> bool:
        """True while the thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def stop(self, timeout: Optional[float] = 5.0) -> None:
        """Stops the thread (idempotent); waits at most `timeout` seconds for it (0: not at
        all, see `join`)."""
        with self._lock:
            self._stopping.set()
            self._trials.clear()
        if timeout:
            self.join(timeout)

    def join(self, timeout: float) -> None:
        """Waits at most `timeout` seconds for a stopped thread to finish."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self._poll):
            now = time.monotonic()
            with self._lock:
                trials = list(self._trials)
            for trial in trials:
                if self._stopping.is_set():
                    return
                try:
                    if trial.heartbeat_due(now, self.interval):
                        trial.send_heartbeat()
                except Exception:  # never let one trial stop the others' heartbeats
                    log.exception("heartbeat failed")
