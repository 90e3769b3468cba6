"""`cogment launch` stops everything it started, whatever ends the run, and says why."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.launch.conftest import (
    RunningLaunch,
    alive,
    assert_gone,
    city_copy,
    run_launch,
    started_pids,
    write_launch_file,
)

# a command that runs until it is stopped: what a service or a client that never ends does
# (its 120 s only bound a leak, should a test fail to stop it)
SLEEP = "python -c 'import time; time.sleep(120)'"


def test_a_service_killed_mid_trial_stops_everything_and_is_named(tmp_path: Path) -> None:
    launch = RunningLaunch(
        str(city_copy(tmp_path)), "--free-ports", "--timeout", "60", "--", "--delay", "0.2"
    )
    try:
        launch.wait_for_line(r"^driver\s+\| tick 3:", timeout=30)
        pids = started_pids(launch.stdout)
        os.kill(pids["environment"], signal.SIGKILL)
        status, stderr = launch.finish(timeout=30)
    finally:
        launch.kill()
    assert status == 1
    assert stderr.strip().splitlines()[-1] == (
        "cogment launch: error: service 'environment' was killed by SIGKILL"
    )
    assert "Traceback" not in launch.stdout + stderr
    assert_gone(pids.values())


def test_sigterm_to_launch_stops_everything(tmp_path: Path) -> None:
    launch = RunningLaunch(
        str(city_copy(tmp_path)), "--free-ports", "--timeout", "60", "--", "--delay", "0.2"
    )
    try:
        launch.wait_for_line(r"^driver\s+\| tick 2:", timeout=30)
        pids = started_pids(launch.stdout)
        launch.popen.send_signal(signal.SIGTERM)
        status, _ = launch.finish(timeout=30)
    finally:
        launch.kill()
    assert status == 128 + signal.SIGTERM
    assert "launch       | SIGTERM received, stopping everything" in launch.output
    assert_gone(pids.values())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_to_launch_leaves_no_service_behind(tmp_path: Path) -> None:
    write_launch_file(
        tmp_path,
        "services:\n"
        "  - name: echo\n"
        "    command: python version_server.py --port {port}\n"
        "    port: 9999\n"
        f"client:\n  command: {SLEEP}\n",
    )
    launch = RunningLaunch(str(tmp_path / "launch.yaml"), "--free-ports", "--timeout", "60")
    pids: dict[str, int] = {}
    try:
        launch.wait_for_line(r"^launch\s+\| started client ", timeout=30)
        pids = started_pids(launch.stdout)
        assert set(pids) == {"echo", "client"}
        assert all(alive(pid) for pid in pids.values())
        launch.popen.kill()  # no chance to stop anything itself
        status, _ = launch.finish(timeout=10)
        assert status == -signal.SIGKILL
        assert_gone(pids.values(), within=5)
    finally:
        launch.kill()
        for pid in pids.values():  # left by a failure: don't leak them into the other tests
            if alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)


def test_grandchildren_that_ignore_sigterm_are_killed_with_their_group(tmp_path: Path) -> None:
    write_launch_file(
        tmp_path,
        "services:\n"
        "  - name: stubborn\n"
        "    command: python version_server.py --grandchild --port {port}\n"
        # the client starts once it serves: after its grandchild ignores SIGTERM
        "    port: 9999\n"
        "client:\n"
        "  command: python -c 'print(\"done\")'\n",  # ends at once: launch then stops all
    )
    run = run_launch(str(tmp_path / "launch.yaml"), "--free-ports", timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    grandchild = [int(t.split()[1]) for t in run.lines("stubborn") if t.startswith("grandchild ")]
    assert len(grandchild) == 1, run.stdout
    assert_gone([*run.pids.values(), grandchild[0]])
    assert run.elapsed < 30


def test_a_service_that_never_opens_its_port_is_named(tmp_path: Path) -> None:
    write_launch_file(
        tmp_path,
        "services:\n"
        "  - name: sleepy\n"
        f"    command: {SLEEP}\n"
        "    port: 9999\n"
        f"client:\n  command: {SLEEP}\n",
    )
    run = run_launch(
        str(tmp_path / "launch.yaml"), "--free-ports", "--startup-timeout", "1.5", timeout=60
    )
    assert run.returncode == 1
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "cogment launch: error: service 'sleepy' did not answer Version on port "
    ), run.stderr
    assert line.endswith("within 1.5 s (python -c import time; time.sleep(120))")
    assert "driver" not in run.pids and "client" not in run.pids  # the client never started
    assert_gone(run.pids.values())
    assert run.elapsed < 20


def test_a_service_that_exits_at_startup_is_named_with_its_status(tmp_path: Path) -> None:
    write_launch_file(
        tmp_path,
        "services:\n"
        "  - name: crashy\n"
        "    command: python -c 'import sys; print(\"boom\"); sys.exit(3)'\n"
        "    port: 9999\n"
        f"client:\n  command: {SLEEP}\n",
    )
    run = run_launch(str(tmp_path / "launch.yaml"), "--free-ports", timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "cogment launch: error: service 'crashy' exited with status 3"
    )
    assert run.lines("crashy") == ["boom"]
    assert run.elapsed < 20


def test_timeout_stops_a_client_that_never_ends(tmp_path: Path) -> None:
    write_launch_file(tmp_path, f"client:\n  command: {SLEEP}\n")
    run = run_launch(str(tmp_path / "launch.yaml"), "--timeout", "1", timeout=60)
    assert run.returncode == 124
    assert run.stderr.strip() == "cogment launch: error: timed out after 1 s (--timeout)"
    assert_gone(run.pids.values())
    assert run.elapsed < 15


def test_the_client_status_is_returned_and_its_arguments_are_passed(tmp_path: Path) -> None:
    script = "import sys; print('args', sys.argv[1:]); sys.exit(7)"
    write_launch_file(
        tmp_path,
        "services:\n"
        "  - name: echo\n"
        "    command: python version_server.py --port {port}\n"
        "    port: 9999\n"
        "client:\n"
        "  name: probe\n"
        f'  command: python -c "{script}" {{echo_port}}\n',
    )
    run = run_launch(str(tmp_path / "launch.yaml"), "--free-ports", "--", "--extra", "x y")
    assert run.returncode == 7, run.stdout + run.stderr
    port = [t for t in run.lines("launch") if t.startswith("echo answers on port ")]
    assert len(port) == 1
    echo_port = port[0].rsplit(" ", 1)[1]
    assert echo_port != "9999"
    assert run.lines("probe") == [f"args ['{echo_port}', '--extra', 'x y']"]
    assert run.lines("launch")[-1] == "probe exited with status 7"
    assert_gone(run.pids.values())


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        write_launch_file(
            tmp_path,
            "services:\n"
            "  - name: echo\n"
            "    command: python version_server.py --port {port}\n"
            f"    port: {port}\n"
            f"client:\n  command: {SLEEP}\n",
        )
        run = run_launch(str(tmp_path / "launch.yaml"), timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"cogment launch: error: port {port} of 'echo' is already in use: "
        "stop what uses it, or run with --free-ports"
    )
    assert run.pids == {}


def test_python_is_the_interpreter_running_launch(tmp_path: Path) -> None:
    write_launch_file(
        tmp_path, "client:\n  command: python -c 'import sys; print(sys.executable)'\n"
    )
    run = run_launch(str(tmp_path / "launch.yaml"), timeout=60)
    assert run.returncode == 0
    assert run.lines("client") == [sys.executable]
