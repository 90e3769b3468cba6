"""Helpers for the `cogment launch` tests: run it as a process, read its prefixed output.

* `launch_command(*args)`: the argv of `cogment launch ARGS` with this interpreter.
* `run_launch(*args, timeout=...)`: runs it to the end (bounded), returns a `LaunchRun`.
* `LaunchRun.lines(name)`: the text of every `name | text` line; `.pids`: name -> pid of
  the processes launch started (from its `started NAME (pid N)` lines).
* `assert_gone(pids)`: every process (and process group) is gone within a few seconds.
* `write_launch_file(folder, text)`: writes launch.yaml (and version_server.py) in folder.
* `city_copy(folder)`: a copy of the city example in folder; returns its launch.yaml (a run
  records its trial next to the copy, not into the repository's examples/city/trials.db).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Optional

from cogment.launch_process import group_members
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
CITY = REPO / "examples" / "city"
CITY_LAUNCH = CITY / "launch.yaml"
VERSION_SERVER = Path(__file__).resolve().parent / "version_server.py"
_LINE = re.compile(r"^(?P<name>[A-Za-z][\w-]*)\s*\| (?P<text>.*)$")
_STARTED = re.compile(r"^started (?P<name>[\w-]+) \(pid (?P<pid>\d+)\)")


def launch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cogment.cli", "launch", *args]


@dataclasses.dataclass
class LaunchRun:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    def lines(self, name: str) -> list[str]:
        return parse_lines(self.stdout, name)

    @property
    def pids(self) -> dict[str, int]:
        return started_pids(self.stdout)


def parse_lines(output: str, name: str) -> list[str]:
    found = []
    for line in output.splitlines():
        match = _LINE.match(line)
        if match and match.group("name") == name:
            found.append(match.group("text"))
    return found


def started_pids(output: str) -> dict[str, int]:
    pids = {}
    for text in parse_lines(output, "launch"):
        match = _STARTED.match(text)
        if match:
            pids[match.group("name")] = int(match.group("pid"))
    return pids


def run_launch(*args: str, timeout: float = 90, cwd: Path = REPO) -> LaunchRun:
    """Runs `cogment launch ARGS` to its end; past `timeout` it is stopped and the test fails."""
    start = time.monotonic()
    process = subprocess.Popen(
        launch_command(*args),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stdout, stderr = stop(process)
        raise AssertionError(f"cogment launch ran over {timeout} s:\n{stdout}\n{stderr}") from None
    return LaunchRun(process.returncode, stdout, stderr, time.monotonic() - start)


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM (so that launch stops what it started), then SIGKILL; returns the output."""
    process.terminate()
    try:
        return process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate(timeout=10)


def alive(pid: int) -> bool:
    """True while `pid` or any member of its process group is a live (not zombie) process."""
    members = group_members(pid)  # launch starts every command as a process group leader
    if members is not None:
        return bool(members)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_gone(pids: Iterable[int], within: float = 5.0) -> None:
    """Every process of `pids` (and its group) is gone within `within` seconds."""
    pids = list(pids)
    wait_until(
        lambda: not any(alive(pid) for pid in pids),
        within,
        f"the processes {pids} cogment launch started (and their groups) are gone",
        interval=0.05,
    )


def city_copy(folder: Path) -> Path:
    target = folder / "city"
    generated = ("cog_settings.py", "*_pb2.py", "*_pb2_grpc.py")  # they name the original
    ignored = shutil.ignore_patterns("trials.db*", "__pycache__", *generated)
    shutil.copytree(CITY, target, ignore=ignored)
    return target / "launch.yaml"


def write_launch_file(folder: Path, text: str) -> Path:
    shutil.copy(VERSION_SERVER, folder / "version_server.py")
    path = folder / "launch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class RunningLaunch:
    """`cogment launch` running in the background; its stdout read line by line."""

    def __init__(self, *args: str, cwd: Path = REPO) -> None:
        self.popen = subprocess.Popen(
            launch_command(*args),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.output: list[str] = []
        self.errors: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, self.output), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Optional[IO[str]], lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def stdout(self) -> str:
        with self._changed:
            return "\n".join(self.output)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first output line matching `pattern` (a regex), waiting at most `timeout` s."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.output:
                    match = regex.search(line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no line matching {pattern!r}:\n" + "\n".join(self.output)
                    )
                self._changed.wait(left)

    def finish(self, timeout: float) -> tuple[int, str]:
        """Waits for the end (at most `timeout` s); returns (exit status, stderr)."""
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("cogment launch did not finish in time:\n" + self.stdout) from None
        for reader in self._readers:
            reader.join(10)
        with self._changed:
            return self.popen.returncode, "\n".join(self.errors)

    def kill(self) -> None:
        """Stops launch if it still runs: SIGTERM (it stops what it started), then SIGKILL."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
