"""`Connection`: a client's link to an orchestrator, from which trials are started or joined.

```python
from cogment.client import Connection
with Connection(cog_settings, "127.0.0.1:9000") as conn:
    trial = conn.start_trial(cog_settings.actor_classes.player)
    obs, reward, messages = trial.do_action(Move(cell=1))
```

A Connection owns one gRPC channel (message-size limits lifted) when given an address, and
leaves alone a `grpc.Channel` or a stub-like `TrialService` it is handed. Every call carries the
gRPC metadata `session_id: <Connection.session_id>`. One background thread per Connection sends
`Heartbeat` for the trials that sit idle between actions; when they keep finding the
orchestrator unreachable, the trials are over (see `ClientTrial.do_action`).

gRPC errors become `cogment.errors` exceptions (one traceback, no gRPC internals); a failed
unary call keeps gRPC's debug string in the exception's `details`.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Optional, Protocol, Union

import grpc

from cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment.client.ending import UNREACHABLE, classify
from cogment.client.heartbeat import HeartbeatThread
from cogment.client.slot import type_name
from cogment.constants import UNLIMITED_MESSAGES
from cogment.errors import CogmentError, CogmentRpcError, ConfigurationError, from_rpc_error
from cogment.settings import ActorClass, Settings

if TYPE_CHECKING:
    from cogment.client.link import TrialLink
    from cogment.client.trial import ClientTrial

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_INTERVAL = 2.0  # seconds; keep it well below the trials' max_inactivity

BAD_ENDPOINT = (
    "invalid orchestrator endpoint {endpoint!r} (expected 'host:port' or 'grpc://host:port')"
)
CONNECTION_CLOSED = "the connection to {endpoint} is closed; open a new Connection"
BAD_SESSION_ID = (
    "session_id must be 1 to 128 printable ASCII characters (letters, digits, '-', '_', '.'), "
    "got {session_id!r}"
)

_ENDPOINT_RE = re.compile(
    r"^(?:grpc://)?(?P<host>[^\s:/\[\]]+|\[[0-9a-fA-F:.]+\]):(?P<port>\d{1,5})$"
)
_SESSION_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class TrialService(Protocol):
    """The `cogment.Trial` calls a Connection makes, shaped like the generated `TrialStub`.

    A stub on a gRPC channel fits; so does an in-memory fake whose methods take
    `(request, timeout=None, metadata=None)` (and, for `ActionStream`, a request iterator
    and return an iterator of replies).
    """

    def GetTrialParams(self, request: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...
    def Start(self, request: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...
    def Join(self, request: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...
    def End(self, request: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...
    def Action(self, request: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...
    def ActionStream(self, requests: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...
    def Heartbeat(self, request: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...
    def GiveFeedback(self, request: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...
    def SendMessage(self, request: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...
    def Version(self, request: Any, timeout: Any = ..., metadata: Any = ...) -> Any: ...


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


def parse_endpoint(endpoint: str) -> str:
    """`host:port` or `grpc://host:port` -> `host:port`.

    Raises:
        ConfigurationError: the endpoint is not of either form.
    """
    match = _ENDPOINT_RE.match(endpoint.strip()) if isinstance(endpoint, str) else None
    if match is None or not 0 < int(match.group("port")) < 65536:
        raise ConfigurationError(BAD_ENDPOINT.format(endpoint=endpoint))
    return f"{match.group('host')}:{match.group('port')}"


class Connection:
    """A client's connection to an orchestrator.

    Args:
        cog_settings: the project's generated `cog_settings` module.
        endpoint: `"host:port"` or `"grpc://host:port"` (the Connection opens and owns a
            channel), a `grpc.Channel` (used, never closed), or a `TrialService` (a stub or an
            in-memory fake, used as is).
        timeout: deadline in seconds of every unary call, `do_action` included; None (the
            default) waits as long as the orchestrator takes (`do_action` waits for every
            actor of the tick). A `do_action` that times out leaves the trial's state unknown
            (the orchestrator may still apply the action), so the trial is then over for this
            client: it raises `TrialError` (DEADLINE_EXCEEDED) and the client ends the trial
            on the orchestrator, best effort.
        heartbeat_interval: seconds between heartbeats of a trial idle between actions;
            None disables them (the orchestrator then reaps such a trial after its
            `max_inactivity`).
        session_id: this client's session id (default: a new uuid4). A client that comes
            back with the session id it had (a web page reloaded, a front end restarted) can
            `join_trial` again the slots that session holds; keep it secret like a password.

    Raises:
        ConfigurationError: the endpoint, a duration or the settings are malformed.
    """

    def __init__(
        self,
        cog_settings: Settings | Any,
        endpoint: Union[str, grpc.Channel, TrialService],
        *,
        timeout: Optional[float] = None,
        heartbeat_interval: Optional[float] = DEFAULT_HEARTBEAT_INTERVAL,
        session_id: Optional[str] = None,
    ) -> None:
        if session_id is not None and (
            not isinstance(session_id, str) or not _SESSION_ID_RE.match(session_id)
        ):
            raise ConfigurationError(BAD_SESSION_ID.format(session_id=session_id))
        if heartbeat_interval is not None and heartbeat_interval <= 0:
            raise ConfigurationError(
                f"heartbeat_interval must be a positive number of seconds or None, got {heartbeat_interval!r}"
            )
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        for name in ("actor_classes", "trial"):
            if not hasattr(cog_settings, name):
                raise ConfigurationError(
                    f"Connection: {cog_settings!r} has no {name!r}: pass the project's "
                    "generated cog_settings module"
                )
        self._settings = cog_settings
        self._channel: Optional[grpc.Channel] = None
        if isinstance(endpoint, str):
            self._endpoint = parse_endpoint(endpoint)
            self._channel = grpc.insecure_channel(self._endpoint, options=UNLIMITED_MESSAGES)
            self._stub: Any = orchestrator_pb2_grpc.TrialStub(self._channel)
        elif isinstance(endpoint, grpc.Channel):
            self._endpoint = "<channel>"
            self._stub = orchestrator_pb2_grpc.TrialStub(endpoint)
        elif hasattr(endpoint, "Action") and hasattr(endpoint, "Start"):
            self._endpoint = f"<{type(endpoint).__name__}>"
            self._stub = endpoint
        else:
            raise ConfigurationError(BAD_ENDPOINT.format(endpoint=endpoint))
        self._timeout = timeout
        self._session_id = session_id or str(uuid.uuid4())
        self._metadata = (("session_id", self._session_id),)
        self._lock = threading.Lock()
        self._state = _State.OPEN
        self._trials: list[ClientTrial] = []
        self._heartbeat = (
            HeartbeatThread(heartbeat_interval, name=f"cogment-heartbeat-{self._session_id[:8]}")
            if heartbeat_interval is not None
            else None
        )

    # ------------------------------------------------------------------ properties

    @property
    def endpoint(self) -> str:
        """The orchestrator's `host:port` (or a label for a channel/service passed in)."""
        return self._endpoint

    @property
    def session_id(self) -> str:
        """This connection's session id (a uuid4 unless one was given), sent as gRPC metadata
        `session_id` with every call."""
        return self._session_id

    @property
    def settings(self) -> Any:
        """The `cog_settings` module this connection was made with."""
        return self._settings

    @property
    def timeout(self) -> Optional[float]:
        """The deadline in seconds of each unary call (None: no deadline)."""
        return self._timeout

    @property
    def heartbeat_interval(self) -> Optional[float]:
        """Seconds between heartbeats of an idle trial (None: no heartbeats)."""
        return self._heartbeat.interval if self._heartbeat is not None else None

    @property
    def is_closed(self) -> bool:
        """True once `close()` was called."""
        return self._state is _State.CLOSED

    # ------------------------------------------------------------------ trials

    def start_trial(
        self,
        actor_class: ActorClass | str,
        trial_cfg: Any = None,
        plugins: Sequence[Any] = (),
        user_id: str = "",
    ) -> ClientTrial:
        """Starts a trial and takes its first `human` slot.

        Args:
            actor_class: the class this client plays (`cog_settings.actor_classes.<id>` or
                its id). Ignored when the trial has no human slot (`trial.actor_id == -1`).
            trial_cfg: an instance of `cog_settings.trial.config_type`, or None for the
                project's default trial config.
            plugins: objects with a `start_trial(trial)` method, called in order once the
                trial has started; when what one returns has a `trial_ended()` method, that
                is called once when the trial ends, by any means (see
                `ClientTrial.call_at_end`). A plugin that raises ends the trial, and
                `start_trial` raises its exception.
            user_id: passed to the pre-trial hooks.

        Returns:
            The ClientTrial, holding the tick-0 observation.

        Raises:
            ConfigurationError: unknown actor class, a slot of another class, a plugin
                without `start_trial`.
            TypeError: `trial_cfg` is not a `cog_settings.trial.config_type`.
            CogmentRpcError: the orchestrator refused (e.g. INVALID_ARGUMENT from a hook).
        """
        from cogment.client.trial import ClientTrial

        actor_class = self._actor_class(actor_class)
        plugins = list(plugins or ())
        for plugin in plugins:
            if not callable(getattr(plugin, "start_trial", None)):
                raise ConfigurationError(
                    f"start_trial: a plugin must have a start_trial(trial) method, got {plugin!r}"
                )
        request = orchestrator_pb2.TrialStartRequest(user_id=user_id or "")
        config_type = getattr(getattr(self._settings, "trial", None), "config_type", None)
        if trial_cfg is not None:
            if config_type is None:
                raise ConfigurationError(
                    "start_trial: trial_cfg given but the project declares no trial.config_type"
                )
            if not isinstance(trial_cfg, config_type):
                raise TypeError(
                    f"start_trial: trial_cfg must be a {config_type.DESCRIPTOR.full_name}, "
                    f"got {type_name(trial_cfg)}"
                )
            request.config.SetInParent()  # present, even when all its fields are defaults
            request.config.content = trial_cfg.SerializeToString()
        reply = self._call("Start", request)
        try:
            trial = ClientTrial(self, actor_class, reply, trial_cfg)
        except BaseException:
            # clean up on partial failure: a trial we started but cannot drive is ended
            self._end_quietly(reply.trial_id)
            raise
        self._adopt(trial)
        try:
            for plugin in plugins:
                ended = plugin.start_trial(trial)
                if callable(getattr(ended, "trial_ended", None)):
                    trial.call_at_end(ended.trial_ended)
        except BaseException:
            trial.end()
            raise
        return trial

    def join_trial(
        self, actor_class: ActorClass | str, trial_id: str, actor_id: int
    ) -> ClientTrial:
        """Joins the `human` slot `actor_id` of a running trial.

        A slot this connection's `session_id` already holds (it started the trial, or joined
        the slot before) can be joined again: a client that lost its connection and came
        back with the same `session_id` takes its slot back, with the observation of the
        tick the trial waits on.

        Raises:
            ConfigurationError: the slot is not of `actor_class`.
            CogmentRpcError: NOT_FOUND (no such trial or actor, or the trial has ended),
                FAILED_PRECONDITION (the slot is not human or already joined).
            TrialError: the trial was ended by a failing service.
        """
        from cogment.client.trial import ClientTrial

        actor_class = self._actor_class(actor_class)
        request = orchestrator_pb2.TrialJoinRequest(trial_id=trial_id, actor_id=actor_id)
        try:
            reply = self._call("Join", request)
        except CogmentRpcError as error:
            raise classify(error) from None
        trial = ClientTrial(self, actor_class, reply)
        self._adopt(trial)
        return trial

    def get_trial_params(self) -> common_pb2.TrialParams:
        """The project's default trial parameters, as the orchestrator holds them."""
        return self._call("GetTrialParams", orchestrator_pb2.GetTrialParamsRequest()).params

    def version(self) -> dict[str, str]:
        """The orchestrator's version entries (`cogment-api`, `cogment-py`, ...)."""
        info = self._call("Version", common_pb2.VersionRequest())
        return {v.name: v.version for v in info.versions}

    @property
    def trials(self) -> list[ClientTrial]:
        """The trials of this connection that are not over yet."""
        with self._lock:
            return [t for t in self._trials if not t.is_over]

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stops heartbeats and streams and closes the channel the Connection owns.

        Trials are left running on the orchestrator (end them first with `trial.end()`; an
        abandoned trial with humans is reaped after its `max_inactivity`). Idempotent.
        """
        with self._lock:
            if self._state is _State.CLOSED:
                return
            self._state = _State.CLOSED
            trials, self._trials = self._trials, []
        for trial in trials:
            trial._detach()
        if self._heartbeat is not None:
            self._heartbeat.stop(timeout=0)
        if self._channel is not None:
            self._channel.close()  # cancels a heartbeat in flight
        if self._heartbeat is not None:
            self._heartbeat.join(5.0)

    def __enter__(self) -> Connection:
        self._check_open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Connection({self._endpoint!r}, session_id={self._session_id!r}, {self._state.value})"
        )

    # ------------------------------------------------------------------ used by ClientTrial

    def _check_open(self) -> None:
        """Raises CogmentError when the connection is closed."""
        if self._state is _State.CLOSED:
            raise CogmentError(CONNECTION_CLOSED.format(endpoint=self._endpoint))

    def _call(self, method: str, request: Any, timeout: Optional[float] = -1.0) -> Any:
        """One unary call with the session metadata; gRPC errors become cogment errors here.

        `timeout` -1 means the connection's timeout.
        """
        self._check_open()
        deadline = self._timeout if timeout is not None and timeout < 0 else timeout
        try:
            return getattr(self._stub, method)(request, timeout=deadline, metadata=self._metadata)
        except grpc.RpcError as error:
            # one traceback for the user, not gRPC's internals first: the original's debug
            # string stays in `details`
            raise self._translate(error, debug=True) from None

    def _open_stream(self, requests: Iterator[Any]) -> Any:
        """Opens an ActionStream fed by `requests`; returns the reply iterator."""
        self._check_open()
        return self._stub.ActionStream(requests, metadata=self._metadata)

    def _translate(self, error: grpc.RpcError, debug: bool = False) -> CogmentRpcError:
        """The one boundary where gRPC errors become cogment errors.

        `debug`: keep gRPC's debug string in `details` (only for a finished unary call: a
        stream's may block until the stream is torn down).
        """
        translated = from_rpc_error(error)
        code, message = translated.code, translated.message
        if code is grpc.StatusCode.UNAVAILABLE:
            message = UNREACHABLE.format(endpoint=self._endpoint, details=message)
        elif code is grpc.StatusCode.CANCELLED and self.is_closed:
            message = CONNECTION_CLOSED.format(endpoint=self._endpoint)
        debug_string = getattr(error, "debug_error_string", None) if debug else None
        details = debug_string() if callable(debug_string) else None
        return type(translated)(code, message, details)

    def _forget(self, trial: TrialLink) -> None:
        """Drops a trial that is over (it no longer needs heartbeats or closing)."""
        with self._lock:
            self._trials = [t for t in self._trials if t is not trial]
        if self._heartbeat is not None:
            self._heartbeat.unregister(trial)

    # ------------------------------------------------------------------ helpers

    def _adopt(self, trial: ClientTrial) -> None:
        with self._lock:
            closed = self._state is _State.CLOSED
            if not closed and not trial.is_over:
                self._trials.append(trial)
        if closed:
            trial._detach()
            self._check_open()
        trial._activate()

    def _actor_class(self, actor_class: ActorClass | str) -> ActorClass:
        classes = self._settings.actor_classes
        if isinstance(actor_class, str):
            found = classes.get(actor_class)
            if found is None:
                raise ConfigurationError(
                    f"unknown actor class {actor_class!r} (declared: {', '.join(classes.ids)})"
                )
            return found
        if not isinstance(actor_class, ActorClass) or classes.get(actor_class.id) is None:
            raise ConfigurationError(
                f"expected one of cog_settings.actor_classes ({', '.join(classes.ids)}), "
                f"got {actor_class!r}"
            )
        return actor_class

    def _end_quietly(self, trial_id: str) -> None:
        """Ends a trial on the orchestrator, best effort (errors are only logged)."""
        try:
            self._call("End", orchestrator_pb2.TrialEndRequest(trial_id=trial_id))
        except (CogmentError, ValueError) as error:  # ValueError: the channel closed meanwhile
            log.debug("trial %s: End failed: %s", trial_id, error)

    def _end_in_background(self, trial_id: str) -> None:
        """`_end_quietly` from a daemon thread (bounded by the connection's timeout)."""
        threading.Thread(
            target=self._end_quietly,
            args=(trial_id,),
            name=f"cogment-end-call-{trial_id}",
            daemon=True,
        ).start()
