"""The datalog: every trial recorded into a SQLite store, and read back for training.

* `open_datalog(path, cog_settings)` reads a store (`reader.py`): its trials, their samples
  decoded with the project's types (`samples.py`), one actor's steps, a running trial
  followed sample by sample.
* The store itself (`store.py`: the schema, versioned) is written by one thread
  (`writer.py`), in the orchestrator (`datalog: {type: sqlite}`) or in
  `cogment datalog serve` (`exporter.py`), the LogExporter service that several
  orchestrators can record into.
* `cogment datalog serve|ls|show|export` (`cli.py`).
"""

from __future__ import annotations

from cogment.errors import DatalogError

from .reader import ActorSteps, Datalog, RecordedTrial, open_datalog
from .samples import ByActor, Sample

__all__ = [
    "ActorSteps",
    "ByActor",
    "Datalog",
    "DatalogError",
    "RecordedTrial",
    "Sample",
    "open_datalog",
]
