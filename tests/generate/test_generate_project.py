"""`cogment generate` on the test project: what user code reads from cog_settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1] / "project" / "cogment.yaml"

READ_SETTINGS = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import cog_settings as s
from cogment.settings import ActorClass
player, watcher = s.actor_classes.player, s.actor_classes.watcher
table = s.ObservationTable([2, 1])
assert s.ObservationsTable is s.ObservationTable
table.player[0] = player.observation_delta(cell=1, value=2)
table.player[1] = player.observation_space(cells=[1])
table.watcher[0].snapshot = watcher.observation_space()
actions = s.ActionsTable([2, 1])
params = s.default_trial_params
print(json.dumps({
    "ids": [c.id for c in s.actor_classes],
    "is_actor_class": isinstance(player, ActorClass),
    "player": [player.id, player.action_space.DESCRIPTOR.full_name,
               player.observation_space.DESCRIPTOR.full_name,
               player.observation_delta.DESCRIPTOR.full_name,
               player.observation_delta_apply_fn.__name__, player.config_type.DESCRIPTOR.full_name],
    "watcher": [watcher.observation_delta is watcher.observation_space,
                watcher.observation_delta_apply_fn, watcher.config_type],
    "trial_config": s.trial.config_type.DESCRIPTOR.full_name,
    "env_config": s.environment.config_type.DESCRIPTOR.full_name,
    "snapshots": [slot.is_snapshot for slot in table.all],
    "actions": [type(a).__name__ for a in actions.all],
    "pre_hooks": s.pre_hooks,
    "datalog": s.datalog,
    "max_steps": params.max_steps, "max_inactivity": params.max_inactivity,
    "env": [params.environment.endpoint,
            str(s.environment.config_type.FromString(params.environment.config.content)).split()],
    "trial": s.trial.config_type.FromString(params.trial_config.content).rounds,
    "actors": [[a.actor_class, a.endpoint, a.config.content.decode(errors="replace")]
               for a in params.actors],
    "present": [params.HasField("trial_config"), params.environment.HasField("config"),
                *(a.HasField("config") for a in params.actors)],
}))
"""


def test_generated_settings_expose_the_project(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "cogment.generate",
            "--file",
            str(PROJECT),
            "--python_dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.strip() == f"generated {out / 'cog_settings.py'}"
    # run from elsewhere: cog_settings finds the project's python modules (delta.py) itself
    result = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS, str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ids"] == ["player", "watcher"]
    assert data["is_actor_class"]
    assert data["player"] == [
        "player",
        "testproject.Move",
        "testproject.Board",
        "testproject.BoardDelta",
        "apply_board_delta",
        "testproject.PlayerConfig",
    ]
    assert data["watcher"] == [True, None, None]
    assert data["trial_config"] == "testproject.TrialConfig"
    assert data["env_config"] == "testproject.EnvConfig"
    assert data["snapshots"] == [False, True, True]
    assert data["actions"] == ["Move", "Move", "Nothing"]
    assert data["pre_hooks"] == ["grpc://127.0.0.1:9003"]
    assert data["datalog"] is None
    assert (data["max_steps"], data["max_inactivity"]) == (100, 30)
    assert data["env"] == ["grpc://127.0.0.1:9002", ["size:", "4", "label:", '"default"']]
    assert data["trial"] == 3
    assert [a[:2] for a in data["actors"]] == [
        ["player", "human"],
        ["player", "grpc://127.0.0.1:9001"],
        ["watcher", "grpc://127.0.0.1:9001"],
    ]
    assert "alice" in data["actors"][1][2]
    assert data["present"] == [True, True, False, True, False]  # configs only where given


def test_generate_twice_overwrites(tmp_path: Path) -> None:
    for _ in range(2):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "cogment.cli",
                "generate",
                f"--file={PROJECT}",
                f"--python_dir={tmp_path}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".py") == [
        "cog_settings.py",
        "data_pb2.py",
        "data_pb2_grpc.py",
    ]
