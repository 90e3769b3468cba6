"""The `cogment.Trial` gRPC service (grpc.aio) and the server that hosts it.

`OrchestratorServer` is the asynchronous core shared by `cogment.Orchestrator` (which runs
it on a background thread) and `cogment orchestrator` (which runs it in the main thread).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Sequence
from typing import Any, Optional

import grpc

from cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment.boundary import add_service, async_handler, async_stream_handler, check_request
from cogment.constants import (
    ACTOR_CLASS_METADATA,
    DEFAULT_MAX_MESSAGE_MB,
    NO_ACTOR_ID,
    SESSION_ID_METADATA,
    message_size_options,
)
from cogment.endpoint import host_port, parse_grpc_endpoint
from cogment.errors import ConfigurationError, StatusError
from cogment.ownership import default_advertised, new_trial_id
from cogment.settings import DatalogSettings
from cogment.tls import FilePath, add_port, server_credentials
from cogment.version import version_entries

from . import params as trial_params
from . import status, wire
from .calls import consume
from .datalog import make_recorder
from .ending import ENDED_BY_CLIENT, SHUTDOWN
from .endpoints import Endpoints
from .forwarding import Forwarder
from .humans import Aborted, Last, Reply
from .registry import Registry
from .replicas import Replicas
from .runtime import Runtime
from .tick import Trial

log = logging.getLogger("cogment.orchestrator")

_NO_REUSEPORT = ("grpc.so_reuseport", 0)  # a port in use is an error, not a shared port
END_TIMEOUT_CAP = 10.0  # seconds given to End calls at most, so shutdown never hangs long
_TRIAL_SERVICE = orchestrator_pb2.DESCRIPTOR.services_by_name["Trial"]


def _metadata(context: grpc.aio.ServicerContext, name: str) -> str:
    """The value of the call's metadata `name` ("" when absent)."""
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return ""


def _session_id(context: grpc.aio.ServicerContext) -> str:
    return _metadata(context, SESSION_ID_METADATA)


