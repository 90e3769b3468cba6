"""The launch file and the command line: every mistake is one clear line."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from cogment.launch import parse_options
from cogment.launch_config import LaunchError, is_stale, load_launch_config, rewrite_endpoint
from tests.launch.conftest import CITY, CITY_LAUNCH, run_launch, write_launch_file

CLIENT = "client:\n  command: python driver.py\n"


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "launch.yaml"
    path.write_text(text, encoding="utf-8")
    return load_launch_config(str(path))


def test_the_city_launch_file() -> None:
    config = load_launch_config(str(CITY_LAUNCH))
    assert config.project == str(CITY / "cogment.yaml")
    assert config.python_dir == str(CITY)
    assert config.orchestrator_port == 9000
    assert [(s.name, s.port) for s in config.services] == [
        ("environment", 9002),
        ("pedestrian", 9001),
        ("hooks", 9003),
    ]
    assert config.client.name == "driver"
    assert config.client.command.startswith("python driver.py --auto")
    assert config.client.interactive is not None and "--auto" not in config.client.interactive
    assert config.startup_timeout == 20


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services: []\n", "top level: missing key 'client'"),
        ("- a\n", "top level: must be a map, not list"),
        ("client: {}\n", "client: missing key 'command'"),
        ("client: {command: ''}\n", "client.command: must be a non-empty string"),
        ("client: python x.py\n", "client: must be a map, not str"),
        (CLIENT + "clients: 1\n", "top level: unknown key 'clients' (allowed: project, generate,"),
        (CLIENT + "services: {a: 1}\n", "services: must be a list, not dict"),
        (CLIENT + "services:\n  - command: x\n", "services[0]: missing key 'name'"),
        (CLIENT + "services:\n  - name: env\n", "services[0]: missing key 'command'"),
        (
            CLIENT + "services:\n  - {name: env, command: x, port: abc}\n",
            "services[0].port: must be a port number (1-65535), not 'abc'",
        ),
        (
            CLIENT + "services:\n  - {name: env, command: x, port: 70000}\n",
            "services[0].port: must be a port number (1-65535), not 70000",
        ),
        (
            CLIENT + "services:\n  - {name: env, command: x, prot: 1}\n",
            "services[0]: unknown key 'prot' (allowed: name, command, port, tls)",
        ),
        (
            CLIENT + "services:\n  - {name: a, command: x}\n  - {name: a, command: y}\n",
            "services[1].name: two services are named 'a'",
        ),
        (
            CLIENT + "services:\n  - {name: orchestrator, command: x}\n",
            "services[0].name: 'orchestrator' is not a valid service name",
        ),
        (
            CLIENT
            + "orchestrator: {port: 9000}\nservices:\n  - {name: a, command: x, port: 9000}\n",
            "services: port 9000 is used twice",
        ),
        (CLIENT + "orchestrator: {}\n", "orchestrator: missing key 'port'"),
        (CLIENT + "startup_timeout: soon\n", "startup_timeout: must be a number of seconds"),
        (CLIENT + "generate: yes\n", "generate: must be a map, not bool"),
        ("client: [\n", "not valid YAML (line"),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(LaunchError) as raised:
        load(tmp_path, text)
    text_of_error = str(raised.value)
    assert text_of_error.startswith(str(tmp_path / "launch.yaml") + ": ")
    assert message in text_of_error
    assert "\n" not in text_of_error


def test_a_missing_file() -> None:
    with pytest.raises(LaunchError, match=r"^cannot read nowhere/launch.yaml: No such file"):
        load_launch_config("nowhere/launch.yaml")


def test_the_command_line_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "launch.yaml").write_text("services:\n  - name: env\n", encoding="utf-8")
    run = run_launch(str(tmp_path / "launch.yaml"), timeout=30)
    assert run.returncode == 1
    assert run.stderr == (
        f"cogment launch: error: {tmp_path / 'launch.yaml'}: services[0]: missing key 'command'\n"
    )


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        (
            "client:\n  command: python x.py {nope}\n",
            [],
            "client: unknown placeholder {nope} (known: )",
        ),
        (
            "services:\n  - {name: a, command: 'python a.py {port}'}\n"
            "client:\n  command: python x.py\n",
            [],
            "services[0].command: unknown placeholder {port} (known: )",
        ),
        (
            "client:\n  command: python x.py\n",
            ["--interactive"],
            "client.interactive: missing (needed by --interactive)",
        ),
        ("project: missing.yaml\ngenerate: {}\n" + CLIENT, [], "missing.yaml"),
    ],
)
def test_run_time_mistakes_are_one_line(
    tmp_path: Path, text: str, args: list[str], message: str
) -> None:
    write_launch_file(tmp_path, text)
    run = run_launch(str(tmp_path / "launch.yaml"), *args, timeout=30)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cogment launch: error: "), run.stderr
    assert message in lines[0]
    assert run.pids == {}


def test_options_and_client_arguments_anywhere() -> None:
    args = parse_options(["x.yaml", "--timeout", "5", "--", "--delay", "0"])
    assert (args.launch_file, args.timeout, args.client_args) == ("x.yaml", 5.0, ("--delay", "0"))
    args = parse_options(["--free-ports", "x.yaml", "--", "--interactive"])
    assert (args.free_ports, args.interactive, args.client_args) == (
        True,
        False,
        ("--interactive",),
    )
    args = parse_options(["x.yaml", "--interactive"])
    assert (args.interactive, args.client_args) == (True, ())
    args = parse_options(["x.yaml", "--", "a", "--", "b"])
    assert args.client_args == ("a", "--", "b")
    args = parse_options(["x.yaml", "--delay", "0", "--timeout", "3", "--", "--timeout", "4"])
    assert (args.timeout, args.client_args) == (3.0, ("--delay", "0", "--timeout", "4"))


def test_what_follows_the_launch_file_and_dashes_reaches_the_client(tmp_path: Path) -> None:
    script = "import sys; print('args', sys.argv[1:]); sys.exit(7)"
    write_launch_file(tmp_path, f'client:\n  name: probe\n  command: python -c "{script}"\n')
    run = run_launch(str(tmp_path / "launch.yaml"), "--", "--interactive", "--timeout", "1")
    assert run.returncode == 7, run.stdout + run.stderr
    assert run.lines("probe") == ["args ['--interactive', '--timeout', '1']"]


def test_rewrite_endpoint_moves_local_endpoints_only() -> None:
    moves = {9002: 41000}
    assert rewrite_endpoint("grpc://localhost:9002", moves) == "grpc://localhost:41000"
    assert rewrite_endpoint("grpc://127.0.0.1:9002", moves) == "grpc://127.0.0.1:41000"
    assert rewrite_endpoint("grpc://localhost:9001", moves) == "grpc://localhost:9001"
    assert rewrite_endpoint("grpc://example.com:9002", moves) == "grpc://example.com:9002"
    assert rewrite_endpoint("human", moves) == "human"
    assert rewrite_endpoint("grpc://localhost:9002,10.0.0.2:9002", moves) == (
        "grpc://localhost:41000,grpc://10.0.0.2:9002"
    )


def test_settings_are_stale_when_missing_or_older_than_a_source(tmp_path: Path) -> None:
    from cogment.generate import generate

    for name in ("cogment.yaml", "city.proto", "delta.py"):
        shutil.copy(CITY / name, tmp_path / name)
    out = tmp_path / "out"
    project = str(tmp_path / "cogment.yaml")
    assert is_stale(project, str(out))
    generate(project, str(out))
    assert not is_stale(project, str(out))
    for i, source in enumerate(("city.proto", "delta.py", "cogment.yaml")):
        later = time.time() + 10 * (i + 1)
        os.utime(tmp_path / source, (later, later))
        assert is_stale(project, str(out)), source
        generate(project, str(out))
        os.utime(out / "cog_settings.py", (later + 1, later + 1))
        assert not is_stale(project, str(out))
    (out / "city_pb2.py").unlink()
    assert is_stale(project, str(out))
