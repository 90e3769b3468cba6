"""The "three terminals" scenario, with real processes: `cogment orchestrator`, a script
serving the project's services with GrpcServers, and a client script."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional

import pytest

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent / "project"
TIMEOUT = 30.0


class Process:
    """A subprocess whose stdout lines are read by a thread, so every wait is bounded."""

    def __init__(self, args: Sequence[str], cwd: Path, log: Path) -> None:
        self.args = list(args)
        self._log = open(log, "w")  # noqa: SIM115 (closed in stop)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            self.args, cwd=cwd, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env
        )
        self.lines: queue.SimpleQueue[Optional[str]] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The first stdout line matching `pattern` (fails at EOF or after `timeout` s)."""
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"{self.args[:3]}: no line matching {pattern!r} in {timeout} s: {seen}")
            if line is None:
                pytest.fail(
                    f"{self.args[:3]} exited ({self.popen.poll()}) before {pattern!r}: {seen}"
                )
            match = re.search(pattern, line)
            if match:
                return match
            seen.append(line)

    def terminate(self, timeout: float = TIMEOUT) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._log.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def cogment_command() -> list[str]:
    script = Path(sys.executable).parent / "cogment"
    if script.exists():
        return [str(script)]
    found = shutil.which("cogment")
    assert found, "the cogment console script is not installed"
    return [found]


def test_three_terminals(tmp_path: Path, generated_dir: Path, processes: list[Process]) -> None:
    # terminal 2: the project's services
    services = Process(
        [sys.executable, str(HERE / "serve_services.py"), str(generated_dir)],
        tmp_path,
        tmp_path / "services.log",
    )
    processes.append(services)
    hooks = services.expect(r"^hooks (grpc://127\.0\.0\.1:\d+)$").group(1)

    # terminal 1: the orchestrator, on a copy of the project whose pre-trial hook is that one
    project = tmp_path / "project"
    project.mkdir()
    for name in ("data.proto", "delta.py"):
        shutil.copy(PROJECT / name, project / name)
    yaml = (PROJECT / "cogment.yaml").read_text()
    assert "grpc://127.0.0.1:9003" in yaml
    (project / "cogment.yaml").write_text(yaml.replace("grpc://127.0.0.1:9003", hooks))
    orchestrator = Process(
        [*cogment_command(), "orchestrator", "--file", "cogment.yaml", "--port", "0"],
        project,
        tmp_path / "orchestrator.log",
    )
    processes.append(orchestrator)
    listening = orchestrator.expect(
        r"^orchestrator listening on (127\.0\.0\.1:\d+) \(project: (.*)\)$"
    )
    endpoint = listening.group(1)
    assert Path(listening.group(2)).resolve() == (project / "cogment.yaml").resolve()

    # terminal 3: a client plays 10 ticks
    client = subprocess.run(
        [sys.executable, str(HERE / "run_client.py"), str(generated_dir), endpoint, "10"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert client.returncode == 0, client.stderr
    seen = json.loads(client.stdout)
    assert seen["turns"] == list(range(1, 11))
    assert all(len(cells) == 4 for cells in seen["cells"])
    assert sum(seen["cells"][-1]) == 5 * 1 + 5 * 2  # the human moved 5 times, alice 5 times
    assert all(confidence > 0 for _, confidence in seen["rewards"])
    assert [-1, "env got: hello from terminal 3"] in seen["messages"]
    assert [2, "turn 9"] in seen["messages"]

    # Ctrl-C / SIGTERM: the orchestrator ends the trial left open, and exits 0
    assert orchestrator.terminate() == 0
    log = (tmp_path / "orchestrator.log").read_text()
    assert f"trial {seen['left_open']} ended: orchestrator shutdown" in log
    assert services.terminate() == 0
    services.expect("^services stopped$")
