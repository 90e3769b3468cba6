"""examples/gym, run for real in its quick form: `cogment launch examples/gym/launch.yaml
--quick` (the env, the orchestrator and train.py in their own processes)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("gymnasium")

from cogment.bridges.gym_env import GymEnvironment
from cogment.bridges.project import project_files
from tests.bridges.test_messages import REPO_ROOT

EXAMPLE = os.path.join(REPO_ROOT, "examples", "gym")
TRAINED = re.compile(
    r"^train +\| trained: average return (?P<average>[\d.]+) over 2 episodes after "
    r"(?P<episodes>\d+) episodes in [\d.]+ s"
)
AGENT = re.compile(r"^train +\| as a PolicyAgent: returns \[(?P<returns>\d+)\]")


def test_the_example_project_is_what_gym_init_writes() -> None:
    with open(os.path.join(EXAMPLE, "cogment.yaml"), encoding="utf-8") as f:
        written = f.read()
    expected = project_files("gym", "CartPole-v1", GymEnvironment("CartPole-v1").config)
    assert written == expected["cogment.yaml"]
    with (
        open(os.path.join(EXAMPLE, "cogment_bridges.proto"), "rb") as copy,
        open(
            os.path.join(REPO_ROOT, "cogment", "bridges", "cogment_bridges.proto"), "rb"
        ) as original,
    ):
        assert copy.read() == original.read()


@pytest.mark.timeout(120)
def test_the_example_trains_then_serves_the_policy() -> None:
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "cogment.cli", "launch"),
            *(os.path.join(EXAMPLE, "launch.yaml"), "--free-ports", "--timeout", "90"),
            "--quick",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    output = result.stdout
    assert result.returncode == 0, output[-3000:] + result.stderr[-3000:]
    trained = [m for m in map(TRAINED.match, output.splitlines()) if m]
    assert len(trained) == 1, output[-3000:]
    assert int(trained[0]["episodes"]) == 5 + 2  # one iteration of 5, then 2 evaluations
    agent = [m for m in map(AGENT.match, output.splitlines()) if m]
    assert len(agent) == 1 and int(agent[0]["returns"]) >= 8, output[-3000:]
