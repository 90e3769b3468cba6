"""Child processes of a benchmark run: spawn, talk to, and always reap.

Every service, middle and client of a measurement runs in its own process started with
`python -m benchmarks.worker ROLE ...`. A worker talks JSON lines on stdout (`ready`,
`stats`, `result`, `error` events) and takes commands on stdin (`stats`, `stop`); it exits
on its own when its stdin closes (the parent died) or its deadline passes. The parent keeps
every worker it started in a registry and kills what is left at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_LIVE: list[Worker] = []
_LIVE_LOCK = threading.Lock()


class WorkerError(RuntimeError):
    """A worker died, timed out or reported an error."""


class Worker:
    """One child process running `benchmarks.worker`."""

    def __init__(
        self,
        role: str,
        args: list[str],
        *,
        deadline: float,
        profile_path: Optional[str] = None,
        env: Optional[dict[str, str]] = None,
    ) -> None:
        self.role = role
        child_env = dict(os.environ)
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (REPO_ROOT, child_env.get("PYTHONPATH", "")) if p
        )
        child_env["PYTHONUNBUFFERED"] = "1"
        if profile_path:
            child_env["BENCH_PROFILE"] = profile_path
        child_env.update(env or {})
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in reap()
            prefix=f"bench-{role}-", suffix=".log", delete=False
        )
        cmd = [sys.executable, "-m", "benchmarks.worker", role, "--deadline", str(deadline), *args]
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=child_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stdin_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        with _LIVE_LOCK:
            _LIVE.append(self)

    def _read(self, stream: Optional[IO[str]]) -> None:
        assert stream is not None
        for line in stream:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "line", "text": line}
            if not isinstance(event, dict):
                event = {"event": "line", "text": line}
            self._events.put(event)
        self._events.put({"event": "eof"})

    def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        """Waits for the next event of `kind`, skipping plain lines; raises on error/exit."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise WorkerError(f"{self.role}: no {kind!r} within {timeout:.0f} s{self.tail()}")
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                continue
            if event.get("event") == kind:
                return event
            if event.get("event") == "error":
                raise WorkerError(f"{self.role}: {event.get('message')}{self.tail()}")
            if event.get("event") == "eof":
                self.proc.poll()
                raise WorkerError(
                    f"{self.role}: exited (code {self.proc.returncode}) before {kind!r}{self.tail()}"
                )

    def send(self, command: str) -> None:
        with self._stdin_lock, contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        self.send("stats")
        return self.expect("stats", timeout)

    def stop(self, timeout: float = 10.0) -> Optional[dict[str, Any]]:
        """Asks the worker to stop; returns its `result` event if it sends one in time."""
        self.send("stop")
        result = None
        with contextlib.suppress(WorkerError):
            result = self.expect("result", timeout)
        self.reap(timeout=3.0)
        return result

    def tail(self, lines: int = 12) -> str:
        """The end of the worker's stderr, for error messages."""
        try:
            with open(self._log.name, encoding="utf-8", errors="replace") as f:
                text = f.read().strip().splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n    | " + "\n    | ".join(text)) if text else ""

    def reap(self, timeout: float = 3.0) -> None:
        """Ends the process: closes stdin, then SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(OSError):
                        self.proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.proc.wait(timeout=timeout)
        with contextlib.suppress(OSError):
            self._log.close()
            os.unlink(self._log.name)
        with _LIVE_LOCK:
            if self in _LIVE:
                _LIVE.remove(self)


def reap_all() -> None:
    """Kills every worker still alive (at exit, on a signal, after a failed measurement)."""
    with _LIVE_LOCK:
        workers = list(_LIVE)
    for worker in workers:
        if worker.proc.poll() is None:
            with contextlib.suppress(OSError):
                worker.proc.kill()
    for worker in workers:
        worker.reap(timeout=2.0)


def install_cleanup() -> None:
    """Reaps children at interpreter exit and on SIGTERM/SIGINT."""
    atexit.register(reap_all)

    def on_signal(signum: int, _frame: Any) -> None:
        reap_all()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def free_port() -> int:
    """A TCP port that was free a moment ago (for services that can't report theirs)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
