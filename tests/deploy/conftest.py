"""Fixtures of the deploy/ tests (no Docker engine, no cluster: what can be checked here).

* `cluster` (session): deploy/city/kubernetes read into a `tests.deploy.cluster.Cluster`.
* `city_image` (session): the city image's files, staged by deploy/city/Dockerfile's COPY
  steps into a temporary folder, with its RUN steps (`cogment generate`, compileall) run
  for real there: a `tests.deploy.dockerfile.StagedImage`.
* `run_scripts(app_dir, argvs)`: runs `python SCRIPT ARGS` commands in one child process
  up to the GrpcServer or Connection each opens (`tests/deploy/run_scripts.py`); returns
  one record per command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import dockerfile
from tests.deploy.cluster import CITY_DOCKERFILE, REPO, Cluster, load_cluster

RUN_SCRIPTS = Path(__file__).resolve().parent / "run_scripts.py"


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return load_cluster()


def _runnable(command: list[str]) -> bool:
    return command[0] == "cogment" or command[:3] == ["python", "-m", "compileall"]


@pytest.fixture(scope="session")
def city_image(tmp_path_factory: pytest.TempPathFactory) -> dockerfile.StagedImage:
    root = tmp_path_factory.mktemp("city-image")
    return dockerfile.stage(CITY_DOCKERFILE, REPO, root, _runnable)


def run_scripts(app_dir: Path, argvs: list[list[str]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(RUN_SCRIPTS), str(app_dir)],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    records: list[dict[str, Any]] = json.loads(done.stdout)
    return records
