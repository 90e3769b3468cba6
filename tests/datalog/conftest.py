"""Fixtures of the datalog tests: the test project's services, recording orchestrators,
`cogment datalog serve` as a real process, and the orchestrator's log lines.

* `project` (function): BoardEnv, PlayerAgent, WatcherAgent and the pre-trial Hooks of
  tests/project/services.py on free ports; `project.params(...)` (see tests/orchestrator).
* `recording` (function): `recording(datalog, params=None, **kwargs)` starts a
  `cogment.Orchestrator` recording into `datalog` (a DatalogSettings), with the project's
  pre-trial hook; stopped at teardown.
* `connect` (function): `connect(orch)` a client Connection, closed at teardown.
* `serve_datalog` (function): `serve_datalog(db, port=0, *more_args)` runs `cogment datalog
  serve` as a process; `.port`, `.url`, `.kill()` (SIGKILL), `.stop()` (SIGTERM); stopped at
  teardown.
* `orchestrator_log` (function): the records of the `cogment` loggers; `.wait_for(text)`.
* `ended_in_store(db, trial_id)`, `stored_up_to(db, trial_id, tick)`: wait for the store.
"""

from __future__ import annotations

import logging
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import cogment
from cogment.client import Connection
from cogment.settings import DatalogSettings
from tests.conftest import endpoint
from tests.orchestrator.conftest import Project
from tests.waiting import wait_until

TIMEOUT = 20.0  # the bound of every wait in these tests
SERVE = [sys.executable, "-m", "cogment.cli", "datalog", "serve"]
LISTENING = re.compile(r"^datalog listening on (grpcs://)?[\d.]+:(\d+) \(store: (.*)\)$")


class RecordingProject(Project):
    """The test project's services, and its pre-trial hook."""

    def __init__(self, cog_settings: Any, services: Any, start_server: Callable[..., Any]):
        super().__init__(cog_settings, services, start_server)
        self.hooks = start_server(services.Hooks)


@pytest.fixture
def project(
    cog_settings: types.ModuleType,
    project_services: types.ModuleType,
    start_server: Callable[..., Any],
) -> RecordingProject:
    return RecordingProject(cog_settings, project_services, start_server)


@pytest.fixture
def recording(
    cog_settings: types.ModuleType, project: RecordingProject
) -> Iterator[Callable[..., cogment.Orchestrator]]:
    started: list[cogment.Orchestrator] = []

    def start(datalog: DatalogSettings, params: Any = None, **kwargs: Any) -> cogment.Orchestrator:
        kwargs.setdefault("pre_hooks", [endpoint(project.hooks)])
        kwargs.setdefault("response_timeout", 10.0)
        orch = cogment.Orchestrator(
            cog_settings,
            default_trial_params=params if params is not None else project.params(),
            datalog=datalog,
            **kwargs,
        )
        started.append(orch)
        return orch.start()

    yield start
    for orch in started:
        orch.stop()


@pytest.fixture
def connect(cog_settings: types.ModuleType) -> Iterator[Callable[..., Connection]]:
    opened: list[Connection] = []

    def make(orch: cogment.Orchestrator) -> Connection:
        connection = Connection(cog_settings, orch.endpoint, timeout=TIMEOUT)
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        connection.close()


class ServeProcess:
    """`cogment datalog serve --db DB --port PORT` running as its own process."""

    def __init__(self, db: Path, port: int = 0, *args: str) -> None:
        self.db = db
        self.popen = subprocess.Popen(
            [*SERVE, "--db", str(db), "--port", str(port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.popen.stdout is not None
        threading.Thread(target=self._read, args=(self.popen.stdout,), daemon=True).start()
        try:
            first = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"cogment datalog serve did not start: {self.stderr()}") from None
        match = LISTENING.match(first)
        assert match, (first, self.stderr())
        self.scheme = "grpcs://" if match.group(1) else "grpc://"
        self.port = int(match.group(2))
        assert Path(match.group(3)) == db.absolute()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    @property
    def url(self) -> str:
        return f"{self.scheme}127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: the exporter dies mid-stream."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(TIMEOUT)

    def stop(self) -> int:
        """SIGTERM: a clean stop; returns the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(TIMEOUT)

    def stderr(self) -> str:
        if self.popen.poll() is None:
            return ""
        assert self.popen.stderr is not None
        return self.popen.stderr.read()


@pytest.fixture
def serve_datalog() -> Iterator[Callable[..., ServeProcess]]:
    processes: list[ServeProcess] = []

    def start(db: Path, port: int = 0, *args: str) -> ServeProcess:
        process = ServeProcess(db, port, *args)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


class LogRecords(logging.Handler):
    """The log records of the `cogment` loggers, with a wait on the text of one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.records.append(record.getMessage())
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """The first record matching the regex `pattern` (waiting at most `timeout` s)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for text in self.records:
                    if regex.search(text):
                        return text
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no log record matching {pattern!r}: {self.records}")
                self._changed.wait(left)


@pytest.fixture
def orchestrator_log() -> Iterator[LogRecords]:
    handler = LogRecords()
    logger = logging.getLogger("cogment")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


def ended_in_store(db: Path, trial_id: str) -> tuple[Any, ...]:
    """(end_reason, samples, samples_lost), once the store holds the trial's end."""
    return wait_until(
        lambda: trial_ended_in(db, trial_id), TIMEOUT, f"{db} holds the end of trial {trial_id}"
    )


def stored_up_to(db: Path, trial_id: str, tick: int) -> None:
    """Waits until the store holds ticks 0..`tick` of the trial (and no other)."""
    ticks = list(range(tick + 1))
    wait_until(lambda: stored_ticks(db, trial_id) == ticks, TIMEOUT, f"{db} holds ticks 0..{tick}")


def sqlite(path: Path, **kwargs: Any) -> DatalogSettings:
    return DatalogSettings("sqlite", path=str(path), **kwargs)


def grpc_datalog(url: str, **kwargs: Any) -> DatalogSettings:
    return DatalogSettings("grpc", url=url, **kwargs)


def stored_ticks(db: Path, trial_id: str) -> list[int]:
    """The ticks of a trial the store holds (read with plain sqlite3)."""
    import sqlite3

    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        try:
            rows = connection.execute(
                "SELECT tick_id FROM samples WHERE trial_id = ? ORDER BY tick_id", (trial_id,)
            ).fetchall()
        except sqlite3.OperationalError:  # not created yet
            return []
    return [row[0] for row in rows]


def trial_ended_in(db: Path, trial_id: str) -> Optional[tuple[Any, ...]]:
    """(end_reason, samples, samples_lost) once the store holds the trial's end."""
    import sqlite3

    if not db.exists():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        try:
            row = connection.execute(
                "SELECT end_reason, samples, samples_lost FROM trials "
                "WHERE trial_id = ? AND running = 0",
                (trial_id,),
            ).fetchone()
        except sqlite3.OperationalError:
            return None
    return tuple(row) if row else None
