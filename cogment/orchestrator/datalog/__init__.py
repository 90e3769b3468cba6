"""Recording trials: each trial's samples written to a SQLite store, or streamed to a
LogExporter, off the event loop's critical path.

A trial talks to its `TrialRecording` (below) and to nothing else of this module: one
sample a tick (`tick`), and how it ended (`end`). A `Recorder` (one per orchestrator) makes
them, and flushes what they queued when the orchestrator stops.

* What is queued is bounded in bytes (`datalog.max_queue_bytes`, for all trials together):
  `tick` never blocks, but returns an awaitable when the bound is reached; the trial's next
  tick waits on it. Nothing is dropped to keep up.
* `end` does not wait: the trial tells its clients at once, the recording drains after.
* When recording fails (the store cannot be written, the exporter stays unreachable or
  rejects the stream, or no sample could be stored for `response_timeout` seconds), the
  trial ends with a reason naming the datalog and the error; with `on_failure: continue`
  it goes on, unrecorded, and the samples lost are logged (and, when the store can still
  be told how the trial ended, recorded with it).

`sqlite.py`: the samples go to a `cogment.datalog.writer.StoreWriter` thread.
`exporter.py`: each trial has a task streaming to the exporter, which waits for it to be
ready, cuts a long trial into several Log streams (each answered stream confirms its
samples: until then they are kept, within the bound), reopens a stream that broke and sends
again what it had not confirmed. `samples.py`: what both share (samples encoded by hand,
the failure rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Protocol

from cogment.api import agent_pb2, common_pb2
from cogment.settings import DatalogSettings

from .. import wire
from ..endpoints import Endpoints
from .samples import Fail, Routed


class TrialRecording(Protocol):
    """The recording of one trial, as the trial sees it (event loop only)."""

    def tick(
        self,
        tick_id: int,
        observations: wire.EnvReply,
        actions: Sequence[bytes],
        rewards: dict[int, agent_pb2.Reward],
        routed: Routed,
        late: Sequence[common_pb2.Feedback],
    ) -> bool:
        """Queues the sample of a tick: the observations it was played on, the actions by
        actor id, the rewards and messages it gave, and late feedback about earlier ticks.
        Returns True when the queue is full: the next tick should wait for `room()`."""

    async def room(self) -> None:
        """Returns once the queue has room (or recording failed: see the module doc)."""

    def end(
        self,
        tick_id: int,
        observations: Optional[wire.EnvReply],
        rewards: dict[int, agent_pb2.Reward],
        routed: Routed,
        reason: str,
        failed: bool,
    ) -> None:
        """The trial is over at `tick_id`, on `observations` (None when there were none),
        with the rewards and messages given after its last tick: queues the last sample and
        the trial's end; never waits."""


class Recorder(Protocol):
    """Makes the recordings of an orchestrator's trials (event loop only)."""

    where: str

    async def open(self) -> None:
        """Opens the store (sqlite). Raises ConfigurationError when it cannot be."""

    def trial(
        self, trial_id: str, user_id: str, params: common_pb2.TrialParams, fail: Fail
    ) -> TrialRecording:
        """A trial's recording; `fail(reason)` ends the trial (on_failure: end)."""

    def pending(self) -> int:
        """Samples queued and not stored yet."""

    async def close(self, timeout: float) -> None:
        """Stores everything queued (waiting at most `timeout` s), then closes."""


def make_recorder(
    settings: DatalogSettings, endpoints: Endpoints, response_timeout: float
) -> Optional[Recorder]:
    """The recorder of a `datalog:` section (None for type none)."""
    if settings.type == "sqlite":
        from .sqlite import SqliteRecorder

        return SqliteRecorder(settings, response_timeout)
    if settings.type == "grpc":
        from .exporter import GrpcRecorder

        return GrpcRecorder(settings, endpoints, response_timeout)
    return None


def describe(settings: Optional[DatalogSettings]) -> str:
    """The datalog as the orchestrator's first log line names it."""
    if settings is None or settings.type == "none":
        return "no datalog"
    return f"datalog {settings.where}" + (
        " (on_failure: continue)" if settings.on_failure == "continue" else ""
    )


__all__ = ["Recorder", "TrialRecording", "describe", "make_recorder"]
