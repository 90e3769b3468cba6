"""Entry point of every benchmark child process: `python -m benchmarks.worker ROLE ...`.

The worker prints JSON lines on stdout (`ready`, `stats`, `done`, `result`, `error`) and
reads commands on stdin (`stats`, `stop`, and those a role adds to `Control.commands`). It
exits when stdin closes (its parent is gone) and, whatever happens, when `--deadline`
seconds have passed. With BENCH_PROFILE=PATH in its
environment it runs the role under cProfile (every thread) and writes the stats to PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, Optional

_OUT_LOCK = threading.Lock()


def emit(event: str, **info: Any) -> None:
    """Writes one JSON event line on stdout."""
    line = json.dumps({"event": event, **info})
    with _OUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Control:
    """What a role gets from the worker: the stop signal, `ready()`, a stats hook, and
    commands of its own (by name; each answers with the event `done`)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.stats: Callable[[], dict[str, Any]] = lambda: {}
        self.on_stop: list[Callable[[], None]] = []
        self.commands: dict[str, Callable[[], None]] = {}

    def ready(self, **info: Any) -> None:
        emit("ready", pid=os.getpid(), **info)

    def request_stop(self) -> None:
        if not self.stop.is_set():
            self.stop.set()
            for callback in list(self.on_stop):
                try:
                    callback()
                except Exception:  # a stop hook must not keep the worker alive
                    traceback.print_exc()

    async def wait_stop(self) -> None:
        """For asyncio roles: returns once stop was requested."""
        import asyncio

        while not self.stop.is_set():
            await asyncio.sleep(0.05)


def wait_for(addresses: list[str], timeout: float = 60.0) -> None:
    """Blocks until a gRPC server answers at every `host:port` (started alongside us)."""
    import grpc

    end = time.monotonic() + timeout
    for address in addresses:
        channel = grpc.insecure_channel(address)
        try:
            grpc.channel_ready_future(channel).result(timeout=max(0.1, end - time.monotonic()))
        except grpc.FutureTimeoutError:
            raise RuntimeError(f"nothing answers at {address} after {timeout:.0f} s") from None
        finally:
            channel.close()


def _read_commands(ctl: Control) -> None:
    for line in sys.stdin:
        command = line.strip()
        if command == "stats":
            try:
                emit("stats", time=time.monotonic(), **ctl.stats())
            except Exception as error:
                emit("error", message=f"stats failed: {error!r}")
        elif command == "stop":
            ctl.request_stop()
        elif command in ctl.commands:
            try:
                ctl.commands[command]()
                emit("done", command=command)
            except Exception as error:
                emit("error", message=f"{command} failed: {error!r}")
    # stdin closed: the parent is gone or wants us gone
    ctl.request_stop()
    time.sleep(5.0)
    os._exit(0)


def _watchdog(deadline: float) -> None:
    time.sleep(deadline)
    sys.stderr.write(f"worker deadline of {deadline:.0f} s passed; exiting\n")
    sys.stderr.flush()
    os._exit(3)


def _roles() -> dict[str, Callable[[Control, list[str]], Optional[dict[str, Any]]]]:
    from benchmarks import datalog, floor, gym, middle, services, soak_roles, stream_middle, web

    roles = {**floor.ROLES, "floor-middle": middle.role_middle, **services.ROLES}
    roles["floor-stream-middle"] = stream_middle.role_stream_middle
    return {**roles, **gym.ROLES, **web.ROLES, **datalog.ROLES, **soak_roles.ROLES}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.worker")
    parser.add_argument("role")
    parser.add_argument("--deadline", type=float, default=120.0)
    args, rest = parser.parse_known_args(argv)
    threading.Thread(target=_watchdog, args=(args.deadline,), daemon=True).start()

    from benchmarks.profiling import ThreadProfiler

    profile_path = os.environ.get("BENCH_PROFILE")
    profiler = ThreadProfiler() if profile_path else None
    ctl = Control()
    threading.Thread(target=_read_commands, args=(ctl,), daemon=True).start()
    code = 0
    try:
        roles = _roles()
        if args.role not in roles:
            raise SystemExit(f"unknown role {args.role!r} (known: {', '.join(sorted(roles))})")
        if profiler:
            profiler.start()
        result = roles[args.role](ctl, rest)
        if profiler and profile_path:
            profiler.stop(profile_path)
            profiler = None
        emit("result", **(result or {}))
    except BaseException as error:
        if isinstance(error, SystemExit) and error.code in (0, None):
            emit("result")
        else:
            message = "".join(traceback.format_exception_only(type(error), error)).strip()
            traceback.print_exc()
            emit("error", message=message)
            code = 1
    finally:
        if profiler and profile_path:
            profiler.stop(profile_path)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)  # don't wait on grpc's non-daemon threads


if __name__ == "__main__":
    sys.exit(main())
