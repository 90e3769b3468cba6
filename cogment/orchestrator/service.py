"""The `cogment.Trial` gRPC service (grpc.aio) and the server that hosts it.

`OrchestratorServer` is the asynchronous core shared by `cogment.Orchestrator` (which runs
it on a background thread) and `cogment orchestrator` (which runs it in the main thread).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Sequence
from typing import Any, Optional

import grpc
from google.protobuf import message_factory

from cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment.errors import ConfigurationError
from cogment.version import version_entries

from . import params as trial_params
from . import status, wire
from .actors import Runtime
from .endpoints import Endpoints
from .humans import Aborted, Last
from .registry import Registry
from .status import StatusError
from .tick import ENDED_BY_CLIENT, SHUTDOWN, Trial

log = logging.getLogger("cogment.orchestrator")

SERVER_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.so_reuseport", 0),  # a port in use is an error, not a shared port
]
END_TIMEOUT_CAP = 10.0  # seconds given to End calls at most, so shutdown never hangs long
SESSION_KEY = "session_id"


def _session_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == SESSION_KEY:
            return value if isinstance(value, str) else value.decode()
    return ""


class TrialServicer(orchestrator_pb2_grpc.TrialServicer):
    """Answers clients; every trial-specific decision is the Trial's."""

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

    async def GetTrialParams(self, request: Any, context: Any) -> Any:
        return self._params_reply

    async def Version(self, request: Any, context: Any) -> Any:
        return self._version

    async def Start(self, request: Any, context: Any) -> Any:
        try:
            if self._server.stopping:
                raise StatusError(grpc.StatusCode.UNAVAILABLE, status.SHUTTING_DOWN)
            config = request.config if request.HasField("config") else None
            if config is not None:
                trial_params.client_config(self._runtime.settings, config)
        except StatusError as error:
            await context.abort(error.code, error.message)
        trial = Trial(
            self._runtime, str(uuid.uuid4()), request.user_id, config, _session_id(context)
        )
        self._registry.add(trial)
        result = await asyncio.shield(trial.started)
        if isinstance(result, StatusError):
            await context.abort(result.code, result.message)
        return result

    async def Join(self, request: Any, context: Any) -> Any:
        try:
            trial = self._registry.get(request.trial_id)
            return trial.join(request.actor_id, _session_id(context))
        except StatusError as error:
            await context.abort(error.code, error.message)

    async def End(self, request: Any, context: Any) -> Any:
        try:
            trial = self._registry.get(request.trial_id)
        except StatusError as error:
            await context.abort(error.code, error.message)
        trial.end(ENDED_BY_CLIENT)
        if trial.task is not None:  # answer once the services got their End
            await asyncio.wait({trial.task}, timeout=self._runtime.end_timeout + 1.0)
        return orchestrator_pb2.TrialEndReply()

    async def Action(self, request: Any, context: Any) -> Any:
        try:
            trial = self._registry.get(request.trial_id)
            waiter = trial.humans.submit(request.actor_id, request.action.content)
        except StatusError as error:
            await context.abort(error.code, error.message)
        reply = await waiter
        if isinstance(reply, Aborted):
            await context.abort(reply.error.code, reply.error.message)
        return reply.data if isinstance(reply, Last) else reply

    async def ActionStream(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        requests = request_iterator.__aiter__()
        trial: Optional[Trial] = None
        while True:
            next_request = asyncio.ensure_future(requests.__anext__())
            # a call cancelled while it waits leaves this task to end on its own: mark its
            # outcome (StopAsyncIteration, mostly) as seen, or asyncio logs it at exit
            next_request.add_done_callback(_seen)
            if trial is None:
                await asyncio.wait((next_request,))
            else:  # between two actions, an idle client still hears of the trial's end at once
                await asyncio.wait((next_request, trial.ended), return_when=FIRST_COMPLETED)
            if next_request.done():
                try:
                    request = next_request.result()
                except StopAsyncIteration:
                    return
                try:
                    trial = self._registry.get(request.trial_id)
                    if request.actor_id == -1 and not request.HasField("action"):
                        waiter: Any = asyncio.shield(trial.ended)  # a watcher: only the end
                    else:
                        waiter = trial.humans.submit(request.actor_id, request.action.content)
                except StatusError as error:
                    await context.abort(error.code, error.message)
                reply = await waiter
            else:  # the trial ended while this client was idle
                next_request.cancel()
                assert trial is not None
                reply = trial.ended.result()
            if type(reply) is bytes:  # a tick's reply
                yield reply
                continue
            if isinstance(reply, Aborted):
                await context.abort(reply.error.code, reply.error.message)
                return
            yield reply.data if isinstance(reply, Last) else reply  # the end
            return

    async def Heartbeat(self, request: Any, context: Any) -> Any:
        try:
            self._registry.get(request.trial_id).humans.heartbeat()
        except StatusError as error:
            await context.abort(error.code, error.message)
        return orchestrator_pb2.TrialHeartbeatReply()

    async def GiveFeedback(self, request: Any, context: Any) -> Any:
        try:
            self._registry.get(request.trial_id).give_feedback(request.feedbacks)
        except StatusError as error:
            await context.abort(error.code, error.message)
        return orchestrator_pb2.TrialFeedbackReply()

    async def SendMessage(self, request: Any, context: Any) -> Any:
        try:
            trial = self._registry.get(request.trial_id)
            trial.send_messages(request.messages, _session_id(context))
        except StatusError as error:
            await context.abort(error.code, error.message)
        return orchestrator_pb2.TrialMessageReply()


def _seen(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class OrchestratorServer:
    """The grpc.aio server, the registry of trials and the shared channels (one event loop).

    Args:
        settings: a generated cog_settings module (or an object with its attributes).
        response_timeout: deadline of every call to a service, in seconds.
        default_trial_params: replaces `settings.default_trial_params`.
        pre_hooks: replaces `settings.pre_hooks`.
        datalog_endpoint: replaces `settings.datalog.url` ("" turns the datalog off).
    """

    def __init__(
        self,
        settings: Any,
        response_timeout: float = 60.0,
        default_trial_params: Optional[common_pb2.TrialParams] = None,
        pre_hooks: Optional[Sequence[str]] = None,
        datalog_endpoint: Optional[str] = None,
    ) -> None:
        if response_timeout <= 0:
            raise ConfigurationError(f"response_timeout must be > 0, got {response_timeout}")
        for name in ("actor_classes", "trial", "environment"):
            if not hasattr(settings, name):
                raise ConfigurationError(f"the settings have no {name!r}: not a cog_settings?")
        if default_trial_params is None:
            default_trial_params = getattr(settings, "default_trial_params", None)
            if default_trial_params is None:
                default_trial_params = common_pb2.TrialParams()
        if pre_hooks is None:
            pre_hooks = list(getattr(settings, "pre_hooks", None) or ())
        if datalog_endpoint is None:
            datalog = getattr(settings, "datalog", None)
            datalog_endpoint = datalog.url if datalog is not None else None
        self.registry = Registry()
        self.endpoints = Endpoints()
        self.runtime = Runtime(
            settings=settings,
            endpoints=self.endpoints,
            registry=self.registry,
            default_params=default_trial_params,
            pre_hooks=list(pre_hooks),
            datalog_endpoint=datalog_endpoint or None,
            response_timeout=float(response_timeout),
            end_timeout=min(float(response_timeout), END_TIMEOUT_CAP),
        )
        self.stopping = False
        self.port = 0
        self._server: Optional[grpc.aio.Server] = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Binds `host:port` (0: a free port) and serves. Returns the port.

        Raises:
            ConfigurationError: the address cannot be bound (in use, bad host...).
        """
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if port:  # a clear error before grpc logs its own
            _check_bindable(host, port, address)
        server = grpc.aio.server(options=SERVER_OPTIONS)
        _add_servicer(TrialServicer(self), server)
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if not bound:
            await server.stop(None)
            raise ConfigurationError(f"cannot listen on {address}: address in use or invalid")
        await server.start()
        self._server = server
        self.port = bound
        return bound

    async def stop(self, grace: float = 1.0) -> None:
        """Ends every running trial (End on its services), then stops serving."""
        if self.stopping:
            return
        self.stopping = True
        await self.registry.shutdown(SHUTDOWN, timeout=self.runtime.end_timeout + 2.0)
        if self._server is not None:
            await self._server.stop(grace)
        await self.endpoints.close()


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


def _add_servicer(servicer: TrialServicer, server: grpc.aio.Server) -> None:
    """Registers `cogment.Trial` like the generated code does, except that replies may be
    bytes already encoded by `wire` (the hot path) as well as messages."""
    service = orchestrator_pb2.DESCRIPTOR.services_by_name["Trial"]
    handlers = {}
    for method in service.methods:
        request_type = message_factory.GetMessageClass(method.input_type)
        if method.client_streaming and method.server_streaming:
            make = grpc.stream_stream_rpc_method_handler
        elif not (method.client_streaming or method.server_streaming):
            make = grpc.unary_unary_rpc_method_handler
        else:  # not in the protocol
            raise TypeError(f"cogment.Trial.{method.name}: unexpected streaming kind")
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=request_type.FromString,
            response_serializer=wire.serialize,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    if hasattr(server, "add_registered_method_handlers"):
        server.add_registered_method_handlers(service.full_name, handlers)
