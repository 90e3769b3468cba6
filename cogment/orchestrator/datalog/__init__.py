"""Recording trials: each trial's samples written to a SQLite store, or streamed to a
LogExporter, off the event loop's critical path.

A trial talks to its `TrialRecording` (interface.py) and to nothing else of this package: one
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

from typing import Optional

from cogment.settings import DatalogSettings

from ..endpoints import Endpoints
from .interface import Recorder, TrialRecording


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
