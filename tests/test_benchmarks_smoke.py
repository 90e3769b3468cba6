"""`python -m benchmarks --quick` runs end to end and writes valid results (never checks speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.timeout(150)
def test_quick_benchmarks_run_and_write_json(tmp_path: str) -> None:
    out = os.path.join(str(tmp_path), "results.json")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", out],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    with open(out, encoding="utf-8") as f:
        document = json.load(f)
    assert document["quick"] is True
    machine = document["machine"]
    assert machine["nproc"] >= 1 and machine["grpcio"] and machine["protobuf"]
    rows = {row["id"]: row for row in document["results"]}
    expected = {
        "floor.sync.c1",
        "floor.aio.c1",
        "cogment.c1",
        "cogment.c1.stream",
        "floor.stream.c1",
        "streamed.c1",
        "cogment.agent_only",
        "cogment.c8",
        "cogment.fanout",
        "cogment.p64k.snapshot",
        "cogment.p64k.delta",
        "dispatch.sync.c1",
        "dispatch.sdk.c1",
        "held.quick",
    }
    assert expected <= set(rows), f"missing: {sorted(expected - set(rows))}"
    for row_id in expected:
        row = rows[row_id]
        assert row["error"] is None, f"{row_id}: {row['error']}"
        assert isinstance(row["value"], (int, float)) and row["value"] > 0, row
        assert len(row["samples"]) == document["reps"]
    # ratios are computed against the floor of the same run
    assert rows["cogment.c1"]["floor_value"] == max(
        rows["floor.sync.c1"]["value"], rows["floor.aio.c1"]["value"]
    )
    assert rows["cogment.c1"]["ratio"] == pytest.approx(
        rows["cogment.c1"]["value"] / rows["cogment.c1"]["floor_value"], abs=1e-3
    )
    streamed = rows["streamed.c1"]  # against the unary floor and the raw streamed floor
    assert streamed["floor_value"] == rows["cogment.c1"]["floor_value"]
    assert streamed["stream_floor_value"] == rows["floor.stream.c1"]["value"]
    assert streamed["stream_ratio"] == pytest.approx(
        streamed["value"] / streamed["stream_floor_value"], abs=1e-3
    )
    held = rows["held.quick"]["rows"]
    assert [r["trials"] for r in held] == [0, 1, 20]
    assert all(r["rss_kib"] > 0 and r["threads"] > 0 for r in held)
    # the table is printed, ratio column first
    assert any(line.lstrip().startswith("ratio") for line in proc.stdout.splitlines())


@pytest.mark.timeout(250)
def test_the_web_bridge_benchmark_runs(tmp_path: str) -> None:
    """`--only web.c1`: a scripted WebSocket client through `cogment web`, next to the same
    loop on cogment.client (its floor), one short repetition each."""
    out = os.path.join(str(tmp_path), "results.json")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    command = [sys.executable, "-m", "benchmarks", "--only", "web.c1", "--json", out]
    command += ["--reps", "1", "--warmup", "0.2", "--duration", "0.5"]
    proc = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    with open(out, encoding="utf-8") as f:
        rows = {row["id"]: row for row in json.load(f)["results"]}
    assert set(rows) == {"cogment.c1.stream", "web.c1"}
    assert rows["web.c1"]["error"] is None and rows["web.c1"]["value"] > 0
    assert rows["web.c1"]["floor_value"] == rows["cogment.c1.stream"]["value"]
    assert rows["web.c1"]["cpu_us_per_tick"]["bridge"] > 0
