"""The datalog's SQLite file: its schema, and the writes and reads made of it.

Schema version 1 (`PRAGMA user_version`), in WAL mode (readers never block the writer):

    trials         one row per trial
      trial_id     TEXT PRIMARY KEY
      user_id      TEXT     the id the starting client gave
      params       BLOB     the trial's cogment.TrialParams, serialized (after pre-trial hooks)
      started_at   INTEGER  nanoseconds since the epoch
      running      INTEGER  1 until the trial's end is recorded
      ended_at     INTEGER  nanoseconds since the epoch (NULL while running)
      end_reason   TEXT     why it ended (NULL while running)
      failed       INTEGER  1 when a failure ended it
      ticks        INTEGER  the ticks played (NULL while running)
      samples      INTEGER  the samples the orchestrator made of it (NULL while running)
      samples_lost INTEGER  samples made but not stored (the recording was cut short)
    samples        one row per tick
      trial_id, tick_id    PRIMARY KEY: a sample sent again is stored once
      timestamp    INTEGER  of the tick's observations, nanoseconds since the epoch
      sample       BLOB     the cogment.DatalogSample, serialized, as the orchestrator sent it:
                            observations as sent (snapshots and deltas), actions and rewards
                            by actor id, messages
    late_feedback  feedback about a tick that arrived with a later one
      trial_id, arrived_tick, position   PRIMARY KEY (the sample that carried it, and where)
      tick_id      INTEGER  the tick it is about (indexed with trial_id)
      feedback     BLOB     the cogment.Feedback, serialized

Writes are grouped in transactions by `write`; every committed tick survives a crash of
the writing process.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Optional, Union

from cogment.errors import DatalogError

SCHEMA_VERSION = 1
BUSY_TIMEOUT = 5.0  # seconds a statement waits for another writer's lock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
    trial_id     TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL DEFAULT '',
    params       BLOB NOT NULL DEFAULT x'',
    started_at   INTEGER NOT NULL,
    running      INTEGER NOT NULL DEFAULT 1,
    ended_at     INTEGER,
    end_reason   TEXT,
    failed       INTEGER NOT NULL DEFAULT 0,
    ticks        INTEGER,
    samples      INTEGER,
    samples_lost INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS trials_by_start ON trials (started_at);
CREATE TABLE IF NOT EXISTS samples (
    trial_id  TEXT NOT NULL,
    tick_id   INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    sample    BLOB NOT NULL,
    PRIMARY KEY (trial_id, tick_id)
);
CREATE TABLE IF NOT EXISTS late_feedback (
    trial_id     TEXT NOT NULL,
    arrived_tick INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    tick_id      INTEGER NOT NULL,
    feedback     BLOB NOT NULL,
    PRIMARY KEY (trial_id, arrived_tick, position)
);
CREATE INDEX IF NOT EXISTS late_feedback_by_tick ON late_feedback (trial_id, tick_id);
"""

NOT_A_DATALOG = "{path}: not a cogment datalog (a SQLite file with other tables)"
NEWER_SCHEMA = (
    "{path}: written by a newer cogment (datalog schema {found}; this cogment knows {known})"
)

Blob = Union[bytes, memoryview]


# --------------------------------------------------------------------------- what is written


class TrialBegin(NamedTuple):
    """A trial's row (kept as it is when the trial is already known)."""

    trial_id: str
    user_id: str
    params: bytes
    started_at: int


class SampleRow(NamedTuple):
    """One tick; `sample` is the serialized DatalogSample, whole or in parts to join (of
    `size` bytes in all, when known). `late` lists the feedbacks about an earlier tick it
    carries: (tick id, Feedback bytes)."""

    trial_id: str
    tick_id: int
    timestamp: int
    sample: Union[bytes, Sequence[Blob]]
    late: Sequence[tuple[int, bytes]] = ()
    size: int = 0


class TrialEnd(NamedTuple):
    """How a trial ended; samples_lost is what the store misses of `samples`."""

    trial_id: str
    ended_at: int
    reason: str
    failed: bool
    ticks: int
    samples: int


Operation = Union[TrialBegin, SampleRow, TrialEnd]


