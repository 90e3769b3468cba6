"""When recording fails: an exporter killed mid-trial (the trial ends naming it, or goes on
and counts what was lost), one restarted (nothing lost), and a clean orchestrator shutdown
with samples still queued (none lost)."""

from __future__ import annotations

import sqlite3
import threading
import time
import types
from pathlib import Path
from typing import Any, Callable

import pytest

import cogment
from cogment.datalog import open_datalog
from tests.datalog.conftest import (
    TIMEOUT,
    LogRecords,
    ServeProcess,
    ended_in_store,
    grpc_datalog,
    sqlite,
    stored_ticks,
    stored_up_to,
    trial_ended_in,
)

WINDOW = 1.5  # the orchestrators' response timeout here: how long a datalog may be away


def _play(trial: Any, ticks: range) -> None:
    from data_pb2 import Move

    for t in ticks:
        trial.do_action(Move(cell=t % 4))


def test_an_exporter_killed_mid_trial_ends_the_trial_naming_it(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    serve_datalog: Callable[..., ServeProcess],
    cog_settings: types.ModuleType,
) -> None:
    from data_pb2 import Move

    db = tmp_path / "trials.db"
    serve = serve_datalog(db)
    orch = recording(grpc_datalog(serve.url), response_timeout=WINDOW)
    trial = connect(orch).start_trial(cog_settings.actor_classes.player)
    _play(trial, range(3))
    stored_up_to(db, trial.id, 2)
    serve.kill()
    deadline = time.monotonic() + TIMEOUT
    with pytest.raises(cogment.TrialError) as caught:
        while time.monotonic() < deadline:  # the trial fails once the window has passed
            trial.do_action(Move(cell=1))
    assert f"datalog {serve.url} failed: " in caught.value.message
    assert trial.is_over and trial.end_reason.startswith(f"datalog {serve.url} failed: ")
    assert stored_ticks(db, trial.id) == [0, 1, 2]
    with open_datalog(db) as log:  # the store never heard of the end: it says so
        (recorded,) = log.trials()
        assert recorded.running and not recorded.complete


def test_with_on_failure_continue_the_trial_goes_on_and_the_loss_is_recorded(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    serve_datalog: Callable[..., ServeProcess],
    orchestrator_log: LogRecords,
    cog_settings: types.ModuleType,
) -> None:
    db = tmp_path / "trials.db"
    serve = serve_datalog(db)
    datalog = grpc_datalog(serve.url, on_failure="continue")
    orch = recording(datalog, response_timeout=WINDOW)
    trial = connect(orch).start_trial(cog_settings.actor_classes.player)
    _play(trial, range(3))
    stored_up_to(db, trial.id, 2)
    serve.kill()
    _play(trial, range(3, 6))  # samples 3..5 can go nowhere
    orchestrator_log.wait_for(rf"trial {trial.id}: datalog .* failed: .*goes on unrecorded")
    serve_datalog(db, port=serve.port)  # back, too late for this trial's samples
    _play(trial, range(6, 8))
    trial.end()
    assert not trial.error  # nothing failed, as far as the trial goes
    # ticks 0..7 and the last observation: 9 samples made, 3 stored
    assert ended_in_store(db, trial.id) == ("ended by a client", 9, 6)
    orchestrator_log.wait_for(rf"trial {trial.id}: datalog .*: \d of its 9 samples lost")
    with open_datalog(db, cog_settings) as log:
        recorded = log.trial(trial.id)
        assert (recorded.samples_lost, recorded.cut_short, recorded.complete) == (6, True, False)
        assert [s.tick_id for s in recorded.samples()] == [0, 1, 2]


def test_an_exporter_back_within_the_window_loses_nothing(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    serve_datalog: Callable[..., ServeProcess],
    cog_settings: types.ModuleType,
) -> None:
    db = tmp_path / "trials.db"
    serve = serve_datalog(db)
    orch = recording(grpc_datalog(serve.url), response_timeout=TIMEOUT)
    trial = connect(orch).start_trial(cog_settings.actor_classes.player)
    _play(trial, range(3))
    stored_up_to(db, trial.id, 2)
    serve.kill()  # mid-stream: what it did not confirm is sent again
    _play(trial, range(3, 5))
    serve_datalog(db, port=serve.port)
    _play(trial, range(5, 8))
    trial.end()
    assert ended_in_store(db, trial.id) == ("ended by a client", 9, 0)
    with open_datalog(db, cog_settings) as log:
        recorded = log.trial(trial.id)
        assert recorded.complete
        assert [s.tick_id for s in recorded.samples()] == list(range(9))


