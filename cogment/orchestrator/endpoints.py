"""One grpc.aio channel per service endpoint, shared by every trial, its stubs, and the
transport each agent and environment service is called with.

Channels are opened on first use (on the orchestrator's event loop) and closed by `close`.
A `grpcs://` endpoint gets a TLS channel (checked against the orchestrator's `tls_ca`, or
the system's roots), a `grpc://` one a plaintext channel: the two schemes to one address are
two channels.

The transport of a service (`transport_of`) is decided once per endpoint: with `auto`, its
0.5 `Version` RPC says whether it serves cogment-py's streams (cogment/api/stream.proto); a
service that does not (an original 0.5 service, a user's own servicer) gets the 0.5 unary
calls. The decision is logged (INFO) when it is made.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

import grpc

from cogment.api import (
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    data_pb2,
    datalog_ext_pb2_grpc,
    environment_pb2,
    environment_pb2_grpc,
    hooks_pb2_grpc,
    stream_pb2,
)
from cogment.constants import FAST_RECONNECT, UNLIMITED_MESSAGES
from cogment.endpoint import Endpoint, parse_grpc_endpoint
from cogment.errors import ConfigurationError, LifecycleError
from cogment.tls import FilePath, channel_credentials, read_certificates

log = logging.getLogger("cogment.orchestrator")

TRANSPORTS = ("auto", "unary", "stream")
"""How the orchestrator calls agents and environments: `unary`, the 0.5 calls (one call per
request); `stream`, cogment-py's streams (one stream per agent actor, or environment, per
trial); `auto`, streams with the services that serve them (their `Version` says so)."""

SERVICES = {"agent": "Agent", "environment": "Environment"}
"""The two services the transport concerns, by kind: their 0.5 name (`cogment.<name>`); their
stream service is `cogment.ext.<name>Stream`."""

# Large observations (16 MiB and more) must pass; a restarted service must be found again
# quickly, not after grpc's default reconnection backoff of up to two minutes.
CHANNEL_OPTIONS = [*UNLIMITED_MESSAGES, *FAST_RECONNECT]

_STUB_TYPES: dict[str, Any] = {
    "agent": agent_pb2_grpc.AgentStub,
    "environment": environment_pb2_grpc.EnvironmentStub,
    "hooks": hooks_pb2_grpc.TrialHooksStub,
    "datalog_ext": datalog_ext_pb2_grpc.DatalogTrialsStub,
}

_ENV_REQUESTS: dict[str, Any] = {
    "Start": environment_pb2.EnvStartRequest,
    "Update": environment_pb2.EnvUpdateRequest,
}


def _as_is(data: bytes) -> bytes:
    return data


class Endpoints:
    """The channels to the services trials call, keyed by address and scheme.

    Args:
        tls_ca: the PEM file of the CA certificates that `grpcs://` services' certificates
            are checked against; None: the system's roots.
        transport: how agents and environments are called: one of TRANSPORTS.

    Raises:
        ConfigurationError: `tls_ca` cannot be read or holds no PEM certificate, or
            `transport` is not one of TRANSPORTS.
    """

    def __init__(self, tls_ca: Optional[FilePath] = None, transport: str = "auto") -> None:
        if transport not in TRANSPORTS:
            raise ConfigurationError(
                f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}"
            )
        if tls_ca is not None:
            read_certificates(tls_ca, "CA file")  # a wrong file is refused now, not at a call
        self.transport = transport
        self._transports: dict[tuple[str, str], str] = {}  # (kind, endpoint) -> decided
        self._asking: dict[tuple[str, str], asyncio.Future[str]] = {}
        self._tls_ca = tls_ca
        self._credentials: Optional[grpc.ChannelCredentials] = None
        self._channels: dict[Endpoint, grpc.aio.Channel] = {}
        self._tls_names: dict[Endpoint, str] = {}  # an address -> the name its certificate shows
        self._stubs: dict[tuple[str, str], Any] = {}
        self._closed = False

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        """The channel to `grpc://host:port` (plaintext) or `grpcs://host:port` (TLS),
        opened on first use (`host:port` alone is plaintext).

        Raises:
            LifecycleError: the channels are closed.
            ConfigurationError: `endpoint` is not of those forms.
        """
        if self._closed:
            raise LifecycleError("the orchestrator's channels are closed (it is stopping)")
        parsed = parse_grpc_endpoint(endpoint, scheme_optional=True)
        if parsed is None:
            raise ConfigurationError(f"{endpoint!r} is not a service endpoint")
        channel = self._channels.get(parsed)
        if channel is None:
            if parsed.secure:
                if self._credentials is None:
                    self._credentials = channel_credentials(self._tls_ca)
                name = self._tls_names.get(parsed)
                options: list[tuple[str, Any]] = list(CHANNEL_OPTIONS)
                if name is not None:  # a replica's address: its certificate names `name`
                    options.append(("grpc.ssl_target_name_override", name))
                channel = grpc.aio.secure_channel(
                    parsed.address, self._credentials, options=options
                )
            else:
                channel = grpc.aio.insecure_channel(parsed.address, options=CHANNEL_OPTIONS)
            self._channels[parsed] = channel
        return channel

    def verify_as(self, endpoint: str, name: str) -> None:
        """Calls to `grpcs://address:port` (a replica, resolved from `name`) check the
        server's certificate against `name`; before the endpoint's first call."""
        parsed = parse_grpc_endpoint(endpoint, scheme_optional=True)
        if parsed is not None:
            self._tls_names[parsed] = name

    async def forget(self, endpoint: str) -> None:
        """Closes the channel to `endpoint` and drops its stubs (a replica gone for good, that
        no trial uses any more); a later use opens a new one."""
        parsed = parse_grpc_endpoint(endpoint, scheme_optional=True)
        if parsed is None:
            return
        self._tls_names.pop(parsed, None)
        for key in [key for key in self._stubs if key[1] == endpoint]:
            del self._stubs[key]
        # a replica that comes back under this address may be another build: asked again
        for key in [key for key in self._transports if key[1] == endpoint]:
            del self._transports[key]
        for key in [key for key in self._asking if key[1] == endpoint]:
            self._asking.pop(key).cancel()
        channel = self._channels.pop(parsed, None)
        if channel is not None:
            await channel.close(None)

    def _stub(self, kind: str, endpoint: str) -> Any:
        key = (kind, endpoint)
        stub = self._stubs.get(key)
        if stub is None:
            stub = _STUB_TYPES[kind](self.channel(endpoint))
            self._stubs[key] = stub
        return stub

    def decide(self, endpoint: str) -> Any:
        """Agent.Decide at `grpc(s)://host:port`, taking requests already serialized (`wire`)."""
        key = ("decide", endpoint)
        call = self._stubs.get(key)
        if call is None:
            call = self.channel(endpoint).unary_unary(
                "/cogment.Agent/Decide",
                request_serializer=None,
                response_deserializer=agent_pb2.AgentDecideReply.FromString,
            )
            self._stubs[key] = call
        return call

    def env_raw(self, endpoint: str, method: str) -> Any:
        """Environment.Start or .Update at `grpc(s)://host:port`, answering the reply's bytes
        (read with `wire.read_env_reply`)."""
        key = ("env." + method, endpoint)
        call = self._stubs.get(key)
        if call is None:
            request_type = _ENV_REQUESTS[method]
            call = self.channel(endpoint).unary_unary(
                f"/cogment.Environment/{method}",
                request_serializer=request_type.SerializeToString,
                response_deserializer=None,
            )
            self._stubs[key] = call
        return call

    def stream(self, kind: str, endpoint: str) -> Any:
        """cogment-py's stream service of `kind` ("agent" or "environment") at
        `grpc(s)://host:port`: a stream-stream method taking requests already serialized
        (`wire`), answering the replies' bytes (agents: parsed AgentStreamReplys)."""
        key = ("stream." + kind, endpoint)
        call = self._stubs.get(key)
        if call is None:
            reply = _as_is if kind == "environment" else stream_pb2.AgentStreamReply.FromString
            call = self.channel(endpoint).stream_stream(
                f"/cogment.ext.{SERVICES[kind]}Stream/Run",
                # bytes as they are (with None, a call the server ended reports INTERNAL)
                request_serializer=_as_is,
                response_deserializer=reply,
            )
            self._stubs[key] = call
        return call

    async def transport_of(self, kind: str, endpoint: str, timeout: float) -> str:
        """The transport to call the `kind` ("agent" or "environment") service at `endpoint`
        with: "stream" or "unary". With `auto`, asks the service's `Version` once (at most
        `timeout` s; one question at a time per endpoint) and keeps the answer; a service
        that cannot be asked now (unreachable...) gets unary calls, and is asked again next
        time."""
        if self.transport != "auto":
            return self.transport
        key = (kind, endpoint)
        known = self._transports.get(key)
        if known is not None:
            return known
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(kind, endpoint, timeout))
            self._asking[key] = asking
            asking.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(asking)

    async def _ask(self, kind: str, endpoint: str, timeout: float) -> str:
        offered = await self.offers_streams(kind, endpoint, timeout)
        if offered is None:
            return "unary"  # not kept: asked again by the next trial
        decided = "stream" if offered else "unary"
        self.set_transport(kind, endpoint, decided)
        return decided

    async def offers_streams(self, kind: str, endpoint: str, timeout: float) -> Optional[bool]:
        """Whether the `kind` ("agent" or "environment") service at `endpoint` serves
        cogment-py's stream, as its `Version` says (UNIMPLEMENTED: no); None when it cannot
        be asked (unreachable...; at most `timeout` s)."""
        service = SERVICES[kind]
        method = self.channel(endpoint).unary_unary(
            f"/cogment.{service}/Version",
            request_serializer=common_pb2.VersionRequest.SerializeToString,
            response_deserializer=common_pb2.VersionInfo.FromString,
        )
        stream = f"cogment.ext.{service}Stream"
        try:
            info = await method(common_pb2.VersionRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                log.debug("%s at %s: Version failed (%s)", kind, endpoint, error)
                return None
            return False
        return any(v.name == stream for v in info.versions)

    def set_transport(self, kind: str, endpoint: str, transport: str, why: str = "") -> None:
        """Keeps (and logs) the transport of the `kind` service at `endpoint`."""
        key = (kind, endpoint)
        if self._transports.get(key) == transport:
            return
        self._transports[key] = transport
        service = SERVICES[kind]
        if transport == "stream":
            log.info("%s at %s: streamed (it serves cogment.ext.%sStream)", kind, endpoint, service)
        else:
            log.info(
                "%s at %s: unary calls (%s)",
                kind,
                endpoint,
                why or "it does not serve cogment-py's streams",
            )

    def datalog_log(self, endpoint: str) -> Any:
        """LogExporter.Log at `grpc(s)://host:port`, taking DatalogMsgs already serialized."""
        key = ("datalog.Log", endpoint)
        call = self._stubs.get(key)
        if call is None:
            call = self.channel(endpoint).stream_unary(
                "/cogment.LogExporter/Log",
                # bytes as they are; with None, a call the server ended reports INTERNAL
                # instead of its status
                request_serializer=_as_is,
                response_deserializer=data_pb2.LogReply.FromString,
            )
            self._stubs[key] = call
        return call

    def datalog_ext(self, endpoint: str) -> datalog_ext_pb2_grpc.DatalogTrialsStub:
        """cogment-py's DatalogTrials stub (how trials ended) for `grpc(s)://host:port`."""
        return self._stub("datalog_ext", endpoint)

    def agent(self, endpoint: str) -> agent_pb2_grpc.AgentStub:
        """The Agent stub for `grpc(s)://host:port`."""
        return self._stub("agent", endpoint)

    def environment(self, endpoint: str) -> environment_pb2_grpc.EnvironmentStub:
        """The Environment stub for `grpc(s)://host:port`."""
        return self._stub("environment", endpoint)

    def hooks(self, endpoint: str) -> hooks_pb2_grpc.TrialHooksStub:
        """The TrialHooks stub for `grpc(s)://host:port`."""
        return self._stub("hooks", endpoint)

    def __len__(self) -> int:
        return len(self._channels)

    async def close(self) -> None:
        """Closes every channel; later stub requests fail."""
        self._closed = True
        channels = list(self._channels.values())
        self._channels.clear()
        self._stubs.clear()
        for asking in list(self._asking.values()):
            asking.cancel()
        for channel in channels:
            await channel.close(None)