def size_of(operation: Operation) -> int:
    """The bytes an operation holds while it waits to be written (roughly)."""
    if isinstance(operation, SampleRow):
        data = operation.size
        if not data:
            sample = operation.sample
            data = len(sample) if isinstance(sample, bytes) else sum(len(p) for p in sample)
        if operation.late:
            data += sum(len(f) + 16 for _, f in operation.late)
        return 64 + data
    if isinstance(operation, TrialBegin):
        return 64 + len(operation.params)
    return 64 + len(operation.reason)


# --------------------------------------------------------------------------- opening


def open_store(path: Union[str, os.PathLike[str]], *, readonly: bool) -> sqlite3.Connection:
    """A connection to the datalog at `path`, its schema checked (and created, with its
    folder, when writing to a new or empty file).

    Raises:
        DatalogError: the file cannot be opened, is not a datalog, or has a newer schema.
    """
    where = os.fspath(path)
    try:
        if readonly:
            if not os.path.isfile(where):
                raise DatalogError(f"{where}: no such datalog file")
            uri = Path(where).absolute().as_uri() + "?mode=ro"
            connection = sqlite3.connect(
                uri, uri=True, timeout=BUSY_TIMEOUT, check_same_thread=False
            )
        else:
            folder = os.path.dirname(os.path.abspath(where))
            os.makedirs(folder, exist_ok=True)  # `path: logs/trials.db` makes logs/
            connection = sqlite3.connect(
                where, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
    except OSError as error:
        raise DatalogError(
            f"{where}: cannot open the datalog ({error.strerror or error})"
        ) from None
    except sqlite3.Error as error:
        raise DatalogError(f"{where}: cannot open the datalog ({error})") from None
    try:
        _check_schema(connection, where, readonly)
    except BaseException:
        connection.close()
        raise
    return connection


def _check_schema(connection: sqlite3.Connection, where: str, readonly: bool) -> None:
    version = _schema_version(connection, where)
    if readonly:
        if version == 0:
            raise DatalogError(f"{where}: an empty datalog (nothing was recorded yet)")
        return
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        if version == 0:
            connection.execute("BEGIN IMMEDIATE")  # another writer may be creating it too
            try:
                if _schema_version(connection, where) == 0:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            connection.execute(statement)
                    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
    except sqlite3.Error as error:
        raise DatalogError(f"{where}: cannot write the datalog ({error})") from None


def _schema_version(connection: sqlite3.Connection, where: str) -> int:
    """The schema version of the file (0: empty), after checking it is a datalog."""
    try:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    except sqlite3.DatabaseError as error:  # not a database at all
        raise DatalogError(f"{where}: not a cogment datalog ({error})") from None
    if version > SCHEMA_VERSION:
        raise DatalogError(NEWER_SCHEMA.format(path=where, found=version, known=SCHEMA_VERSION))
    if version == 0 and tables:
        raise DatalogError(NOT_A_DATALOG.format(path=where))
    if version == SCHEMA_VERSION and not {"trials", "samples", "late_feedback"} <= tables:
        raise DatalogError(NOT_A_DATALOG.format(path=where))
    return version


# --------------------------------------------------------------------------- writing


def write(connection: sqlite3.Connection, operations: Sequence[Operation]) -> None:
    """Writes `operations` in one transaction (rolled back when one of them fails).

    Raises:
        sqlite3.Error: as SQLite raised it (the caller decides whether to retry).
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        samples: list[tuple[str, int, int, Blob]] = []
        for op in operations:
            if isinstance(op, SampleRow):
                data = op.sample if isinstance(op.sample, bytes) else b"".join(op.sample)
                samples.append((op.trial_id, op.tick_id, op.timestamp, data))
                if op.late:
                    _write_samples(connection, samples)
                    connection.executemany(
                        "INSERT OR IGNORE INTO late_feedback "
                        "(trial_id, arrived_tick, position, tick_id, feedback) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [
                            (op.trial_id, op.tick_id, i, tick, feedback)
                            for i, (tick, feedback) in enumerate(op.late)
                        ],
                    )
                continue
            _write_samples(connection, samples)
            if isinstance(op, TrialBegin):
                connection.execute(
                    "INSERT OR IGNORE INTO trials (trial_id, user_id, params, started_at) "
                    "VALUES (?, ?, ?, ?)",
                    (op.trial_id, op.user_id, op.params, op.started_at),
                )
            else:
                _write_end(connection, op)
        _write_samples(connection, samples)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _write_samples(connection: sqlite3.Connection, rows: list[tuple[str, int, int, Blob]]) -> None:
    if rows:
        connection.executemany(
            "INSERT OR IGNORE INTO samples (trial_id, tick_id, timestamp, sample) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )
        rows.clear()


def _write_end(connection: sqlite3.Connection, end: TrialEnd) -> None:
    stored = connection.execute(
        "SELECT count(*) FROM samples WHERE trial_id = ?", (end.trial_id,)
    ).fetchone()[0]
    lost = max(0, end.samples - stored)
    connection.execute(
        "INSERT OR IGNORE INTO trials (trial_id, started_at) VALUES (?, ?)",
        (end.trial_id, end.ended_at),
    )
    connection.execute(
        "UPDATE trials SET running = 0, ended_at = ?, end_reason = ?, failed = ?, ticks = ?, "
        "samples = ?, samples_lost = ? WHERE trial_id = ?",
        (end.ended_at, end.reason, int(end.failed), end.ticks, end.samples, lost, end.trial_id),
    )


def is_busy(error: sqlite3.Error) -> bool:
    """Whether `error` is another connection holding the lock (worth retrying)."""
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def now_ns() -> int:
    return time.time_ns()


# --------------------------------------------------------------------------- reading


class TrialRow(NamedTuple):
    trial_id: str
    user_id: str
    params: bytes
    started_at: int
    running: bool
    ended_at: Optional[int]
    end_reason: Optional[str]
    failed: bool
    ticks: Optional[int]
    samples: Optional[int]
    samples_lost: int
    stored: int  # samples in the store
    last_tick: Optional[int]  # the highest tick stored


_TRIAL_COLUMNS = (
    "t.trial_id, t.user_id, t.params, t.started_at, t.running, t.ended_at, t.end_reason, "
    "t.failed, t.ticks, t.samples, t.samples_lost, "
    "(SELECT count(*) FROM samples s WHERE s.trial_id = t.trial_id), "
    "(SELECT max(tick_id) FROM samples s WHERE s.trial_id = t.trial_id)"
)


def _trial_row(row: tuple) -> TrialRow:  # type: ignore[type-arg]
    values = list(row)
    values[2] = bytes(values[2] or b"")
    values[4] = bool(values[4])
    values[7] = bool(values[7])
    return TrialRow(*values)


def read_trials(connection: sqlite3.Connection) -> list[TrialRow]:
    """Every trial, the first started first."""
    rows = connection.execute(
        f"SELECT {_TRIAL_COLUMNS} FROM trials t ORDER BY t.started_at, t.trial_id"
    )
    return [_trial_row(row) for row in rows]


def read_trial(connection: sqlite3.Connection, trial_id: str) -> Optional[TrialRow]:
    """The trial `trial_id`, or None."""
    row = connection.execute(
        f"SELECT {_TRIAL_COLUMNS} FROM trials t WHERE t.trial_id = ?", (trial_id,)
    ).fetchone()
    return _trial_row(row) if row is not None else None


def trial_ids_starting_with(connection: sqlite3.Connection, prefix: str) -> list[str]:
    """The ids of the trials whose id starts with `prefix` (at most a few)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = connection.execute(
        "SELECT trial_id FROM trials WHERE trial_id LIKE ? ESCAPE '\\' LIMIT 5",
        (escaped + "%",),
    )
    return [row[0] for row in rows]


def read_samples(
    connection: sqlite3.Connection, trial_id: str, after: int = -1
) -> Iterator[tuple[int, int, bytes]]:
    """(tick id, timestamp, serialized sample) of the ticks after `after`, in order."""
    rows = connection.execute(
        "SELECT tick_id, timestamp, sample FROM samples WHERE trial_id = ? AND tick_id > ? "
        "ORDER BY tick_id",
        (trial_id, after),
    )
    for tick_id, timestamp, sample in rows:
        yield tick_id, timestamp, bytes(sample)


def read_late_feedback(connection: sqlite3.Connection, trial_id: str) -> dict[int, list[bytes]]:
    """The late feedbacks of a trial by the tick they are about, in arrival order."""
    found: dict[int, list[bytes]] = {}
    rows = connection.execute(
        "SELECT tick_id, feedback FROM late_feedback WHERE trial_id = ? "
        "ORDER BY arrived_tick, position",
        (trial_id,),
    )
    for tick_id, feedback in rows:
        found.setdefault(tick_id, []).append(bytes(feedback))
    return found
