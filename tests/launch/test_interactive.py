"""The interactive variant: `cogment launch examples/city/launch.yaml --interactive`."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from tests.launch.conftest import CITY, REPO, assert_gone, city_copy, launch_command, started_pids
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def city_settings() -> None:
    from cogment.generate import generate
    from cogment.launch_config import is_stale

    if is_stale(str(CITY / "cogment.yaml"), str(CITY)):
        generate(str(CITY / "cogment.yaml"), str(CITY))


def test_the_driver_without_a_terminal_says_so(city_settings: None) -> None:
    done = subprocess.run(
        [sys.executable, "driver.py"],
        cwd=CITY,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "driver.py: interactive driving needs a terminal (stdin and stdout are not a TTY); "
        "use --auto for the scripted driver\n"
    )


def reaped(pid: int) -> Optional[tuple[int, int]]:
    """(pid, wait status) once the child `pid` exited (and is reaped), else None."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return (done, status) if done else None


def _has_curses() -> bool:
    check = "import curses, sys; curses.setupterm('xterm', sys.stdout.fileno())"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, timeout=30)
    return done.returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a pseudo-terminal")
def test_interactive_driving_in_a_terminal(tmp_path: Path) -> None:
    if not _has_curses():
        pytest.skip("no curses or no terminfo for xterm")
    import pty

    city_launch = city_copy(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: cogment launch on the pseudo-terminal
        os.chdir(REPO)
        os.environ["TERM"] = "xterm"
        argv = launch_command(str(city_launch), "--interactive", "--free-ports", "--timeout", "60")
        os.execv(argv[0], argv)
    output = b""

    def read_until(pattern: bytes, timeout: float, count: int = 1) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, output)) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in {output[-2000:]!r}"
            ready, _, _ = select.select([fd], [], [], min(left, 0.2))
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:  # the child is gone
                    break

    try:
        read_until(rb"arrows/WASD move", timeout=40)
        os.write(fd, b"d")
        read_until(rb"reward \+1\.00 \(1 feedbacks\)", timeout=20)
        os.write(fd, b"\x1bOC")  # the right arrow, in the terminal's keypad mode
        read_until(rb"reward \+1\.00 \(1 feedbacks\)", timeout=20, count=2)
        os.write(fd, b"q")
        read_until(rb"driver exited with status 0", timeout=30)
        read_until(rb"output is in (\S+\.log)", timeout=10)
    finally:
        status = -1
        for signum in (None, signal.SIGTERM, signal.SIGKILL):  # launch stops what it started
            if signum is not None:
                os.kill(pid, signum)
            try:
                _, status = wait_until(lambda: reaped(pid), 15, "launch exited", interval=0.05)
                break
            except AssertionError:
                continue  # still running: the next, harder signal
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, output[-2000:]
    text = output.decode(errors="replace")
    assert "trial over (ended by this client): the car stopped at (2,4)" in text
    log_match = re.search(r"output is in (\S+\.log)", text)
    assert log_match is not None
    with open(log_match.group(1), encoding="utf-8") as f:
        log = f.read()
    os.unlink(log_match.group(1))
    assert re.search(r"^environment\s+\| trial \w+: a 16x9 city", log, re.M), log
    assert "pedestrian" in log
    pids = started_pids(text.replace("\r", ""))
    assert set(pids) == {"environment", "pedestrian", "hooks", "driver"}
    assert_gone(pids.values())
