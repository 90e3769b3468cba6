"""One grpc.aio channel per service endpoint, shared by every trial, and its stubs.

Channels are opened on first use (on the orchestrator's event loop) and closed by `close`.
A `grpcs://` endpoint gets a TLS channel (checked against the orchestrator's `tls_ca`, or
the system's roots), a `grpc://` one a plaintext channel: the two schemes to one address are
two channels.
"""

from __future__ import annotations

from typing import Any, Optional

import grpc

from cogment.api import (
    agent_pb2,
    agent_pb2_grpc,
    data_pb2,
    datalog_ext_pb2_grpc,
    environment_pb2,
    environment_pb2_grpc,
    hooks_pb2_grpc,
)
from cogment.constants import FAST_RECONNECT, UNLIMITED_MESSAGES
from cogment.endpoint import Endpoint, parse_grpc_endpoint
from cogment.errors import ConfigurationError, LifecycleError
from cogment.tls import FilePath, channel_credentials, read_certificates

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

    Raises:
        ConfigurationError: `tls_ca` cannot be read or holds no PEM certificate.
    """

    def __init__(self, tls_ca: Optional[FilePath] = None) -> None:
        if tls_ca is not None:
            read_certificates(tls_ca, "CA file")  # a wrong file is refused now, not at a call
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
        for channel in channels:
            await channel.close(None)
