"""The processes `cogment launch` starts (each in its own process group, its output
prefixed with its name), and the checks of the ports they serve on.

On Linux each started command also asks the kernel to SIGTERM it when launch dies
(PR_SET_PDEATHSIG), so that even a SIGKILLed launch leaves no service behind. The kernel
only does it for the commands launch starts itself, not for the processes they start
(a service's own children are stopped with its process group on a normal teardown only),
and it fires when the *thread* that started the command ends: create every `Process` from
a thread that outlives it (launch uses its main thread). Elsewhere nothing of the sort is done.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Optional, TextIO

import grpc

from cogment.api import common_pb2

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
KILL_WAIT = 2.0
_VERSION_SERVICES = (
    "cogment.Environment",
    "cogment.Agent",
    "cogment.TrialHooks",
    "cogment.Trial",
    "cogment.ext.DatalogTrials",  # `cogment datalog serve`, a cogment.LogExporter
)


def free_port() -> int:
    """A TCP port free right now (another process may take it before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    """True when `port` cannot be bound on all interfaces."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return True
    return False


def answers_version(
    port: int, timeout: float = 0.5, credentials: Optional[grpc.ChannelCredentials] = None
) -> bool:
    """True when a cogment service (any kind) on localhost:`port` answers Version (over TLS
    with `credentials`)."""
    return version_error(port, timeout, credentials) is None


def version_error(
    port: int, timeout: float = 0.5, credentials: Optional[grpc.ChannelCredentials] = None
) -> Optional[str]:
    """None when a cogment service (any kind) on localhost:`port` answers Version (over TLS
    with `credentials`); otherwise what gRPC said of the call."""
    target = f"localhost:{port}"
    channel = (
        grpc.insecure_channel(target)
        if credentials is None
        else grpc.secure_channel(target, credentials)
    )
    with channel:
        for service in _VERSION_SERVICES:
            call = channel.unary_unary(
                f"/{service}/Version",
                request_serializer=common_pb2.VersionRequest.SerializeToString,
                response_deserializer=common_pb2.VersionInfo.FromString,
            )
            try:
                call(common_pb2.VersionRequest(), timeout=timeout)
                return None
            except grpc.RpcError as error:
                code = error.code()  # type: ignore[attr-defined]
                if code != grpc.StatusCode.UNIMPLEMENTED:
                    return str(error.details() or code.name)  # type: ignore[attr-defined]
    return "no cogment service answers Version there"


def shown(argv: Sequence[str]) -> str:
    """A command line as printed (the interpreter running launch shown as `python`)."""
    return " ".join("python" if i == 0 and a == sys.executable else a for i, a in enumerate(argv))


def describe_status(status: int) -> str:
    """`exited with status 3`, or `was killed by SIGKILL` for a negative Popen status."""
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def group_members(pgid: int) -> Optional[list[int]]:
    """The live (not zombie) processes of process group `pgid`, from /proc; None without it."""
    if not os.path.isdir("/proc/self"):
        return None
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
        if len(fields) > 2 and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


# Run in each child before it becomes its command: no Python code of launch runs between
# fork and exec (gRPC's fork handlers then never run in a child, and Popen can vfork).
_BECOME = """\
import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(1, 15, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGTERM
if os.getppid() != int(sys.argv[1]):  # launch died before the prctl call: do not start
    os._exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def dying_with_parent(argv: Sequence[str]) -> list[str]:
    """`argv` wrapped so that the child asks the kernel to SIGTERM it when this process
    (more exactly the calling thread) dies, then becomes `argv`; as it is where that is not
    available (not Linux)."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-S", "-c", _BECOME, str(os.getpid()), *argv]


def _check_runnable(program: str, cwd: str, env: dict[str, str]) -> None:
    """Raises FileNotFoundError/PermissionError as running `program` would."""
    if os.sep in program:
        path = os.path.join(cwd, program)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
    elif shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


class Output:
    """Writes lines as `name | text` (names aligned) to one stream, from many threads."""

    def __init__(self, stream: Optional[TextIO], width: int) -> None:
        self.stream = stream
        self.width = width
        self._lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        if self.stream is None:
            return
        with self._lock:
            try:
                self.stream.write(f"{name:<{self.width}} | {text}\n")
                self.stream.flush()
            except (OSError, ValueError):  # closed, or a broken pipe: output is best effort
                pass

    def flush(self) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            if self.stream is not None:
                self.stream.flush()

    def logging_handler(self, name: str) -> logging.Handler:
        """A logging handler writing each record as one of `name`'s lines."""
        output = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    text = self.format(record)
                except Exception:  # a bad log call must not break the run
                    text = record.getMessage()
                for part in text.splitlines() or [""]:
                    output.line(name, part)

        class _Formatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                text = super().format(record)
                return text if record.levelno <= logging.INFO else f"{record.levelname}: {text}"

        handler = _Handler()
        handler.setFormatter(_Formatter("%(message)s"))
        return handler


class Process:
    """A started command: its own session and process group, its output copied line by line
    to `output` with its name (or left on the terminal when `output` is None)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        cwd: str,
        env: dict[str, str],
        output: Optional[Output],
        *,
        stdin: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.output = output
        try:
            _check_runnable(self.argv[0], cwd, env)
            self.popen = subprocess.Popen(
                dying_with_parent(self.argv),
                cwd=cwd,
                env=env,
                stdin=None if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if output is not None else None,
                stderr=subprocess.STDOUT if output is not None else None,
                start_new_session=True,
            )
        except OSError as error:
            from cogment.launch_config import LaunchError

            raise LaunchError(
                f"{name}: cannot run {self.argv[0]!r}: {error.strerror or error}"
            ) from None
        self.pgid = self.popen.pid  # a new session's leader leads its process group
        self._reader: Optional[threading.Thread] = None
        if output is not None and self.popen.stdout is not None:
            self._reader = threading.Thread(
                target=self._copy, args=(self.popen.stdout,), name=f"launch-{name}", daemon=True
            )
            self._reader.start()

    def _copy(self, stream: IO[bytes]) -> None:
        assert self.output is not None
        for raw in iter(stream.readline, b""):
            self.output.line(self.name, raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        stream.close()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signum)

    def group_alive(self) -> bool:
        """True while any process of the group (the command or its children) is left."""
        self.popen.poll()  # reap the leader so that it does not count as a zombie
        members = group_members(self.pgid)
        if members is not None:
            return bool(members)
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def join_output(self, timeout: float = 2.0) -> None:
        if self._reader is not None:
            self._reader.join(timeout)


def _wait_gone(processes: Sequence[Process], timeout: float) -> list[Process]:
    deadline = time.monotonic() + timeout
    left = list(processes)
    while left and time.monotonic() < deadline:
        left = [p for p in left if p.group_alive()]
        if left:
            time.sleep(0.05)
    return left


def stop_all(processes: Sequence[Process], grace: float = STOP_GRACE) -> None:
    """SIGTERM to every group still alive, SIGKILL to those left after `grace` seconds."""
    alive = [p for p in processes if p.group_alive()]
    for process in alive:
        process.signal_group(signal.SIGTERM)
    left = _wait_gone(alive, grace)
    for process in left:
        process.signal_group(signal.SIGKILL)
    _wait_gone(left, KILL_WAIT)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(KILL_WAIT)