class TrialServicer(orchestrator_pb2_grpc.TrialServicer):
    """Answers clients; every trial-specific decision is the Trial's. A call that cannot be
    served raises `StatusError`; `cogment.boundary` answers it with that status."""

    def __init__(self, server: OrchestratorServer) -> None:
        self._server = server
        self._registry = server.registry
        self._runtime = server.runtime
        self._params_reply = orchestrator_pb2.GetTrialParamsReply(
            params=server.runtime.default_params
        )
        self._version = common_pb2.VersionInfo(
            versions=[
                common_pb2.VersionInfo.Version(name=name, version=version)
                for name, version in version_entries()
            ]
        )

    @async_handler
    async def GetTrialParams(self, request: Any, context: Any) -> Any:
        return self._params_reply

    @async_handler
    async def Version(self, request: Any, context: Any) -> Any:
        return self._version

    @async_handler
    async def Start(self, request: Any, context: Any) -> Any:
        if self._server.stopping:
            raise status.unavailable(status.SHUTTING_DOWN)
        config = request.config if request.HasField("config") else None
        if config is not None:
            trial_params.client_config(self._runtime.settings, config)
        trial = Trial(
            self._runtime,
            new_trial_id(self._server.advertised),
            request.user_id,
            config,
            _session_id(context),
            on_over=self._registry.retire,
        )
        self._registry.add(trial)
        result = await asyncio.shield(trial.end.started)
        if isinstance(result, StatusError):
            raise result
        return result

    async def _forwarded(self, method: str, request: Any, context: Any) -> Optional[bytes]:
        """The owner's reply when another orchestrator owns the trial (None: ours)."""
        forwarder = self._server.forwarder
        owner = forwarder.owner(request.trial_id, context)
        if owner is None:
            return None
        return await forwarder.unary(owner, method, request, context)

    @async_handler
    async def Join(self, request: Any, context: Any) -> Any:
        if (forwarded := await self._forwarded("Join", request, context)) is not None:
            return forwarded
        trial = self._registry.get(request.trial_id)
        actor_class = _metadata(context, ACTOR_CLASS_METADATA)
        return trial.join(request.actor_id, _session_id(context), actor_class)

    @async_handler
    async def End(self, request: Any, context: Any) -> Any:
        if (forwarded := await self._forwarded("End", request, context)) is not None:
            return forwarded
        trial = self._registry.get(request.trial_id)
        trial.end.end(ENDED_BY_CLIENT)
        await trial.wait_closed(self._runtime.end_timeout + 1.0)  # its services got their End
        return orchestrator_pb2.TrialEndReply()

    @async_handler
    async def Action(self, request: Any, context: Any) -> Any:
        if (forwarded := await self._forwarded("Action", request, context)) is not None:
            return forwarded
        trial = self._registry.get(request.trial_id)
        reply = await trial.humans.submit(request.actor_id, request.action.content)
        return _answer(reply)

    @async_stream_handler
    async def ActionStream(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        requests = request_iterator.__aiter__()
        trial: Optional[Trial] = None
        next_request: Optional[asyncio.Future[Any]] = None
        try:
            while True:
                next_request = asyncio.ensure_future(requests.__anext__())
                if trial is None:
                    await asyncio.wait((next_request,))
                else:  # between two actions, an idle client hears of the trial's end at once
                    await asyncio.wait((next_request, trial.end.told), return_when=FIRST_COMPLETED)
                if next_request.done():
                    try:
                        request = next_request.result()
                    except StopAsyncIteration:
                        return
                    check_request(request)
                    if trial is None:
                        owner = self._server.forwarder.owner(request.trial_id, context)
                        if owner is not None:  # another orchestrator's trial: relay it all
                            relay = self._server.forwarder.stream(owner, request, requests, context)
                            async for relayed in relay:
                                yield relayed
                            return
                    trial = self._registry.get(request.trial_id)
                    if request.actor_id == NO_ACTOR_ID and not request.HasField("action"):
                        reply = await asyncio.shield(trial.end.told)  # a watcher: only the end
                    else:
                        reply = await trial.humans.submit(request.actor_id, request.action.content)
                else:  # the trial ended while this client was idle
                    assert trial is not None
                    reply = trial.end.told.result()
                yield _answer(reply)
                if type(reply) is not bytes:  # the end
                    return
        finally:
            # a client that goes away while idle is not an error: its pending read is dropped
            if next_request is not None:
                next_request.add_done_callback(consume)
                next_request.cancel()

    @async_handler
    async def Heartbeat(self, request: Any, context: Any) -> Any:
        if (forwarded := await self._forwarded("Heartbeat", request, context)) is not None:
            return forwarded
        self._registry.get(request.trial_id).humans.heartbeat()
        return orchestrator_pb2.TrialHeartbeatReply()

    @async_handler
    async def GiveFeedback(self, request: Any, context: Any) -> Any:
        if (forwarded := await self._forwarded("GiveFeedback", request, context)) is not None:
            return forwarded
        self._registry.get(request.trial_id).give_feedback(request.feedbacks)
        return orchestrator_pb2.TrialFeedbackReply()

    @async_handler
    async def SendMessage(self, request: Any, context: Any) -> Any:
        if (forwarded := await self._forwarded("SendMessage", request, context)) is not None:
            return forwarded
        trial = self._registry.get(request.trial_id)
        trial.send_messages(request.messages, _session_id(context))
        return orchestrator_pb2.TrialMessageReply()


_TRANSPORT_TEXT = {
    "auto": "streamed when their service serves cogment-py's streams, else unary (transport auto)",
    "stream": "streamed (transport stream)",
    "unary": "with the 0.5 unary calls (transport unary)",
}


def _answer(reply: Reply) -> Any:
    """What a waiting client call answers: a tick's encoded reply, the last one, or the
    end; raises the status of a failed trial."""
    if isinstance(reply, Aborted):
        raise reply.error
    return reply.data if isinstance(reply, Last) else reply


class OrchestratorServer:
    """The grpc.aio server, the registry of trials and the shared channels (one event loop).

    Args:
        settings: a generated cog_settings module (or an object with its attributes).
        response_timeout: deadline of every call to a service, in seconds.
        default_trial_params: replaces `settings.default_trial_params`.
        pre_hooks: replaces `settings.pre_hooks`.
        datalog: replaces `settings.datalog` (`DatalogSettings(type="none")` turns it off).
        datalog_endpoint: a shorthand for a grpc `datalog` at that url ("" turns it off).
        max_message_mb: the largest message a client may send, in MiB (None: no limit); a
            larger one is refused with RESOURCE_EXHAUSTED. Replies are not limited.
        tls_cert, tls_key: PEM files of the certificate (chain) and private key the port for
            clients serves TLS with (both or neither; neither: plaintext).
        tls_ca: PEM file of the CA certificates that `grpcs://` services are checked against
            (None: the system's roots).
        tls_names: how the caller names tls_cert and tls_key (in the error when only one is
            given).
        transport: how agents and environments are called: "auto" (cogment-py's streams with
            the services that serve them, the 0.5 unary calls with the others), "stream" or
            "unary" (see `endpoints.TRANSPORTS`).
        advertise: the `host:port` other orchestrators and clients reach this one at, put
            into the ids of its trials (`cogment.ownership`); default: the bound address (a
            wildcard host replaced by this machine's name).

    Raises:
        ConfigurationError: a bad argument, or TLS files that cannot be used (named).
    """

    def __init__(
        self,
        settings: Any,
        response_timeout: float = 60.0,
        default_trial_params: Optional[common_pb2.TrialParams] = None,
        pre_hooks: Optional[Sequence[str]] = None,
        datalog_endpoint: Optional[str] = None,
        datalog: Optional[DatalogSettings] = None,
        max_message_mb: Optional[float] = DEFAULT_MAX_MESSAGE_MB,
        tls_cert: Optional[FilePath] = None,
        tls_key: Optional[FilePath] = None,
        tls_ca: Optional[FilePath] = None,
        tls_names: tuple[str, str] = ("tls_cert", "tls_key"),
        transport: str = "auto",
        advertise: Optional[str] = None,
    ) -> None:
        if response_timeout <= 0:
            raise ConfigurationError(f"response_timeout must be > 0, got {response_timeout}")
        if max_message_mb is not None and max_message_mb <= 0:
            raise ConfigurationError(f"max_message_mb must be > 0, got {max_message_mb}")
        self._max_message_mb = max_message_mb
        for name in ("actor_classes", "trial", "environment"):
            if not hasattr(settings, name):
                raise ConfigurationError(f"the settings have no {name!r}: not a cog_settings?")
        if default_trial_params is None:
            default_trial_params = getattr(settings, "default_trial_params", None)
            if default_trial_params is None:
                default_trial_params = common_pb2.TrialParams()
        if pre_hooks is None:
            pre_hooks = list(getattr(settings, "pre_hooks", None) or ())
        if datalog is None and datalog_endpoint is not None:
            datalog = DatalogSettings("grpc", url=datalog_endpoint) if datalog_endpoint else None
        elif datalog is None:
            datalog = getattr(settings, "datalog", None)
        self._credentials = server_credentials(tls_cert, tls_key, tls_names)
        self.tls_cert = None if tls_cert is None else str(tls_cert)
        self.registry = Registry()
        self.endpoints = Endpoints(tls_ca, transport)
        self.datalog = datalog if datalog is not None and datalog.type != "none" else None
        self.recorder = (
            make_recorder(self.datalog, self.endpoints, float(response_timeout))
            if self.datalog is not None
            else None
        )
        self.runtime = Runtime(
            settings=settings,
            endpoints=self.endpoints,
            default_params=default_trial_params,
            pre_hooks=list(pre_hooks),
            recorder=self.recorder,
            response_timeout=float(response_timeout),
            end_timeout=min(float(response_timeout), END_TIMEOUT_CAP),
            replicas=Replicas(self.endpoints),
        )
        if advertise is not None and parse_grpc_endpoint(advertise, scheme_optional=True) is None:
            raise ConfigurationError(f"advertise: {advertise!r} is not host:port")
        self._advertise = advertise
        self.advertised = ""
        """The `host:port` this orchestrator names as its trials' owner (once started)."""
        self.forwarder = Forwarder("", self.endpoints.channel, self.tls)
        self.stopping = False
        self.port = 0
        self._server: Optional[grpc.aio.Server] = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Binds `host:port` (0: a free port) and serves. Returns the port.

        Raises:
            ConfigurationError: the address cannot be bound (in use, bad host...), or the
                datalog's store cannot be opened.
        """
        address = host_port(host, port)
        if port:  # a clear error before grpc logs its own
            _check_bindable(host, port, address)
        server = grpc.aio.server(
            options=[*message_size_options(self._max_message_mb), _NO_REUSEPORT]
        )
        # replies may be bytes already encoded by `wire` (the hot path) as well as messages
        add_service(server, _TRIAL_SERVICE, TrialServicer(self), wire.serialize)
        bound = add_port(server, address, self._credentials)
        if not bound:
            await server.stop(None)
            raise ConfigurationError(f"cannot listen on {address}: address in use or invalid")
        if self.recorder is not None:
            try:
                await self.recorder.open()
            except BaseException:
                await server.stop(None)
                raise
        await server.start()
        self._server = server
        self.port = bound
        log.info("calling agents and environments: %s", _TRANSPORT_TEXT[self.endpoints.transport])
        self.advertised = self._advertise or default_advertised(host, bound)
        self.forwarder = Forwarder(self.advertised, self.endpoints.channel, self.tls)
        if self.tls:
            log.info("serving TLS on %s (certificate %s)", host_port(host, bound), self.tls_cert)
        return bound

    @property
    def tls(self) -> bool:
        """True when the port for clients serves TLS."""
        return self._credentials is not None

    async def stop(self, grace: float = 1.0) -> None:
        """Ends every running trial (End on its services), stores every sample the datalog
        accepted (waiting at most the response timeout), then stops serving."""
        if self.stopping:
            return
        self.stopping = True
        await self.registry.shutdown(SHUTDOWN, timeout=self.runtime.end_timeout + 2.0)
        if self.recorder is not None and self._server is not None:
            pending = self.recorder.pending()
            if pending:
                log.info("datalog %s: storing %d queued samples", self.recorder.where, pending)
            await self.recorder.close(self.runtime.response_timeout)
        if self._server is not None:
            await self._server.stop(grace)
            # the grpc server refers back to this object (through its servicer): dropped
            # now, not by a late garbage collection (a TLS server freed only at exit makes
            # grpc's exit wait about 2 s)
            self._server = None
        await self.runtime.replicas.close()
        await self.endpoints.close()

    @property
    def stop_timeout(self) -> float:
        """The longest `stop` may take: trials ending, then the datalog's flush."""
        flush = self.runtime.response_timeout if self.recorder is not None else 0.0
        return self.runtime.end_timeout + 2.0 + flush + 5.0


def _check_bindable(host: str, port: int, address: str) -> None:
    """Raises ConfigurationError when `host:port` cannot be bound (in use, unknown host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise ConfigurationError(f"cannot listen on {address}: {error.strerror or error}") from None
    family, kind, proto, _name, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # like grpc: a port whose old connections linger in TIME_WAIT is free to listen on
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except OSError as error:
            raise ConfigurationError(
                f"cannot listen on {address}: {error.strerror or error}"
            ) from None
