"""`cogment datalog ls|show|export` on a recorded store, run as a user would (processes),
and the store's checks (missing, foreign, newer files)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Callable

import pytest
from google.protobuf import json_format

from cogment import cli
from cogment.datalog import DatalogError, open_datalog
from cogment.datalog import store as datalog_store
from tests.conftest import PROJECT_DIR
from tests.datalog.conftest import TIMEOUT, ended_in_store, sqlite


def cogment_datalog(*args: str, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    """`cogment datalog ARGS` as a process (for what loads the project's settings)."""
    return subprocess.run(
        [sys.executable, "-m", "cogment.cli", "datalog", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        cwd=cwd,
    )


@pytest.fixture
def recorded(
    tmp_path: Path,
    recording: Callable[..., Any],
    connect: Callable[..., Any],
    cog_settings: types.ModuleType,
) -> tuple[Path, list[str]]:
    """A store with two trials: 4 ticks ended by the client, then 2 ticks still running
    when the orchestrator stopped (ended by its shutdown)."""
    from data_pb2 import Chat, Move

    db = tmp_path / "trials.db"
    orch = recording(sqlite(db))
    connection = connect(orch)
    first = connection.start_trial(cog_settings.actor_classes.player, user_id="ann")
    for t in range(4):
        if t == 1:
            first.actors.watcher[0].send_message(Chat(text="hi"))
        first.do_action(Move(cell=t))
    first.end()
    second = connection.start_trial(cog_settings.actor_classes.player, user_id="bob")
    for t in range(2):
        second.do_action(Move(cell=t))
    orch.stop()
    ended_in_store(db, second.id)
    return db, [first.id, second.id]


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`cogment datalog ARGS` in this process (for what needs no project): status, out, err."""
    code = cli.main(["datalog", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ls_lists_one_line_per_trial(
    recorded: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, (first, second) = recorded
    code, out, _err = in_process(capsys, "ls", str(db))
    assert code == 0
    lines = out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["TRIAL", "USER", "STARTED", "TICKS", "END"]
    rows = [re.split(r"\s{2,}", line) for line in lines[1:]]
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        (first, "ann", "4", "ended by a client"),
        (second, "bob", "2", "orchestrator shutdown"),
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[0][2])


def test_show_prints_a_trial_tick_by_tick(recorded: tuple[Path, list[str]]) -> None:
    db, (first, _second) = recorded
    run = cogment_datalog("show", str(db), first[:8])  # a prefix will do; ./cogment.yaml decodes
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"trial {first} (user ann)"
    assert "4 ticks, ended" in lines[1] and lines[1].endswith(": ended by a client")
    assert lines[2].startswith("  actors: player[0] (human), player[1] (grpc://127.0.0.1:")
    ticks = [line for line in lines if line.startswith("tick ")]
    assert [line.split()[1] for line in ticks] == ["0", "1", "2", "3", "4"]
    assert ticks[-1].endswith("the end")
    tick2 = lines[lines.index(ticks[2]) + 1 : lines.index(ticks[3])]
    assert tick2[0].split()[:3] == ["player[0]", "action", "cell:"]
    assert "observation cells: " in tick2[0]
    assert any(line == '  message 0 -> 2: testproject.Chat text: "hi"' for line in lines)


def test_export_writes_decoded_samples_as_json_lines(
    recorded: tuple[Path, list[str]], tmp_path: Path, cog_settings: types.ModuleType
) -> None:
    db, (first, _second) = recorded
    out = tmp_path / "out.jsonl"
    run = cogment_datalog(
        "export", str(db), first, "--jsonl", str(out), "--file", str(PROJECT_DIR / "cogment.yaml"),
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"5 samples of 1 trial written to {out}"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    with open_datalog(db, cog_settings) as log:
        samples = list(log.trial(first).samples())
    assert [r["tick_id"] for r in records] == [s.tick_id for s in samples] == [0, 1, 2, 3, 4]
    for record, sample in zip(records, samples):
        assert (record["trial_id"], record["user_id"]) == (first, "ann")
        assert record["timestamp"] == sample.timestamp
        assert record["observations"]["player"][0] == json_format.MessageToDict(
            sample.observations.player[0], preserving_proto_field_name=True
        )
        assert len(record["observations"]["watcher"]) == 1
        if not sample.last:
            cell = sample.actions.player[0].cell
            assert record["actions"]["player"][0] == ({"cell": cell} if cell else {})
    to_watcher = [m for m in records[1]["messages"] if m["receiver_id"] == 2]
    assert to_watcher == [
        {"sender_id": 0, "receiver_id": 2, "payload": {"@type": "testproject.Chat", "text": "hi"}}
    ]


def test_errors_are_one_line(
    tmp_path: Path, recorded: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, (_first, _second) = recorded
    missing = cogment_datalog("ls", str(tmp_path / "nope.db"))
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == f"error: {tmp_path / 'nope.db'}: no such datalog file\n"
    assert in_process(capsys, "show", str(db), "zzz", "--file", str(tmp_path / "x.yaml")) == (
        1, "", f"error: {tmp_path / 'x.yaml'}: no such file\n",
    )  # fmt: skip
    no_project = in_process(capsys, "export", str(db), "--jsonl", "-")  # none in ./ either
    assert no_project[0] == 1 and "give its cogment.yaml with --file" in no_project[2]


def test_show_without_the_project_shows_the_latest_trial_undecoded(
    tmp_path: Path, recorded: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, (_first, second) = recorded
    moved = tmp_path / "elsewhere" / "trials.db"  # no cogment.yaml next to it, nor in ./
    moved.parent.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{db}{suffix}").exists():
            Path(f"{db}{suffix}").rename(f"{moved}{suffix}")
    code, out, _err = in_process(capsys, "show", str(moved))
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"trial {second} (user bob)"
    assert "samples shown undecoded" in out
    assert lines[-1].startswith("tick 2: observations of [")
    unknown = in_process(capsys, "show", str(moved), "zzz")
    assert unknown == (1, "", f"error: {moved}: no trial 'zzz' in this datalog\n")


def test_what_is_not_a_datalog_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(DatalogError, match="not a cogment datalog"):
        open_datalog(foreign)
    text = tmp_path / "text.db"
    text.write_text("hello\n" * 300)
    with pytest.raises(DatalogError, match="not a cogment datalog"):
        open_datalog(text)
    newer = tmp_path / "newer.db"
    datalog_store.open_store(newer, readonly=False).close()
    with sqlite3.connect(newer) as connection:
        connection.execute("PRAGMA user_version = 99")
    with pytest.raises(DatalogError, match=r"written by a newer cogment \(datalog schema 99"):
        open_datalog(newer)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(DatalogError, match="an empty datalog"):
        open_datalog(empty)


def test_a_sample_sent_again_is_stored_once(tmp_path: Path) -> None:
    db = tmp_path / "trials.db"
    connection = datalog_store.open_store(db, readonly=False)
    begin = datalog_store.TrialBegin("t1", "u", b"", 5)
    row = datalog_store.SampleRow("t1", 3, 7, [b"\x0a\x02t1"], [(1, b"\x08\x00")])
    datalog_store.write(connection, [begin, row])
    datalog_store.write(connection, [begin, row, row])
    datalog_store.write(connection, [datalog_store.TrialEnd("t1", 9, "done", False, 3, 4)])
    (trial,) = datalog_store.read_trials(connection)
    assert (trial.stored, trial.samples, trial.samples_lost, trial.running) == (1, 4, 3, False)
    assert list(datalog_store.read_samples(connection, "t1")) == [(3, 7, b"\x0a\x02t1")]
    assert datalog_store.read_late_feedback(connection, "t1") == {1: [b"\x08\x00"]}
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    assert version == datalog_store.SCHEMA_VERSION == 1
    connection.close()
