"""cProfile across every thread of a process, and a readable summary of the result.

cProfile only sees the thread that enabled it; gRPC servers run user code on pool threads
and asyncio loops may live in their own thread. `ThreadProfiler` gives each new thread its
own `cProfile.Profile` (through `threading.setprofile`) and merges them all at the end.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import threading
from typing import Any


class ThreadProfiler:
    """Profiles the calling thread and every thread started after `start()`."""

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        main = cProfile.Profile()
        self._profiles.append(main)
        threading.setprofile(self._hook)
        main.enable()

    def _hook(self, _frame: Any, _event: str, _arg: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        with self._lock:
            self._profiles.append(profile)
        profile.enable()

    def stop(self, path: str) -> None:
        """Stops profiling and writes the merged stats to `path` (pstats format)."""
        threading.setprofile(None)
        self._profiles[0].disable()
        with self._lock:
            profiles = list(self._profiles)
        stats = None
        for profile in profiles:
            try:
                profile.create_stats()
                if stats is None:
                    stats = pstats.Stats(profile)
                else:
                    stats.add(profile)
            except (TypeError, ValueError):  # a thread that never returned from anything
                continue
        if stats is not None:
            stats.dump_stats(path)


def summary(path: str, limit: int = 30) -> str:
    """The top `limit` entries by cumulative time, then by own time."""
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.strip_dirs()
    out.write(f"--- top {limit} by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats(limit)
    out.write(f"--- top {limit} by own time ---\n")
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()
