"""`Connection`: a client's link to an orchestrator, from which trials are started or joined.

```python
from cogment.client import Connection
with Connection(cog_settings, "127.0.0.1:9000") as conn:
    trial = conn.start_trial(cog_settings.actor_classes.player)
    obs, reward, messages = trial.do_action(Move(cell=1))
```

A Connection owns one gRPC channel (message-size limits lifted) when given an address
(`grpcs://host:port`: over TLS, checking the orchestrator's certificate against `tls_ca` or
the system's roots), and leaves alone a `grpc.Channel` or a stub-like `TrialService` it is
handed. Every call carries the gRPC metadata `session_id: <Connection.session_id>`. One
background thread per Connection sends `Heartbeat` for the trials that sit idle between
actions; when they keep finding the orchestrator unreachable, the trials are over (see
`ClientTrial.do_action`).

gRPC errors become `cogment.errors` exceptions (one traceback, no gRPC internals); a failed
unary call keeps gRPC's debug string in the exception's `details`. A closed Connection
refuses every use with `LifecycleError`.

A Connection is what its trials talk through: it satisfies `interface.TrialConnection`
(`call_unary`, `open_action_stream`, `keep_alive`, `forget_trial`, ...), and knows of a
`ClientTrial` only its public API.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional, Protocol, Union

import grpc

from cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment.client.ending import UNREACHABLE, classify
from cogment.client.heartbeat import Beating, HeartbeatThread
from cogment.client.interface import CONNECTION_TIMEOUT, Deadline, UseConnectionTimeout
from cogment.client.routing import Routes
from cogment.client.slot import type_name
from cogment.client.trial import ClientTrial
from cogment.constants import (
    ACTOR_CLASS_METADATA,
    FAST_RECONNECT,
    SESSION_ID_METADATA,
    UNLIMITED_MESSAGES,
)
from cogment.endpoint import BAD_ORCHESTRATOR_ENDPOINT, GRPCS_SCHEME, parse_orchestrator_endpoint
from cogment.errors import (
    CogmentError,
    CogmentRpcError,
    ConfigurationError,
    LifecycleError,
    from_rpc_error,
    is_wrong_slot,
)
from cogment.settings import UNKNOWN_ACTOR_CLASS, ActorClass, Settings
from cogment.tls import FilePath, channel_credentials, explained

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_INTERVAL = 2.0  # seconds; keep it well below the trials' max_inactivity

CONNECTION_CLOSED = "the connection to {endpoint} is closed; open a new Connection"
MIXED_SCHEMES = "orchestrators {endpoints}: call them all over TLS (grpcs://) or none"


def _is_endpoint_list(endpoint: Any) -> bool:
    return isinstance(endpoint, (list, tuple)) and all(isinstance(e, str) for e in endpoint)


BAD_SESSION_ID = (
    "session_id must be 1 to 128 printable ASCII characters (letters, digits, '-', '_', '.'), "
    "got {session_id!r}"
)
CA_WITHOUT_TLS = (
    "Connection: tls_ca is for an orchestrator called over TLS, at grpcs://host:port; "
    "got {endpoint!r}"
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


class ConnectionState(enum.Enum):
    """Where a Connection is in its life: open from construction until `close()`."""

    OPEN = "open"
    CLOSED = "closed"


class Connection:
    """A client's connection to an orchestrator.

    Args:
        cog_settings: the project's generated `cog_settings` module.
        endpoint: `"host:port"` or `"grpc://host:port"`, or `"grpcs://host:port"` over TLS
            (the Connection opens and owns its channels); a list of them, or a name with
            several addresses, for several orchestrators (new trials spread over them, each
            trial's calls sent to its owner: see `cogment.client.routing`); a
            `grpc.Channel` (used, never closed), or a `TrialService` (a stub or an
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
        tls_ca: for a `grpcs://` endpoint, the PEM file of the CA certificates the
            orchestrator's certificate is checked against (None: the system's roots); e.g.
            the certificate itself when it is self-signed.

    Raises:
        ConfigurationError: the endpoint, a duration or the settings are malformed; a
            `tls_ca` that cannot be read or holds no PEM certificate, or one given with an
            endpoint that is not `grpcs://`.

    Its trials reach it through `interface.TrialConnection` (`ensure_open`, `call_unary`,
    `open_action_stream`, `keep_alive`, `stop_keeping_alive`, `forget_trial`,
    `end_in_background`); user code needs none of those. Once closed, it raises
    `LifecycleError` on any use.
    """

    def __init__(
        self,
        cog_settings: Settings | Any,
        endpoint: Union[str, Sequence[str], grpc.Channel, TrialService],
        *,
        timeout: Optional[float] = None,
        heartbeat_interval: Optional[float] = DEFAULT_HEARTBEAT_INTERVAL,
        session_id: Optional[str] = None,
        tls_ca: Optional[FilePath] = None,
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
        self._owns_channels = False
        self._secure = False
        self._credentials: Optional[grpc.ChannelCredentials] = None
        if isinstance(endpoint, str) or _is_endpoint_list(endpoint):
            texts = [endpoint] if isinstance(endpoint, str) else list(endpoint)  # type: ignore[arg-type]
            if not texts:
                raise ConfigurationError(BAD_ORCHESTRATOR_ENDPOINT.format(endpoint=endpoint))
            parsed = [parse_orchestrator_endpoint(text) for text in texts]
            self._secure = parsed[0].secure
            if any(p.secure != self._secure for p in parsed):
                raise ConfigurationError(MIXED_SCHEMES.format(endpoints=texts))
            if self._secure:
                self._credentials = channel_credentials(tls_ca)
            elif tls_ca is not None:
                raise ConfigurationError(CA_WITHOUT_TLS.format(endpoint=endpoint))
            scheme = GRPCS_SCHEME if self._secure else ""
            self._endpoint = ", ".join(scheme + p.address for p in parsed)
            self._owns_channels = True
            self._routes = Routes(parsed, self._open_channel)
        elif tls_ca is not None:
            raise ConfigurationError(CA_WITHOUT_TLS.format(endpoint=endpoint))
        elif isinstance(endpoint, grpc.Channel):
            self._endpoint = "<channel>"
            self._routes = Routes.through(orchestrator_pb2_grpc.TrialStub(endpoint))
        elif hasattr(endpoint, "Action") and hasattr(endpoint, "Start"):
            self._endpoint = f"<{type(endpoint).__name__}>"
            self._routes = Routes.through(endpoint)
        else:
            raise ConfigurationError(BAD_ORCHESTRATOR_ENDPOINT.format(endpoint=endpoint))
        self._timeout = timeout
        self._session_id = session_id or str(uuid.uuid4())
        self._metadata = ((SESSION_ID_METADATA, self._session_id),)
        self._lock = threading.Lock()
        self._state = ConnectionState.OPEN
        self._trials: list[ClientTrial] = []
        self._streams: set[_ReplyStream] = set()  # open ActionStream calls, cancelled by close()
        self._heartbeat = (
            HeartbeatThread(heartbeat_interval, name=f"cogment-heartbeat-{self._session_id[:8]}")
            if heartbeat_interval is not None
            else None
        )

    # ------------------------------------------------------------------ properties

    @property
    def endpoint(self) -> str:
        """The orchestrator's `host:port`, `grpcs://host:port` over TLS (or a label for a
        channel/service passed in)."""
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
        return self._state is ConnectionState.CLOSED

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
        stub = self._routes.for_call("Start", request)  # the next orchestrator, with several
        reply = self._call("Start", request, self._timeout, self._metadata, stub)
        self._routes.started(reply.trial_id, stub)
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
        actor_class = self._actor_class(actor_class)
        request = orchestrator_pb2.TrialJoinRequest(trial_id=trial_id, actor_id=actor_id)
        # the orchestrator refuses a slot of another class before taking it
        metadata = (*self._metadata, (ACTOR_CLASS_METADATA, actor_class.id))
        try:
            reply = self._call("Join", request, self._timeout, metadata)
        except CogmentRpcError as error:
            if error.code is grpc.StatusCode.INVALID_ARGUMENT and is_wrong_slot(error.message):
                raise ConfigurationError(error.message) from None
            raise classify(error) from None
        trial = ClientTrial(self, actor_class, reply)
        self._adopt(trial)
        return trial

    def get_trial_params(self) -> common_pb2.TrialParams:
        """The project's default trial parameters, as the orchestrator holds them."""
        return self.call_unary("GetTrialParams", orchestrator_pb2.GetTrialParamsRequest()).params

    def version(self) -> dict[str, str]:
        """The orchestrator's version entries (`cogment-api`, `cogment-py`, ...)."""
        info = self.call_unary("Version", common_pb2.VersionRequest())
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
            if self._state is ConnectionState.CLOSED:
                return
            self._state = ConnectionState.CLOSED
            self._trials = []
            streams, self._streams = self._streams, set()
        for stream in streams:
            stream.cancel()
        if self._heartbeat is not None:
            self._heartbeat.stop(timeout=0)
        self._routes.close()  # the channels it opened; cancels a heartbeat in flight
        if self._heartbeat is not None:
            self._heartbeat.join(5.0)

    def __enter__(self) -> Connection:
        self.ensure_open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Connection({self._endpoint!r}, session_id={self._session_id!r}, {self._state.value})"
        )

    # ------------------------------------------------------------------ for its trials
    # (interface.TrialConnection: what a ClientTrial needs from its connection)

    def ensure_open(self) -> None:
        """Raises `LifecycleError` when the connection is closed."""
        if self._state is ConnectionState.CLOSED:
            raise LifecycleError(CONNECTION_CLOSED.format(endpoint=self._endpoint))

    def call_unary(self, method: str, request: Any, timeout: Deadline = CONNECTION_TIMEOUT) -> Any:
        """Calls the `Trial` service method `method` with the session metadata and `timeout`
        (by default the connection's); gRPC errors become cogment errors here.

        Raises:
            CogmentRpcError: the call failed (its `details`: gRPC's debug string).
            LifecycleError: the connection is closed.
        """
        deadline = self._timeout if isinstance(timeout, UseConnectionTimeout) else timeout
        return self._call(method, request, deadline, self._metadata)

    def _call(
        self,
        method: str,
        request: Any,
        deadline: Optional[float],
        metadata: Any,
        stub: Any = None,
    ) -> Any:
        self.ensure_open()
        if stub is None:
            stub = self._routes.for_call(method, request)
        try:
            return getattr(stub, method)(request, timeout=deadline, metadata=metadata)
        except grpc.RpcError as error:
            # one traceback for the user, not gRPC's internals first: the original's debug
            # string stays in `details`
            raise self._translate(error, debug=True) from None

    def open_action_stream(self, requests: Iterator[Any], trial_id: str = "") -> _ReplyStream:
        """Opens an ActionStream about `trial_id` fed by `requests` (to its owner);
        `close()` cancels it.

        Raises:
            LifecycleError: the connection is closed.
        """
        self.ensure_open()
        call = self._routes.for_trial(trial_id).ActionStream(requests, metadata=self._metadata)
        stream = _ReplyStream(call, self._translate, self._stream_done)
        with self._lock:
            closed = self._state is ConnectionState.CLOSED
            if not closed:
                self._streams.add(stream)
        if closed:  # closed meanwhile
            stream.cancel()
            self.ensure_open()
        return stream

    def keep_alive(self, trial: Beating) -> None:
        """Sends heartbeats for `trial` when it says one is due (none when disabled)."""
        if self._heartbeat is not None:
            self._heartbeat.register(trial)

    def stop_keeping_alive(self, trial: Beating) -> None:
        """No more heartbeats for `trial`."""
        if self._heartbeat is not None:
            self._heartbeat.unregister(trial)

    def forget_trial(self, trial: object) -> None:
        """Drops a trial that is over from `trials`."""
        with self._lock:
            self._trials = [t for t in self._trials if t is not trial]
        self._routes.forget(getattr(trial, "id", ""))

    def end_in_background(self, trial_id: str) -> None:
        """Ends a trial on the orchestrator from a daemon thread, best effort (bounded by the
        connection's timeout; errors are only logged)."""
        threading.Thread(
            target=self._end_quietly,
            args=(trial_id,),
            name=f"cogment-end-call-{trial_id}",
            daemon=True,
        ).start()

    # ------------------------------------------------------------------ helpers

    def _translate(self, error: grpc.RpcError, debug: bool = False) -> CogmentRpcError:
        """The one boundary where gRPC errors become cogment errors.

        `debug`: keep gRPC's debug string in `details` (only for a finished unary call: a
        stream's may block until the stream is torn down).
        """
        translated = from_rpc_error(error)
        code, message = translated.code, translated.message
        if code is grpc.StatusCode.UNAVAILABLE:
            # a TLS mismatch (a plaintext call to a TLS port, an untrusted certificate) is
            # said first
            details_text = explained(message, self._secure) if self._owns_channels else message
            message = UNREACHABLE.format(endpoint=self._endpoint, details=details_text)
        elif code is grpc.StatusCode.CANCELLED and self.is_closed:
            message = CONNECTION_CLOSED.format(endpoint=self._endpoint)
        debug_string = getattr(error, "debug_error_string", None) if debug else None
        details = debug_string() if callable(debug_string) else None
        return type(translated)(code, message, details)

    def _open_channel(self, target: str, balanced: bool) -> grpc.Channel:
        """A channel to an orchestrator (TLS like the ones given; `balanced`: spread calls
        over the addresses of a DNS name)."""
        options: list[tuple[str, Any]] = [*UNLIMITED_MESSAGES, *FAST_RECONNECT]
        if balanced:
            options.append(("grpc.lb_policy_name", "round_robin"))
        if self._credentials is not None:
            return grpc.secure_channel(target, self._credentials, options=options)
        return grpc.insecure_channel(target, options=options)

    def _stream_done(self, stream: _ReplyStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def _adopt(self, trial: ClientTrial) -> None:
        """Lists a new trial in `trials` (it keeps in touch by itself since it was made)."""
        with self._lock:
            closed = self._state is ConnectionState.CLOSED
            if not closed and not trial.is_over:
                self._trials.append(trial)
        if closed:
            self.ensure_open()

    def _actor_class(self, actor_class: ActorClass | str) -> ActorClass:
        classes = self._settings.actor_classes
        if isinstance(actor_class, str):
            found = classes.get(actor_class)
            if found is None:
                raise ConfigurationError(
                    UNKNOWN_ACTOR_CLASS.format(
                        actor_class=actor_class, declared=", ".join(classes.ids)
                    )
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
            self.call_unary("End", orchestrator_pb2.TrialEndRequest(trial_id=trial_id))
        except (CogmentError, ValueError) as error:  # ValueError: the channel closed meanwhile
            log.debug("trial %s: End failed: %s", trial_id, error)


class _ReplyStream:
    """An ActionStream call as a trial reads it (`interface.ReplyStream`): its replies, with
    gRPC errors turned into cogment errors; tells the connection when it is over."""

    def __init__(
        self,
        call: Any,
        translate: Callable[[grpc.RpcError], CogmentRpcError],
        done: Callable[[_ReplyStream], None],
    ) -> None:
        self._call = call
        self._translate = translate
        self._done = done

    def __iter__(self) -> Iterator[orchestrator_pb2.TrialActionReply]:
        try:
            yield from self._call
        except grpc.RpcError as error:
            raise self._translate(error) from None
        finally:
            self._done(self)

    def cancel(self) -> None:
        """Cancels the call (a stub-like service's call may have no `cancel`)."""
        cancel = getattr(self._call, "cancel", None)
        if cancel is not None:
            cancel()
