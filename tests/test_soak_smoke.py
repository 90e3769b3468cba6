"""`python -m benchmarks.soak` runs end to end in a few seconds (so it cannot rot), and its
checks catch what they are for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from typing import Any

import pytest

from benchmarks import soak_report

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORT = [
    *("--seconds", "6", "--warmup", "2", "--interval", "1"),
    *("--kill-every", "1.5", "--down", "0.3", "--vanish-inactivity", "1"),
    *("--prime-delay", "0.5", "--hook-delay", "0.3"),
]


@pytest.mark.timeout(90)
def test_a_short_soak_runs_and_passes(tmp_path: Any) -> None:
    out = os.path.join(str(tmp_path), "soak.json")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", *SHORT, "--json", out],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "SOAK PASSED" in proc.stdout
    with open(out, encoding="utf-8") as f:
        document = json.load(f)
    assert document["error"] is None
    assert all(check["ok"] for check in document["checks"])
    outcomes = document["figures"]["outcomes"]
    for kind, what in (
        ("end", "ended"),
        ("env", "ended"),
        ("max_steps", "ended"),
        ("vanish", "reaped"),
        ("victim", "failed"),
    ):
        assert outcomes[kind][what] > 0, outcomes
    assert document["kills"] and all("ready" in kill for kill in document["kills"])
    phases = [sample["phase"] for sample in document["samples"]]
    assert "baseline" in phases and phases[-1] == "final"
    final = document["samples"][-1]
    assert final["trials"] == 0 and not any(final["sessions"].values())
    for role in ("orchestrator", "env", "agent", "hook"):
        assert {"rss_kib", "threads", "own_threads", "grpc_pool", "fds"} <= set(
            final["procs"][role]
        ), final["procs"][role]


def _sample(trials: int, rss: int, threads: int, fds: int) -> dict[str, Any]:
    procs = {
        role: {
            "pid": 1,
            "rss_kib": rss,
            "threads": threads + 4,
            "own_threads": threads,
            "grpc_pool": 4,
            "fds": fds,
        }
        for role in ("orchestrator", "env", "agent", "hook")
    }
    return {"trials": trials, "sessions": {"env": 0, "agent": 0, "victim": 0}, "procs": procs}


def _checks(final: dict[str, Any]) -> dict[str, bool]:
    baseline = _sample(0, 50_000, 40, 10)
    fake = types.SimpleNamespace(
        kills=[{"killed": 1.0, "ready": 2.0}],
        quiesces={
            "baseline": {"drained": True, "seconds": 1.0, "paused": 0.0, "sample": baseline},
            "final": {"drained": True, "seconds": 1.0, "paused": 100.0, "sample": final},
        },
    )
    client = {
        "outcomes": {
            "end": {"ended": 1},
            "env": {"ended": 1},
            "max_steps": {"ended": 1},
            "vanish": {"reaped": 1},
            "victim": {"ended": 1, "failed": 1},
        },
        "unexpected_count": 0,
        "victim_events": [[1.5, "failed"], [2.5, "started"]],
        "slow_start_latency": {"n": 1},
    }
    found = soak_report.checks(fake, [client], [], None)  # type: ignore[arg-type]
    return {check["name"].split(":")[0]: check["ok"] for check in found}


def test_the_checks_pass_a_run_that_left_nothing() -> None:
    assert all(_checks(_sample(0, 54_000, 44, 11)).values())  # +8 %, +4 threads, +1 fd


@pytest.mark.parametrize(
    ("final", "failing"),
    [
        (_sample(0, 56_000, 40, 10), "orchestrator"),  # RSS +12 %
        (_sample(0, 50_000, 45, 10), "env"),  # threads +12.5 %
        (_sample(0, 50_000, 40, 12), "hook"),  # fds +20 %
        (_sample(1, 50_000, 40, 10), "at the end"),  # a trial left
    ],
)
def test_the_checks_catch_what_was_left(final: dict[str, Any], failing: str) -> None:
    results = _checks(final)
    assert results[failing] is False, results
