"""`Contact`: how a client trial keeps in touch with its orchestrator, and learns how it ends.

A `ClientTrial` owns one. The Contact makes the trial's calls, acts over unary calls or an
ActionStream, sends its heartbeats while it sits idle (a trial with a slot) or watches it
over a stream (a trial without one), all through the trial's `TrialConnection`; and it is the
one place that turns what those hear into the trial's end, which `ending.TrialEnd` records: a
normal end (`TrialEndedError` afterwards), a failing service (`TrialError` with the
orchestrator's reason), or an end the client decides itself, as a failure (`TrialError`):
the orchestrator is unreachable (UNAVAILABLE on a call about the trial, or on
`LOST_AFTER_BEATS` heartbeats in a row over `LOST_AFTER_SECONDS`: trials live in the
orchestrator's memory), or a `do_action` timed out (its effect is unknown).

Once the connection is closed, the trial is left as it was: calls raise `LifecycleError`,
and the end of a stream the connection cancelled is not an end of the trial.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, Callable, Optional

import grpc

from cogment.api import orchestrator_pb2
from cogment.client.ending import (
    REASON_ORCHESTRATOR,
    REASON_STREAM_CLOSED,
    REASON_TIMED_OUT,
    REASON_UNKNOWN,
    TrialEnd,
    classify,
    failure,
    lost_reason,
)
from cogment.client.heartbeat import Unreachable
from cogment.client.interface import TrialConnection
from cogment.client.stream import ActionStream, Event, StreamEnd
from cogment.constants import NO_ACTOR_ID
from cogment.errors import (
    CogmentError,
    CogmentRpcError,
    LifecycleError,
    TrialEndedError,
    TrialError,
    is_unknown_trial,
    trial_end_reason,
)

log = logging.getLogger("cogment.client.trial")  # the trial's logger: this is its contact

TRIAL_OVER = "trial {trial_id} is over ({reason})"
ACTION_PENDING = "trial {trial_id}: actor {actor_id} already has an action pending"
# how a watch stream may end that says something about the trial (anything else: it was lost)
_WATCH_ENDS = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE)

Reply = orchestrator_pb2.TrialActionReply


class Contact:
    """A client trial's calls, action or watch stream and heartbeats, and what they say of
    its end.

    Args:
        connection: the trial's connection.
        trial: the `ClientTrial` that owns this contact (what the connection forgets once the
            trial is over).
        trial_id: its id.
        end: the trial's end, which only this contact finishes (the client's own `end()`
            claims it first, then has this contact finish it).
        has_slot: whether the trial has an actor slot for this client (heartbeats), or is
            only watched (a watch stream).
        on_late_reply: takes in an action reply that arrived while no `act` waited for it.
    """

    def __init__(
        self,
        connection: TrialConnection,
        trial: object,
        trial_id: str,
        end: TrialEnd,
        *,
        has_slot: bool,
        on_late_reply: Callable[[Reply], Any],
    ) -> None:
        self._connection = connection
        self._trial = trial
        self._id = trial_id
        self._end = end
        self._has_slot = has_slot
        self._on_late_reply = on_late_reply
        self._lock = threading.Lock()
        self._pending = 0  # actions under way
        self._last_activity = time.monotonic()
        self._stream: Optional[ActionStream] = None
        self._watcher: Optional[ActionStream] = None
        self._unreachable = Unreachable()  # only the heartbeat thread touches it

    # ------------------------------------------------------------------ keeping in touch

    def start(self) -> None:
        """Starts keeping in touch: heartbeats while idle (a trial with a slot), or a watch
        stream that tells when the trial ends (a trial without one).

        Raises:
            LifecycleError: the connection is closed (a watch stream cannot be opened).
        """
        if self._end.is_over:
            return
        if self._has_slot:
            self._connection.keep_alive(self)
            return
        watcher = ActionStream(
            functools.partial(self._connection.open_action_stream, trial_id=self._id),
            self._on_watch_event,
            name=f"cogment-watch-{self._id}",
        )
        with self._lock:
            self._watcher = watcher
        watcher.send(orchestrator_pb2.TrialActionRequest(trial_id=self._id, actor_id=NO_ACTOR_ID))

    def heartbeat_due(self, now: float, interval: float) -> bool:
        """True when the trial is running, idle (no action under way, no `end()` under way)
        and has been quiet for `interval` seconds."""
        with self._lock:
            return (
                not self._end.is_over
                and not self._connection.is_closed
                and not self._end.by_client
                and self._pending == 0
                and now - self._last_activity >= interval
            )

    def send_heartbeat(self) -> None:
        """Sends one Heartbeat and takes in what it says (never raises): the trial's end, or,
        after enough unreachable ones in a row, that the orchestrator is lost."""
        with self._lock:
            self._last_activity = time.monotonic()
        timeout = max(2.0 * (self._connection.heartbeat_interval or 1.0), 1.0)
        error = self._heartbeat(min(timeout, self._connection.timeout or timeout))
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

    # ------------------------------------------------------------------ calls and actions

    def check_usable(self) -> None:
        """Raises what a call about the trial would meet: the trial's end, or a closed
        connection.

        Raises:
            TrialEndedError, TrialError: the trial is over (TrialError: by a failure).
            LifecycleError: the connection is closed.
        """
        if self._end.is_over:
            raise self.over_error()
        self._connection.ensure_open()

    def over_error(self) -> CogmentError:
        """What to raise for a trial that is over: its TrialError, or a TrialEndedError."""
        error = self._end.error
        if error is not None:
            return TrialError(error.code, error.message, error.details)
        return TrialEndedError(TRIAL_OVER.format(trial_id=self._id, reason=self._end.reason))

    def call(self, method: str, request: Any) -> Any:
        """One unary call about the trial; an error that says the trial ended ends it.

        Raises:
            TrialEndedError, TrialError: the trial is over.
            CogmentRpcError: any other refusal.
        """
        try:
            return self._connection.call_unary(method, request)
        except CogmentRpcError as error:
            raise self._on_call_error(error) from None

    def act(self, request: orchestrator_pb2.TrialActionRequest) -> Reply:
        """Sends an action (over the action stream once `begin_actions_stream` was called)
        and waits for its reply; a timed-out action ends the trial (see `do_action`).

        Raises:
            TrialEndedError, TrialError: the trial is over.
            CogmentRpcError: FAILED_PRECONDITION when the stream already carries an action,
                or any other refusal.
        """
        with self._lock:
            stream = self._stream
            if self._end.is_over:
                raise self.over_error()
            if stream is not None and self._pending:
                raise CogmentRpcError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    ACTION_PENDING.format(trial_id=self._id, actor_id=request.actor_id),
                )
            self._pending += 1
        try:
            if stream is not None:
                return self._stream_reply(stream.exchange(request, self._connection.timeout))
            return self._connection.call_unary("Action", request)
        except CogmentRpcError as error:
            raise self._on_action_error(error) from None
        finally:
            with self._lock:
                self._pending -= 1
                self._last_activity = time.monotonic()

    def begin_actions_stream(self) -> None:
        """From now on `act` goes over one ActionStream (idempotent while it is open).

        Raises:
            LifecycleError: the connection is closed.
        """
        with self._lock:
            if self._stream is not None and not self._stream.closed:
                return
            self._stream = ActionStream(
                functools.partial(self._connection.open_action_stream, trial_id=self._id),
                self._on_stream_event,
                name=f"cogment-stream-{self._id}",
            )

    # ------------------------------------------------------------------ the end

    def finish(self, reason: str, error: Optional[TrialError] = None, remote: bool = True) -> None:
        """Records the trial's end (the first one recorded wins), releases what the trial
        holds (streams, heartbeats, its place in the connection) and tells who is waiting."""
        if not self._end.finish(reason, error, remote):
            return
        with self._lock:
            streams = [s for s in (self._stream, self._watcher) if s is not None]
        for stream in streams:
            stream.close()
        self._connection.stop_keeping_alive(self)
        self._connection.forget_trial(self._trial)
        self._end.notify()

    def finish_as_told(self) -> None:
        """The orchestrator said the trial is over (`trial_is_over`): ends it with the reason
        the orchestrator gives."""
        self.finish(self._ask_end_reason())

    # ------------------------------------------------------------------ what errors say

    def _on_call_error(self, error: CogmentRpcError) -> CogmentError:
        """Records what an error says about the trial; returns the exception to raise."""
        error = classify(error)
        if isinstance(error, TrialError):  # ABORTED, or NOT_FOUND for a failed trial
            self.finish(trial_end_reason(error.message), error=error)
            return error
        if is_unknown_trial(error.code, error.message):  # no record of it: it was lost
            return self._fail(REASON_UNKNOWN.format(endpoint=self._connection.endpoint), error)
        if error.code is grpc.StatusCode.NOT_FOUND:
            reason = trial_end_reason(error.message)
            self.finish(reason)
            return TrialEndedError(TRIAL_OVER.format(trial_id=self._id, reason=reason))
        if error.code is grpc.StatusCode.UNAVAILABLE and not self._connection.is_closed:
            # the trial lived in the orchestrator's memory: it is gone with it
            return self._fail(lost_reason(self._connection.endpoint, error), error)
        if error.code is grpc.StatusCode.CANCELLED:
            if self._end.is_over:
                return self.over_error()
            try:
                self._connection.ensure_open()
            except LifecycleError as closed:  # cancelled by the connection closing: say so
                return closed
        return error

    def _on_action_error(self, error: CogmentRpcError) -> CogmentError:
        """`_on_call_error` for the action itself: a timed-out action leaves the trial in an
        unknown state (applied or not), so the client ends it."""
        timeout = self._connection.timeout
        if error.code is not grpc.StatusCode.DEADLINE_EXCEEDED or timeout is None:
            return self._on_call_error(error)
        if not self._end.is_over:
            self._connection.end_in_background(self._id)
        return self._fail(REASON_TIMED_OUT.format(timeout=timeout), error)

    def _fail(self, reason: str, cause: CogmentRpcError) -> CogmentError:
        """Ends the trial for this client with a TrialError made of `reason` and `cause`;
        returns what to raise (the first end recorded wins)."""
        self.finish(reason, error=failure(self._id, reason, cause))
        return self.over_error()

    def _ask_end_reason(self) -> str:
        """Why the trial ended, as the orchestrator's tombstone says (one Heartbeat call)."""
        if self._end.is_over or self._end.by_client or self._connection.is_closed:
            return REASON_ORCHESTRATOR
        error = self._heartbeat(min(self._connection.timeout or 5.0, 5.0))
        if error is not None and error.code is grpc.StatusCode.NOT_FOUND:
            return trial_end_reason(error.message)
        return REASON_ORCHESTRATOR

    def _heartbeat(self, timeout: float) -> Optional[CogmentRpcError]:
        """One Heartbeat; returns its error, if any (never raises)."""
        request = orchestrator_pb2.TrialHeartbeatRequest(trial_id=self._id)
        try:
            self._connection.call_unary("Heartbeat", request, timeout)
        except CogmentRpcError as error:
            return error
        except CogmentError:  # the connection closed meanwhile
            pass
        return None

    # ------------------------------------------------------------------ what streams say

    def _stream_reply(self, event: Event) -> Reply:
        if isinstance(event, CogmentRpcError):
            raise event
        if isinstance(event, StreamEnd):
            self.finish(REASON_STREAM_CLOSED)
            raise self.over_error()
        return event

    def _on_stream_event(self, event: Event) -> None:
        """An action-stream event nobody waited for: the trial ended, or a late reply."""
        if self._end.is_over or isinstance(event, StreamEnd):  # (an end after trial_is_over)
            return
        if isinstance(event, CogmentRpcError):
            if not self._connection.is_closed:  # else: cancelled by the connection closing
                self._on_call_error(event)
            return
        try:
            self._on_late_reply(event)
        except CogmentError:
            log.exception("trial %s: bad reply on the action stream", self._id)

    def _on_watch_event(self, event: Event) -> None:
        """The watch stream of a trial without a slot: only its end matters."""
        if isinstance(event, (CogmentRpcError, StreamEnd)) and self._connection.is_closed:
            return  # cancelled by the connection closing: the trial is left as it is
        if isinstance(event, CogmentRpcError):
            if event.code in _WATCH_ENDS:
                self._on_call_error(event)
            else:
                self.finish(f"lost the trial's watch stream: {event}")
        elif isinstance(event, StreamEnd) or event.trial_is_over:
            self.finish_as_told()
