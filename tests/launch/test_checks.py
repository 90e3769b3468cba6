"""What `cogment launch` checks before it starts anything: a terminal for `--interactive`,
and the project's endpoints against the ports of the launch file (warnings only)."""

from __future__ import annotations

import socket
from pathlib import Path

from cogment.launch_config import endpoint_warnings, load_launch_config
from tests.launch.conftest import CITY_LAUNCH, run_launch, write_launch_file

PROJECT = """\
actor_classes:
  - id: player
    action: {space: game.Move}
    observation: {space: game.Board}
  - id: watcher
    action: {space: game.Nothing}
    observation: {space: game.Board}
trial:
  pre_hooks: [grpc://localhost:9103]
trial_params:
  environment: {endpoint: ENV}
  actors:
    - {actor_class: player, endpoint: human}
    - {actor_class: player, endpoint: 'grpc://127.0.0.1:9101'}
    - {actor_class: watcher, endpoint: 'grpc://127.0.0.1:9101'}
datalog: {type: grpc, url: 'grpc://localhost:9104'}
"""
SERVICES = {"environment": 9102, "agents": 9101, "hooks": 9103, "datalog": 9104}
DRIVER = ["python", "driver.py", "--orchestrator", "localhost:9100"]


def warnings(
    tmp_path: Path,
    *,
    env: str = "grpc://localhost:9102",
    ports: dict[str, int] = SERVICES,
    orchestrator: int = 9100,
    client: list[str] = DRIVER,
) -> list[str]:
    """endpoint_warnings of a project and a launch file (nothing is started or bound)."""
    (tmp_path / "cogment.yaml").write_text(PROJECT.replace("ENV", env), encoding="utf-8")
    services = "".join(
        f"  - {{name: {name}, command: x, port: {port}}}\n" for name, port in ports.items()
    )
    (tmp_path / "launch.yaml").write_text(
        f"orchestrator: {{port: {orchestrator}}}\nservices:\n{services}client:\n  command: x\n",
        encoding="utf-8",
    )
    return endpoint_warnings(load_launch_config(str(tmp_path / "launch.yaml")), client)


def test_no_warning_when_every_endpoint_is_served(tmp_path: Path) -> None:
    assert warnings(tmp_path) == []


def test_the_city_example_is_consistent() -> None:
    driver = ["python", "driver.py", "--auto", "--orchestrator", "localhost:9000"]
    assert endpoint_warnings(load_launch_config(str(CITY_LAUNCH)), driver) == []


def test_a_port_mismatch_names_the_endpoint_and_the_service(tmp_path: Path) -> None:
    ports = dict(SERVICES, environment=9109)
    assert warnings(tmp_path, ports=ports) == [
        "cogment.yaml: the endpoint of the environment is grpc://localhost:9102, but no service "
        "of launch.yaml has port 9102 (ports nothing names: environment 9109)"
    ]


def test_every_user_of_an_unserved_endpoint_is_named(tmp_path: Path) -> None:
    ports = {name: port for name, port in SERVICES.items() if name != "agents"}
    assert warnings(tmp_path, ports=ports) == [
        "cogment.yaml: the endpoint of actor 1 (player), actor 2 (watcher) is "
        "grpc://127.0.0.1:9101, but no service of launch.yaml has port 9101"
    ]
    ports = {name: port for name, port in SERVICES.items() if name not in ("hooks", "datalog")}
    found = warnings(tmp_path, ports=ports)
    assert [w.split(" is ")[0] for w in found] == [
        "cogment.yaml: the endpoint of pre-hook 0",
        "cogment.yaml: the endpoint of the datalog",
    ]


def test_the_client_command_is_checked_against_the_orchestrator(tmp_path: Path) -> None:
    client = ["python", "driver.py", "--orchestrator=localhost:9000"]
    assert warnings(tmp_path, client=client) == [
        "the client command connects to localhost:9000, but no service of launch.yaml has "
        "port 9000 (ports nothing names: orchestrator 9100)"
    ]
    assert warnings(tmp_path, client=["python", "driver.py", "grpc://127.0.0.1:9100"]) == []


def test_what_is_not_checked(tmp_path: Path) -> None:
    # an endpoint on another machine is not launch's business
    assert warnings(tmp_path, env="grpc://simulator.example:9102", ports={}, orchestrator=9100) == [
        w for w in warnings(tmp_path, ports={}) if "environment" not in w
    ]
    # no project, or one that does not load: nothing to compare with
    (tmp_path / "cogment.yaml").unlink()
    assert endpoint_warnings(load_launch_config(str(tmp_path / "launch.yaml")), DRIVER) == []
    (tmp_path / "cogment.yaml").write_text("actor_classes: []\n", encoding="utf-8")
    assert endpoint_warnings(load_launch_config(str(tmp_path / "launch.yaml")), DRIVER) == []
    # a launch file that serves no port (the project is served elsewhere)
    (tmp_path / "cogment.yaml").write_text(PROJECT.replace("ENV", "grpc://localhost:1"))
    (tmp_path / "launch.yaml").write_text("client:\n  command: x\n", encoding="utf-8")
    assert endpoint_warnings(load_launch_config(str(tmp_path / "launch.yaml")), DRIVER) == []


def _a_free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def test_launch_warns_before_starting_and_still_runs(tmp_path: Path) -> None:
    port = _a_free_port()
    named = port + 1 if port < 65535 else port - 1  # only named in cogment.yaml, never bound
    (tmp_path / "cogment.yaml").write_text(
        PROJECT.replace("ENV", f"grpc://localhost:{named}"), encoding="utf-8"
    )
    write_launch_file(
        tmp_path,
        "services:\n"
        "  - name: environment\n"
        "    command: python version_server.py --port {port}\n"
        f"    port: {port}\n"
        "client:\n  command: python -c 'print(\"done\")'\n",
    )
    run = run_launch(str(tmp_path / "launch.yaml"), timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    launch = run.lines("launch")
    warning = (
        f"warning: cogment.yaml: the endpoint of the environment is grpc://localhost:{named}, "
        f"but no service of launch.yaml has port {named} (ports nothing names: environment "
        f"{port})"
    )
    assert warning in launch, run.stdout
    assert launch.index(warning) < min(i for i, t in enumerate(launch) if t.startswith("started"))
    assert len([t for t in launch if t.startswith("warning: ")]) == 4  # + actors, hook, datalog
    assert run.lines("client") == ["done"]

    # --free-ports rewrites the endpoints: nothing to compare
    run = run_launch(str(tmp_path / "launch.yaml"), "--free-ports", timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not [t for t in run.lines("launch") if t.startswith("warning")], run.stdout


def test_interactive_without_a_terminal_starts_nothing() -> None:
    run = run_launch(str(CITY_LAUNCH), "--interactive", timeout=30)  # stdin: /dev/null
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr == (
        "cogment launch: error: --interactive needs a terminal (stdin is not a TTY); "
        "run without --interactive for the scripted client\n"
    )
    assert run.stdout == ""  # not even `generate`, nor a log file
