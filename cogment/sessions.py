"""`Sessions`: the live sessions of a service (one user instance per trial, or per trial and
actor), the one place that adds, finds and drops them, and words their statuses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Callable, Generic, TypeVar

import grpc

from cogment.errors import StatusError

Key = TypeVar("Key")
Session = TypeVar("Session")


class Sessions(Generic[Key, Session]):
    """Sessions by key, thread-safe.

    Args:
        unknown: the NOT_FOUND message for a key without a session.
        duplicate: the ALREADY_EXISTS message for a key that has one.
    """

    def __init__(self, unknown: Callable[[Key], str], duplicate: Callable[[Key], str]) -> None:
        self._unknown = unknown
        self._duplicate = duplicate
        self._lock = threading.Lock()
        self._sessions: dict[Key, Session] = {}

    def check_new(self, key: Key) -> None:
        """Raises ALREADY_EXISTS when `key` has a session (before building a new one)."""
        with self._lock:
            if key in self._sessions:
                raise StatusError(grpc.StatusCode.ALREADY_EXISTS, self._duplicate(key))

    def add(self, key: Key, session: Session) -> None:
        """Adds the session of `key`; ALREADY_EXISTS when it has one."""
        with self._lock:
            if key in self._sessions:
                raise StatusError(grpc.StatusCode.ALREADY_EXISTS, self._duplicate(key))
            self._sessions[key] = session

    def get(self, key: Key) -> Session:
        """The session of `key`; NOT_FOUND when it has none."""
        with self._lock:
            session = self._sessions.get(key)
        if session is None:
            raise StatusError(grpc.StatusCode.NOT_FOUND, self._unknown(key))
        return session

    def pop(self, key: Key) -> Session:
        """Removes and returns the session of `key`; NOT_FOUND when it has none."""
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is None:
            raise StatusError(grpc.StatusCode.NOT_FOUND, self._unknown(key))
        return session

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def __iter__(self) -> Iterator[Key]:
        with self._lock:
            return iter(list(self._sessions))
