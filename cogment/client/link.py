"""`TrialLink`, the base of `ClientTrial`: how a client trial keeps in touch with the
orchestrator and learns how it ends.

What the trial's calls, its action stream (or watch stream) and its heartbeats hear becomes
the trial's end (`ending.TrialEnd`): a normal end (`TrialEndedError` afterwards), a failing
service (`TrialError` with the orchestrator's reason), or an end the client decides itself, as
a failure (`TrialError`): the orchestrator is unreachable (UNAVAILABLE on a call about the
trial, or on `LOST_AFTER_BEATS` heartbeats in a row over `LOST_AFTER_SECONDS`: trials live in
the orchestrator's memory), or a `do_action` timed out (its effect is unknown).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Optional

import grpc

from cogment.api import orchestrator_pb2
from cogment.client.ending import (
    REASON_ORCHESTRATOR,
    REASON_STREAM_CLOSED,
    REASON_TIMED_OUT,
    TrialEnd,
    classify,
    failure,
    lost_reason,
)
from cogment.client.heartbeat import Unreachable
from cogment.client.stream import ActionStream, Event, StreamEnd
from cogment.constants import NO_ACTOR_ID
from cogment.errors import (
    CogmentError,
    CogmentRpcError,
    TrialEndedError,
    TrialError,
    trial_end_reason,
)
from cogment.settings import ActorClass

if TYPE_CHECKING:
    from cogment.client.connection import Connection

log = logging.getLogger("cogment.client.trial")

TRIAL_OVER = "trial {trial_id} is over ({reason})"
_WATCH_ENDS = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE)


class TrialLink:
    """The state and the handlers that tell a client trial whether and why it is over."""

    _actor_class: Optional[ActorClass]  # set by the subclass: None for a watcher

    def __init__(self, connection: Connection, trial_id: str) -> None:
        self._connection = connection
        self._id = trial_id
        self._lock = threading.Lock()
        self._pending = 0  # actions under way
        self._last_activity = time.monotonic()
        self._stream: Optional[ActionStream] = None
        self._watcher: Optional[ActionStream] = None
        self._end = TrialEnd(f"cogment-end-{trial_id}")
        self._detached = False
        self._unreachable = Unreachable()  # only the heartbeat thread touches it

    def _absorb(self, reply: orchestrator_pb2.TrialActionReply) -> Any:
        """Takes in a TrialActionReply (the subclass's job)."""
        raise NotImplementedError

    def _check_usable(self) -> None:
        if self._detached:
            self._connection._check_open()
        if self._end.is_over:
            raise self._over_error()

    def _over_error(self) -> CogmentError:
        if self._detached and not self._end.is_over:
            self._connection._check_open()
        error = self._end.error
        if error is not None:
            return TrialError(error.code, error.message, error.details)
        return TrialEndedError(TRIAL_OVER.format(trial_id=self._id, reason=self._end.reason))

    def _call(self, method: str, request: Any) -> Any:
        try:
            return self._connection._call(method, request)
        except CogmentRpcError as error:
            raise self._on_call_error(error) from None

    def _on_call_error(self, error: CogmentRpcError) -> CogmentError:
        """Records what an error says about the trial; returns the exception to raise."""
        error = classify(error)
        if isinstance(error, TrialError):  # ABORTED, or NOT_FOUND for a failed trial
            self._finish(trial_end_reason(error.message), error=error)
            return error
        if error.code is grpc.StatusCode.NOT_FOUND:
            reason = trial_end_reason(error.message)
            self._finish(reason)
            return TrialEndedError(TRIAL_OVER.format(trial_id=self._id, reason=reason))
        if error.code is grpc.StatusCode.UNAVAILABLE and not self._detached:
            # the trial lived in the orchestrator's memory: it is gone with it
            return self._fail(lost_reason(self._connection.endpoint, error), error)
        if error.code is grpc.StatusCode.CANCELLED and (self._end.is_over or self._detached):
            return self._over_error()
        return error

    def _on_action_error(self, error: CogmentRpcError) -> CogmentError:
        """`_on_call_error` for the action itself: a timed-out action leaves the trial in an
        unknown state (applied or not), so the client ends it."""
        timeout = self._connection.timeout
        if error.code is not grpc.StatusCode.DEADLINE_EXCEEDED or timeout is None:
            return self._on_call_error(error)
        if not self._end.is_over:
            self._connection._end_in_background(self._id)
        return self._fail(REASON_TIMED_OUT.format(timeout=timeout), error)

    def _fail(self, reason: str, cause: CogmentRpcError) -> CogmentError:
        """Ends the trial for this client with a TrialError made of `reason` and `cause`;
        returns what to raise (the first end recorded wins)."""
        self._finish(reason, error=failure(self._id, reason, cause))
        return self._over_error()

    def _stream_reply(self, event: Event) -> orchestrator_pb2.TrialActionReply:
        if isinstance(event, CogmentRpcError):
            raise event
        if isinstance(event, StreamEnd):
            self._finish(REASON_STREAM_CLOSED)
            raise self._over_error()
        return event

    def _on_stream_event(self, event: Event) -> None:
        """An action-stream event nobody waited for: the trial ended, or a late reply."""
        if self._end.is_over or isinstance(event, StreamEnd):  # (an end after trial_is_over)
            return
        if isinstance(event, CogmentRpcError):
            self._on_call_error(event)
            return
        try:
            self._absorb(event)
        except CogmentError:
            log.exception("trial %s: bad reply on the action stream", self._id)

    def _on_watch_event(self, event: Event) -> None:
        """The watch stream of a trial without a slot: only its end matters."""
        if isinstance(event, CogmentRpcError):
            if event.code in _WATCH_ENDS:
                self._on_call_error(event)
            else:
                self._finish(f"lost the trial's watch stream: {event}")
        elif isinstance(event, StreamEnd) or event.trial_is_over:
            self._finish(self._ask_end_reason())

    def _ask_end_reason(self) -> str:
        """Why the trial ended, as the orchestrator's tombstone says (one Heartbeat call)."""
        if self._end.is_over or self._end.by_client or self._detached:
            return REASON_ORCHESTRATOR
        error = self._heartbeat_call(min(self._connection.timeout or 5.0, 5.0))
        if error is not None and error.code is grpc.StatusCode.NOT_FOUND:
            return trial_end_reason(error.message)
        return REASON_ORCHESTRATOR

    def _heartbeat_call(self, timeout: float) -> Optional[CogmentRpcError]:
        """One Heartbeat; returns its error, if any (never raises)."""
        request = orchestrator_pb2.TrialHeartbeatRequest(trial_id=self._id)
        try:
            self._connection._call("Heartbeat", request, timeout)
        except CogmentRpcError as error:
            return error
        except CogmentError:  # the connection closed meanwhile
            pass
        return None

    def _finish(self, reason: str, error: Optional[TrialError] = None, remote: bool = True) -> None:
        if not self._end.finish(reason, error, remote):
            return
        with self._lock:
            streams = [s for s in (self._stream, self._watcher) if s is not None]
        for stream in streams:
            stream.close()
        self._connection._forget(self)
        self._end.notify()

    def _activate(self) -> None:
        """Starts what keeps the trial in touch: heartbeats (slot) or the watch stream."""
        if self._end.is_over:
            return
        if self._actor_class is not None:
            heartbeat = self._connection._heartbeat
            if heartbeat is not None:
                heartbeat.register(self)
            return
        watcher = ActionStream(
            self._connection._open_stream,
            self._connection._translate,
            self._on_watch_event,
            name=f"cogment-watch-{self._id}",
        )
        with self._lock:
            self._watcher = watcher
        watcher.send(orchestrator_pb2.TrialActionRequest(trial_id=self._id, actor_id=NO_ACTOR_ID))

    def _detach(self) -> None:
        """The connection is closing: stop streams; the trial becomes unusable."""
        with self._lock:
            self._detached = True
            streams = [s for s in (self._stream, self._watcher) if s is not None]
        for stream in streams:
            stream.close()

    def _heartbeat_due(self, now: float, interval: float) -> bool:
        with self._lock:
            return (
                not self._end.is_over
                and not self._detached
                and not self._end.by_client  # end() is under way
                and self._pending == 0
                and now - self._last_activity >= interval
            )

    def _send_heartbeat(self) -> None:
        with self._lock:
            self._last_activity = time.monotonic()
        timeout = max(2.0 * (self._connection.heartbeat_interval or 1.0), 1.0)
        error = self._heartbeat_call(min(timeout, self._connection.timeout or timeout))
        if error is None:
            self._unreachable.reached()
        elif error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED):
            self._on_call_error(error)
        elif error.code is grpc.StatusCode.UNAVAILABLE:
            now = time.monotonic()
            if self._unreachable.failed(now):
                extra = self._unreachable.describe(now)
                self._fail(lost_reason(self._connection.endpoint, error, extra), error)
            else:
                log.debug("trial %s: heartbeat failed: %s", self._id, error)
        else:
            log.debug("trial %s: heartbeat failed: %s", self._id, error)
