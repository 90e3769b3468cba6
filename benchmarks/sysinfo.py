"""What the machine is and what it is doing: versions, bytes on the wire, RSS, CPU load.

Linux only (reads /proc and runs `ss`); every probe returns None where it can't measure.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any, Optional

_SS_BYTES = re.compile(r"\bbytes_(sent|received):(\d+)")


def machine() -> dict[str, Any]:
    """Versions and hardware of this run, for results.json."""
    import grpc
    from google.protobuf import __version__ as protobuf_version
    from google.protobuf.internal import api_implementation

    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
        "protobuf": protobuf_version,
        "protobuf_impl": api_implementation.Type(),
        # settings every process of the run inherits that change performance
        "env": {
            k: v
            for k, v in sorted(os.environ.items())
            if k.startswith(("MALLOC_", "GRPC_", "PYTHONMALLOC", "PROTOCOL_BUFFERS_"))
        },
    }


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def loadavg() -> Optional[list[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def wire_bytes(server_ports: Iterable[int]) -> Optional[int]:
    """TCP payload bytes (both directions) so far on every connection served on those ports.

    Each hop of a chain has exactly one server side, so summing the server sockets counts
    every byte once. Uses `ss -tin` (tcp_info bytes_sent/bytes_received).
    """
    ports = sorted(set(server_ports))
    if not ports or shutil.which("ss") is None:
        return None
    expr = " or ".join(f"sport = :{p}" for p in ports)
    try:
        out = subprocess.run(
            ["ss", "-tinH", f"( {expr} )"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(int(m.group(2)) for m in _SS_BYTES.finditer(out))


def proc_status(pid: int) -> Optional[dict[str, int]]:
    """RSS (KiB) and thread count of a process, from /proc/<pid>/status."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    rss = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    threads = re.search(r"^Threads:\s+(\d+)", text, re.M)
    if not rss or not threads:
        return None
    return {"rss_kib": int(rss.group(1)), "threads": int(threads.group(1))}


def busy_seconds() -> Optional[float]:
    """CPU seconds the whole machine has spent busy since boot (all cpus), from /proc/stat."""
    try:
        with open("/proc/stat", encoding="utf-8") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """How much of the machine's CPU went to processes that are not this run's.

    Busy time from /proc/stat minus this process's and its reaped children's CPU time.
    Children still running at `stop()` are not counted as ours, so call it after reaping.
    """

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> Optional[tuple[float, float, float]]:
        busy = busy_seconds()
        if busy is None:
            return None
        t = os.times()
        ours = t.user + t.system + t.children_user + t.children_system
        return time.monotonic(), busy, ours

    def stop(self) -> Optional[dict[str, float]]:
        end = self._sample()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        busy = end[1] - self._start[1]
        ours = end[2] - self._start[2]
        capacity = wall * (os.cpu_count() or 1)
        if capacity <= 0:
            return None
        return {
            "wall_s": round(wall, 1),
            "ours_share": round(min(1.0, ours / capacity), 3),
            "foreign_share": round(max(0.0, (busy - ours) / capacity), 3),
        }
