"""`cogment gym init` / `cogment pettingzoo init`: the project runs with `cogment generate` and
an orchestrator unchanged, beside the built-in settings in one process, and its play.py
plays; the CLI's errors. (`cogment launch` of such a project runs in tests/bridges/
test_example.py: the example's project is what `cogment gym init` writes.)"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

gymnasium = pytest.importorskip("gymnasium")
pytest.importorskip("pettingzoo")

import cogment  # noqa: E402
from cogment.bridges import messages  # noqa: E402
from cogment.cli import main  # noqa: E402
from cogment.cogment_yaml import load_spec  # noqa: E402
from cogment.generate import generate  # noqa: E402
from cogment.gym import GymEnvironment, TrialEnv  # noqa: E402
from tests.bridges.conftest import TIMEOUT  # noqa: E402
from tests.bridges.test_messages import REPO_ROOT  # noqa: E402


def load_generated(python_dir: Path, name: str) -> types.ModuleType:
    """A project's generated cog_settings, imported under `name` (not `cog_settings`, which
    the other tests' project holds)."""
    sys.path.insert(0, str(python_dir))
    try:
        spec = importlib.util.spec_from_file_location(name, python_dir / "cog_settings.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(python_dir))
    return module


@pytest.fixture
def cartpole_project(tmp_path: Path) -> Iterator[types.ModuleType]:
    directory = tmp_path / "cartpole"
    assert main(["gym", "init", "CartPole-v1", str(directory), "--env-port", "9102"]) == 0
    generate(str(directory / "cogment.yaml"), str(directory))  # as a user would, in place
    yield load_generated(directory, "cartpole_project_cog_settings")


@pytest.mark.timeout(90)
def test_the_project_runs_beside_the_built_in_settings(
    cartpole_project: types.ModuleType, serve: Callable[..., str]
) -> None:
    """The orchestrator on the project's generated settings, the env on the built-in ones,
    and a TrialEnv on the project's, in one process: the descriptor pool sees one file."""
    project = cartpole_project
    player = project.actor_classes.player
    assert player.observation_space is messages.module().Observation  # the very same class
    endpoint = serve(GymEnvironment("CartPole-v1"))
    params = project.default_trial_params
    assert params.environment.endpoint == "grpc://localhost:9102"
    params.environment.endpoint = endpoint
    with cogment.Orchestrator(
        project, default_trial_params=params, response_timeout=TIMEOUT
    ) as orchestrator:
        env = TrialEnv(project, orchestrator.endpoint, timeout=TIMEOUT)
        try:
            assert env.observation_space == gymnasium.make("CartPole-v1").observation_space
            observation, _ = env.reset(seed=0)
            expected, _ = gymnasium.make("CartPole-v1").reset(seed=0)
            assert (observation == expected).all()
            done = False
            while not done:
                _, _, terminated, truncated, _ = env.step(1)
                done = terminated or truncated
            assert terminated
        finally:
            env.close()
        # the project's play.py, as `cogment launch` runs it (its own process, in the folder)
        played = subprocess.run(
            [sys.executable, "play.py", "--orchestrator", orchestrator.endpoint, "--episodes", "2"],
            cwd=os.path.dirname(str(project.__file__)),
            env=dict(os.environ, PYTHONPATH=REPO_ROOT),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert played.returncode == 0, played.stdout + played.stderr
    lines = played.stdout.strip().splitlines()
    assert len(lines) == 2 and all("(the environment ended the trial)" in x for x in lines), lines


def test_the_written_project_is_what_cogment_reads(tmp_path: Path) -> None:
    directory = tmp_path / "taxi"
    assert main(["gym", "init", "Taxi-v3", str(directory), "--orchestrator-port", "9100"]) == 0
    names = sorted(os.listdir(directory))
    assert names == ["README.md", "cogment.yaml", "cogment_bridges.proto", "launch.yaml", "play.py"]
    spec = load_spec(str(directory / "cogment.yaml"))
    assert [c.id for c in spec.actor_classes] == ["player", "observer"]
    assert spec.trial_params.environment_config is not None
    assert spec.trial_params.environment_config["env_id"] == "Taxi-v3"
    with (
        open(directory / "cogment_bridges.proto", "rb") as copy,
        open(
            os.path.join(REPO_ROOT, "cogment", "bridges", "cogment_bridges.proto"), "rb"
        ) as original,
    ):
        assert copy.read() == original.read()
    assert "orchestrator: {port: 9100}" in (directory / "launch.yaml").read_text()
    assert "localhost:9100" in (directory / "play.py").read_text()


def test_init_refuses_to_overwrite_and_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(tmp_path / "p")
    assert main(["gym", "init", "CartPole-v1", directory]) == 0
    capsys.readouterr()
    cases = [
        (["gym", "init", "CartPole-v1", directory], "already exists (pass --force"),
        (
            ["gym", "init", "Nope-v3", str(tmp_path / "q")],
            "unknown Gymnasium environment 'Nope-v3'",
        ),
        (["gym", "serve", "Nope-v3", "--port", "0"], "unknown Gymnasium environment 'Nope-v3'"),
        (
            ["gym", "init", "CartPole-v1", str(tmp_path / "r"), "--env-port", "9000"],
            "cannot share port 9000",
        ),
        (["pettingzoo", "serve", "nowhere:make"], "cannot import 'nowhere'"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert main(["gym", "init", "CartPole-v1", directory, "--force"]) == 0


def test_a_pettingzoo_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    directory = tmp_path / "relay"
    assert main(["pettingzoo", "init", "tests.bridges.pz_envs:make_relay", str(directory)]) == 0
    spec = load_spec(str(directory / "cogment.yaml"))
    assert [a.endpoint for a in spec.trial_params.actors] == ["human"] * 3
    agents = spec.trial_params.environment_config["agents"]  # type: ignore[index]
    assert [a["name"] for a in agents] == ["runner_0", "runner_1", "runner_2"]
    assert "TrialParallelEnv" in (directory / "play.py").read_text()