def test_a_clean_shutdown_stores_every_queued_sample(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    orchestrator_log: LogRecords,
    cog_settings: types.ModuleType,
) -> None:
    db = tmp_path / "trials.db"
    orch = recording(sqlite(db))
    trial = connect(orch).start_trial(cog_settings.actor_classes.player)
    _play(trial, range(3))
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the orchestrator's writes wait: samples pile up
    stopping = threading.Thread(target=orch.stop)
    try:
        _play(trial, range(3, 10))
        stopping.start()
        orchestrator_log.wait_for(r"storing \d+ queued samples")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    stopping.join(TIMEOUT)
    assert not stopping.is_alive()
    assert trial_ended_in(db, trial.id) == ("orchestrator shutdown", 11, 0)
    with open_datalog(db, cog_settings) as log:
        assert [s.tick_id for s in log.trial(trial.id).samples()] == list(range(11))


def test_a_store_that_cannot_be_opened_is_a_configuration_error(
    tmp_path: Path, recording: Callable[..., Any]
) -> None:
    (tmp_path / "notes.db").write_text("not a database, just notes\n" * 100)
    with pytest.raises(
        cogment.ConfigurationError, match=r"datalog: .*notes.db: not a cogment datalog"
    ):
        recording(sqlite(tmp_path / "notes.db"))
    with pytest.raises(cogment.ConfigurationError, match=r"datalog: .*cannot open the datalog"):
        recording(sqlite(tmp_path / "notes.db" / "inside-a-file.db"))
    orch = recording(sqlite(tmp_path / "new" / "folder" / "trials.db"))  # made as needed
    assert (tmp_path / "new" / "folder" / "trials.db").exists()
    orch.stop()


def test_sigterm_to_cogment_orchestrator_stores_every_queued_sample(
    tmp_path: Path, project: Any, cog_settings: types.ModuleType
) -> None:
    """`cogment orchestrator` as a process: SIGTERM while the store is locked (samples pile
    up in the queue); it stores them all before it exits."""
    import queue
    import shutil
    import signal
    import subprocess
    import sys

    from cogment.client import Connection
    from tests.conftest import PROJECT_DIR, endpoint

    for name in ("cogment.yaml", "data.proto", "delta.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    text = (tmp_path / "cogment.yaml").read_text()
    text = text.replace("  pre_hooks:\n    - grpc://127.0.0.1:9003\n", "")
    text = text.replace("grpc://127.0.0.1:9002", endpoint(project.env))
    text = text.replace("grpc://127.0.0.1:9001", endpoint(project.player), 1)
    text = text.replace("grpc://127.0.0.1:9001", endpoint(project.watcher), 1)
    text += "datalog: {type: sqlite, path: trials.db}\n"
    (tmp_path / "cogment.yaml").write_text(text)
    db = tmp_path / "trials.db"
    command = [sys.executable, "-m", "cogment.cli", "orchestrator", "--file", "cogment.yaml"]
    process = subprocess.Popen(
        [*command, "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs: queue.Queue[str] = queue.Queue()

    def read_logs() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            logs.put(line)

    threading.Thread(target=read_logs, daemon=True).start()
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"datalog sqlite:{db})" in line, line
        port = int(line.split(" on 127.0.0.1:")[1].split()[0])
        with Connection(cog_settings, f"127.0.0.1:{port}", timeout=TIMEOUT) as connection:
            no_rounds = cog_settings.trial.config_type()  # no end but ours
            trial = connection.start_trial(cog_settings.actor_classes.player, trial_cfg=no_rounds)
            _play(trial, range(2))
            stored_up_to(db, trial.id, 1)
            blocker = sqlite3.connect(db, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                _play(trial, range(2, 6))
                process.send_signal(signal.SIGTERM)
                while "storing" not in (text := logs.get(timeout=TIMEOUT)):
                    pass
                assert "queued samples" in text
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert process.wait(TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert trial_ended_in(db, trial.id) == ("orchestrator shutdown", 7, 0)
