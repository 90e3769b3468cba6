"""`Sessions`: the live sessions of a service (one user instance per trial, or per trial and
actor), the one place that adds, finds, expires and drops them, and words their statuses."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Callable, Generic, TypeVar

import grpc

from cogment.errors import StatusError

Key = TypeVar("Key")
Session = TypeVar("Session")


class _Entry(Generic[Session]):
    __slots__ = ("busy", "session", "used")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.used = time.monotonic()  # the end of the latest call
        self.busy = 0  # calls under way


class Sessions(Generic[Key, Session]):
    """Sessions by key, thread-safe, with the time each was last used.

    Args:
        unknown: the NOT_FOUND message for a key without a session.
        duplicate: the ALREADY_EXISTS message for a key that has one.
    """

    def __init__(self, unknown: Callable[[Key], str], duplicate: Callable[[Key], str]) -> None:
        self._unknown = unknown
        self._duplicate = duplicate
        self._lock = threading.Lock()
        self._entries: dict[Key, _Entry[Session]] = {}

    def check_new(self, key: Key) -> None:
        """Raises ALREADY_EXISTS when `key` has a session (before building a new one)."""
        with self._lock:
            if key in self._entries:
                raise StatusError(grpc.StatusCode.ALREADY_EXISTS, self._duplicate(key))

    def add(self, key: Key, session: Session) -> None:
        """Adds the session of `key`; ALREADY_EXISTS when it has one."""
        with self._lock:
            if key in self._entries:
                raise StatusError(grpc.StatusCode.ALREADY_EXISTS, self._duplicate(key))
            self._entries[key] = _Entry(session)

    @contextlib.contextmanager
    def use(self, key: Key) -> Iterator[Session]:
        """The session of `key` for one call (NOT_FOUND when it has none); a session in use
        is never idle."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                raise StatusError(grpc.StatusCode.NOT_FOUND, self._unknown(key))
            entry.busy += 1
        try:
            yield entry.session
        finally:
            with self._lock:
                entry.busy -= 1
                entry.used = time.monotonic()

    def pop(self, key: Key) -> Session:
        """Removes and returns the session of `key`; NOT_FOUND when it has none."""
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None:
            raise StatusError(grpc.StatusCode.NOT_FOUND, self._unknown(key))
        return entry.session

    def pop_idle(self, limit: float) -> list[tuple[Key, Session]]:
        """Removes and returns the sessions not used for `limit` seconds or more."""
        now = time.monotonic()
        with self._lock:
            idle = [
                key
                for key, entry in self._entries.items()
                if not entry.busy and now - entry.used >= limit
            ]
            return [(key, self._entries.pop(key).session) for key in idle]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
