"""`cogment generate` reports every malformed cogment.yaml as one clear line (exit code 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cogment import generate
from cogment.errors import ConfigurationError

PROTO = """
syntax = "proto3";
package city;
message Observation { int32 x = 1; }
message ObservationDelta { int32 dx = 1; }
message DriverAction { int32 turn = 1; }
message EnvConfig { int32 lanes = 1; }
message DriverConfig { string name = 1; }
message TrialConfig { int32 lanes = 1; }
"""

DELTA = """
def apply_delta(previous, delta):
    previous.x += delta.dx
    return previous
"""

VALID = """
import:
  proto: [city.proto]
  python: [delta]
trial:
  config_type: city.TrialConfig
  pre_hooks: [grpc://localhost:9003]
environment:
  config_type: city.EnvConfig
actor_classes:
  - id: driver
    config_type: city.DriverConfig
    action: {space: city.DriverAction}
    observation:
      space: city.Observation
      delta: city.ObservationDelta
      delta_apply_fn: {python: delta.apply_delta}
trial_params:
  max_steps: 10
  max_inactivity: 5
  environment:
    endpoint: grpc://localhost:9002
    config: {lanes: 4}
  actors:
    - actor_class: driver
      endpoint: human
    - actor_class: driver
      endpoint: grpc://localhost:9001
      config: {name: bob}
datalog:
  type: grpc
  url: grpc://localhost:9004
"""


def make_project(tmp_path: Path, yaml_text: str) -> Path:
    (tmp_path / "city.proto").write_text(PROTO)
    (tmp_path / "delta.py").write_text(DELTA)
    path = tmp_path / "cogment.yaml"
    path.write_text(textwrap.dedent(yaml_text))
    return path


def run_generate(path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = generate.main(["--file", str(path), "--python_dir", str(out)])
    return code, capsys.readouterr().err


def test_valid_project_generates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_project(tmp_path, VALID)
    code, err = run_generate(path, tmp_path / "out", capsys)
    assert (code, err) == (0, "")
    assert {"cog_settings.py", "city_pb2.py", "city_pb2_grpc.py"} <= set(
        os.listdir(tmp_path / "out")
    )


def test_grpcs_endpoints_are_valid_everywhere(tmp_path: Path) -> None:
    from cogment.cogment_yaml import load_spec

    path = make_project(tmp_path, VALID.replace("grpc://", "grpcs://"))
    spec = load_spec(str(path))
    assert spec.pre_hooks == ("grpcs://localhost:9003",)
    assert spec.trial_params.environment_endpoint == "grpcs://localhost:9002"
    assert [a.endpoint for a in spec.trial_params.actors] == ["human", "grpcs://localhost:9001"]
    assert spec.datalog_url == "grpcs://localhost:9004"


def test_replicas_are_a_list_string_or_a_yaml_list(tmp_path: Path) -> None:
    from cogment.cogment_yaml import load_spec

    text = VALID.replace(
        "pre_hooks: [grpc://localhost:9003]", "pre_hooks: ['grpc://10.0.0.1:9003,10.0.0.2:9003']"
    ).replace(
        "endpoint: grpc://localhost:9002",
        "endpoint: [grpcs://10.0.0.1:9002, grpcs://10.0.0.2:9002]",
    )
    spec = load_spec(str(make_project(tmp_path, text)))
    assert spec.pre_hooks == ("grpc://10.0.0.1:9003,10.0.0.2:9003",)
    assert spec.trial_params.environment_endpoint == "grpcs://10.0.0.1:9002,grpcs://10.0.0.2:9002"
    mixed = text.replace("grpcs://10.0.0.2:9002", "grpc://10.0.0.2:9002")
    with pytest.raises(
        ConfigurationError, match=r"trial_params\.environment\.endpoint: .*list of replicas"
    ):
        load_spec(str(make_project(tmp_path, mixed)))
    no_list = VALID.replace("url: grpc://localhost:9004", "url: grpc://a:9004,b:9004")
    with pytest.raises(
        ConfigurationError,
        match=r"datalog\.url: .*expected grpc://host:port or grpcs://host:port\)",
    ):
        load_spec(str(make_project(tmp_path, no_list)))


# (what replaces what in VALID, the key the error must name, words it must contain)
CASES = {
    "type named by file, not package": (
        ("space: city.DriverAction", "space: city_pb2.DriverAction"),
        "actor_classes[0].action.space",
        "no imported proto defines a message 'city_pb2.DriverAction'",
    ),
    "unknown type": (
        ("delta: city.ObservationDelta", "delta: city.Nope"),
        "actor_classes[0].observation.delta",
        "'city.Nope'",
    ),
    "unknown actor class in trial_params": (
        (
            "    - actor_class: driver\n      endpoint: human",
            "    - actor_class: pilot\n      endpoint: human",
        ),
        "trial_params.actors[0].actor_class",
        "unknown actor class 'pilot'",
    ),
    "missing action space": (
        ("action: {space: city.DriverAction}", "action: {}"),
        "actor_classes[0].action.space",
        "missing",
    ),
    "missing action": (
        ("    action: {space: city.DriverAction}\n", ""),
        "actor_classes[0].action",
        "missing",
    ),
    "missing observation space": (
        ("      space: city.Observation\n", ""),
        "actor_classes[0].observation.space",
        "missing",
    ),
    "actor endpoint neither human nor grpc": (
        ("endpoint: grpc://localhost:9001", "endpoint: http://localhost:9001"),
        "trial_params.actors[1].endpoint",
        "'http://localhost:9001' is not a valid endpoint (expected 'human', grpc://host:port "
        "or grpcs://host:port, or a list of replicas grpc://host:port,host:port)",
    ),
    "endpoint without a port": (
        ("endpoint: grpc://localhost:9002", "endpoint: grpc://localhost"),
        "trial_params.environment.endpoint",
        "not a valid endpoint",
    ),
    "environment cannot be human": (
        ("endpoint: grpc://localhost:9002", "endpoint: human"),
        "trial_params.environment.endpoint",
        "not a valid endpoint",
    ),
    "pre-hook endpoint": (
        ("pre_hooks: [grpc://localhost:9003]", "pre_hooks: [localhost:9003]"),
        "trial.pre_hooks[0]",
        "not a valid endpoint",
    ),
    "datalog url": (
        ("url: grpc://localhost:9004", "url: grpc://localhost:99999"),
        "datalog.url",
        "not a valid endpoint",
    ),
    "config field the type lacks": (
        ("config: {lanes: 4}", "config: {lanes: 4, speed: 3}"),
        "trial_params.environment.config.speed",
        "city.EnvConfig has no field 'speed'",
    ),
    "actor config field the type lacks": (
        ("config: {name: bob}", "config: {nickname: bob}"),
        "trial_params.actors[1].config.nickname",
        "city.DriverConfig has no field 'nickname'",
    ),
    "config value of the wrong type": (
        ("config: {lanes: 4}", "config: {lanes: many}"),
        "trial_params.environment.config",
        "city.EnvConfig",
    ),
    "config without a config type": (
        ("  config_type: city.EnvConfig\n", "  {}\n"),
        "trial_params.environment.config",
        "no config_type",
    ),
    "unknown top-level key": (
        ("datalog:", "datalogs:"),
        "datalogs",
        "unknown key",
    ),
    "duplicate actor class": (
        (
            "trial_params:",
            "  - id: driver\n    action: {space: city.DriverAction}\n    observation: {space: city.Observation}\ntrial_params:",
        ),
        "actor_classes[1].id",
        "declared twice",
    ),
    "missing proto file": (
        ("proto: [city.proto]", "proto: [town.proto]"),
        "import.proto[0]",
        "'town.proto' not found",
    ),
    "delta module not imported": (
        ("python: [delta]", "python: []"),
        "actor_classes[0].observation.delta_apply_fn.python",
        "not listed under import.python",
    ),
    "delta function missing": (
        ("python: delta.apply_delta}", "python: delta.apply_it}"),
        "actor_classes[0].observation.delta_apply_fn.python",
        "has no function 'apply_it'",
    ),
    "python module that does not exist": (
        ("python: [delta]", "python: [delta, nosuchmodule]"),
        "import.python[1]",
        "module 'nosuchmodule' is neither next to cogment.yaml nor installed",
    ),
    "negative max_steps": (
        ("max_steps: 10", "max_steps: -1"),
        "trial_params.max_steps",
        "whole number",
    ),
    "type name without package": (
        ("config_type: city.DriverConfig", "config_type: DriverConfig"),
        "actor_classes[0].config_type",
        "package.Message",
    ),
    "actor class not a map": (
        ("actor_classes:\n  - id: driver", "actor_classes:\n  - driver\n  - id: driver"),
        "actor_classes[0]",
        "expected a map",
    ),
    "unknown datalog type": (
        ("type: grpc", "type: postgres"),
        "datalog.type",
        "'postgres' is not supported (expected sqlite, grpc or none)",
    ),
    "sqlite datalog without a path": (
        ("type: grpc\n  url: grpc://localhost:9004", "type: sqlite"),
        "datalog.path",
        "missing (required)",
    ),
    "a path for a grpc datalog": (
        ("url: grpc://localhost:9004", "url: grpc://localhost:9004\n  path: t.db"),
        "datalog.path",
        "only for type sqlite (the type is grpc)",
    ),
    "unknown on_failure": (
        ("url: grpc://localhost:9004", "url: grpc://localhost:9004\n  on_failure: retry"),
        "datalog.on_failure",
        "'retry' is not supported (expected end or continue)",
    ),
    "tiny datalog queue": (
        ("url: grpc://localhost:9004", "url: grpc://localhost:9004\n  max_queue_bytes: 10"),
        "datalog.max_queue_bytes",
        "too small",
    ),
}


@pytest.mark.parametrize("name", ["2d-grid.proto", "class/city.proto", "sub dir/city.proto"])
def test_a_proto_python_cannot_import_is_refused(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(PROTO)
    path = make_project(tmp_path, VALID.replace("proto: [city.proto]", f"proto: [{name!r}]"))
    out = tmp_path / "out"
    code, err = run_generate(path, out, capsys)
    assert code == 1
    assert err.strip().startswith(
        f"error: {path}: import.proto[0]: {name!r} compiles to the module "
    )
    assert "which Python cannot import" in err and len(err.strip().splitlines()) == 1
    assert not out.exists(), "nothing is written"


def test_a_proto_with_a_dash_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "city-map.proto").write_text(PROTO)
    path = make_project(tmp_path, VALID.replace("proto: [city.proto]", "proto: [city-map.proto]"))
    code, err = run_generate(path, tmp_path / "out", capsys)
    assert code == 0, err
    assert (tmp_path / "out" / "city_map_pb2.py").exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_project_is_one_clear_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (old, new), key, words = CASES[case]
    assert old in VALID, f"test case {case!r} does not apply"
    path = make_project(tmp_path, VALID.replace(old, new, 1))
    out = tmp_path / "out"
    code, err = run_generate(path, out, capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {path}: {key}:"), lines[0]
    assert words in lines[0]
    assert not out.exists() or not os.listdir(out), (
        "nothing is written when the project is malformed"
    )


def test_invalid_yaml_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_project(tmp_path, VALID.replace("max_steps: 10", "max_steps: [10"))
    code, err = run_generate(path, tmp_path / "out", capsys)
    assert code == 1
    assert err.startswith(f"error: {path}: line ") and "invalid YAML" in err


def test_proto_syntax_error_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_project(tmp_path, VALID)
    (tmp_path / "city.proto").write_text(PROTO.replace("int32 x = 1;", "int32 x = ;"))
    code, err = run_generate(path, tmp_path / "out", capsys)
    assert code == 1
    assert "city.proto" in err and "Traceback" not in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_generate(tmp_path / "nope.yaml", tmp_path / "out", capsys)
    assert code == 1
    assert f"{tmp_path / 'nope.yaml'}: cannot read the file" in err


def test_console_script_reports_without_traceback(tmp_path: Path) -> None:
    path = make_project(tmp_path, VALID.replace("space: city.Observation", "space: city.Obs"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cogment.cli",
            "generate",
            "--file",
            str(path),
            "--python_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "actor_classes[0].observation.space" in result.stderr
