"""One `ActionStream` call: requests fed from a queue, replies read by a background thread.

A ClientTrial's `Contact` uses it for `begin_actions_stream()` (each `exchange` sends an action
and waits for its reply) and to watch a trial it has no slot in (actor_id -1: one request, then
the reply that says the trial is over). Replies that arrive while nobody waits for one (the
trial ended while the client was idle) go to the `on_idle` callback. The call itself is opened
by the trial's connection (`TrialConnection.open_action_stream`), which has already turned
gRPC errors into `CogmentRpcError`s.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional, Union

import grpc

from cogment.errors import CogmentRpcError

_CLOSE = object()


class StreamEnd:
    """The stream finished without an error (the orchestrator closed it)."""

    def __repr__(self) -> str:
        return "StreamEnd()"


# what the reader hands over: a reply, the translated error that ended the stream, or its end
Event = Union[Any, CogmentRpcError, StreamEnd]


class _Requests(Iterator[Any]):
    """The request iterator gRPC consumes; ends when closed."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def put(self, request: Any) -> None:
        self._queue.put(request)

    def close(self) -> None:
        self._queue.put(_CLOSE)

    def __next__(self) -> Any:
        item = self._queue.get()
        if item is _CLOSE:
            self._queue.put(_CLOSE)  # stay closed for any later read
            raise StopIteration
        return item


class ActionStream:
    """A bidirectional ActionStream with a reader thread.

    Args:
        open_call: opens the call given the request iterator; returns the reply iterator
            (which raises `CogmentRpcError` when the call fails), with a `cancel()` method.
        on_idle: receives every event that arrives while no `exchange` is waiting.
        name: the reader thread's name.
    """

    def __init__(
        self,
        open_call: Callable[[Iterator[Any]], Iterable[Any]],
        on_idle: Callable[[Event], None],
        name: str = "cogment-action-stream",
    ) -> None:
        self._requests = _Requests()
        self._on_idle = on_idle
        self._lock = threading.Lock()
        self._waiting = False
        self._replies: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._final: Optional[Event] = None  # the event that ended the stream
        self._closed = False
        self._call = open_call(self._requests)
        self._reader = threading.Thread(target=self._read, name=name, daemon=True)
        self._reader.start()

    def send(self, request: Any) -> None:
        """Sends a request without waiting for a reply."""
        self._requests.put(request)

    def exchange(self, request: Any, timeout: Optional[float] = None) -> Event:
        """Sends `request` and returns the next event (reply, error or StreamEnd).

        Raises:
            CogmentRpcError: DEADLINE_EXCEEDED when no reply came within `timeout`.
        """
        with self._lock:
            if self._final is not None:
                return self._final
            self._waiting = True
        try:
            self._requests.put(request)
            try:
                return self._replies.get(timeout=timeout)
            except queue.Empty:
                raise CogmentRpcError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no reply on the action stream within {timeout} s",
                ) from None
        finally:
            with self._lock:
                self._waiting = False
                # an event that came between the get() timing out and now is not lost
                leftover = []
                while not self._replies.empty():
                    leftover.append(self._replies.get_nowait())
            for event in leftover:
                self._on_idle(event)

    def close(self) -> None:
        """Half-closes the stream and cancels it (idempotent); the reader then ends."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._requests.close()
        cancel = getattr(self._call, "cancel", None)
        if cancel is not None:
            cancel()

    @property
    def closed(self) -> bool:
        """True once closed, or once the orchestrator ended the stream."""
        return self._closed or self._final is not None

    def join(self, timeout: float) -> None:
        if self._reader is not threading.current_thread():
            self._reader.join(timeout)

    def _read(self) -> None:
        try:
            for reply in self._call:
                self._dispatch(reply, final=False)
            final: Event = StreamEnd()
        except CogmentRpcError as error:
            final = error
        except Exception as error:  # an in-memory fake failing; report it like a broken stream
            final = CogmentRpcError(grpc.StatusCode.UNKNOWN, f"action stream failed: {error}")
        finally:
            self._requests.close()
        self._dispatch(final, final=True)

    def _dispatch(self, event: Event, final: bool) -> None:
        with self._lock:
            if final:
                self._final = event
            if self._waiting:
                self._replies.put(event)
                return
            closed = self._closed
        if not (final and closed):  # the end of a stream we closed ourselves is expected
            self._on_idle(event)
