"""One grpc.aio channel per service endpoint, shared by every trial, and its stubs.

Channels are opened on first use (on the orchestrator's event loop) and closed by `close`.
"""

from __future__ import annotations

from typing import Any

import grpc

from cogment.api import (
    agent_pb2,
    agent_pb2_grpc,
    data_pb2_grpc,
    environment_pb2,
    environment_pb2_grpc,
    hooks_pb2_grpc,
)
from cogment.constants import FAST_RECONNECT, UNLIMITED_MESSAGES
from cogment.endpoint import endpoint_address
from cogment.errors import LifecycleError

# Large observations (16 MiB and more) must pass; a restarted service must be found again
# quickly, not after grpc's default reconnection backoff of up to two minutes.
CHANNEL_OPTIONS = [*UNLIMITED_MESSAGES, *FAST_RECONNECT]

_STUB_TYPES: dict[str, Any] = {
    "agent": agent_pb2_grpc.AgentStub,
    "environment": environment_pb2_grpc.EnvironmentStub,
    "hooks": hooks_pb2_grpc.TrialHooksStub,
    "datalog": data_pb2_grpc.LogExporterStub,
}

_ENV_REQUESTS: dict[str, Any] = {
    "Start": environment_pb2.EnvStartRequest,
    "Update": environment_pb2.EnvUpdateRequest,
}


class Endpoints:
    """The channels to the services trials call, keyed by `host:port`."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[tuple[str, str], Any] = {}
        self._closed = False

    def _stub(self, kind: str, endpoint: str) -> Any:
        key = (kind, endpoint)
        stub = self._stubs.get(key)
        if stub is None:
            if self._closed:
                raise LifecycleError("the orchestrator's channels are closed (it is stopping)")
            address = endpoint_address(endpoint)
            channel = self._channels.get(address)
            if channel is None:
                channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
                self._channels[address] = channel
            stub = _STUB_TYPES[kind](channel)
            self._stubs[key] = stub
        return stub

    def decide(self, endpoint: str) -> Any:
        """Agent.Decide at `grpc://host:port`, taking requests already serialized (`wire`)."""
        key = ("decide", endpoint)
        call = self._stubs.get(key)
        if call is None:
            self._stub("agent", endpoint)  # opens the channel
            channel = self._channels[endpoint_address(endpoint)]
            call = channel.unary_unary(
                "/cogment.Agent/Decide",
                request_serializer=None,
                response_deserializer=agent_pb2.AgentDecideReply.FromString,
            )
            self._stubs[key] = call
        return call

    def env_raw(self, endpoint: str, method: str) -> Any:
        """Environment.Start or .Update at `grpc://host:port`, answering the reply's bytes
        (read with `wire.read_env_reply`)."""
        key = ("env." + method, endpoint)
        call = self._stubs.get(key)
        if call is None:
            self._stub("environment", endpoint)  # opens the channel
            channel = self._channels[endpoint_address(endpoint)]
            request_type = _ENV_REQUESTS[method]
            call = channel.unary_unary(
                f"/cogment.Environment/{method}",
                request_serializer=request_type.SerializeToString,
                response_deserializer=None,
            )
            self._stubs[key] = call
        return call

    def agent(self, endpoint: str) -> agent_pb2_grpc.AgentStub:
        """The Agent stub for `grpc://host:port`."""
        return self._stub("agent", endpoint)

    def environment(self, endpoint: str) -> environment_pb2_grpc.EnvironmentStub:
        """The Environment stub for `grpc://host:port`."""
        return self._stub("environment", endpoint)

    def hooks(self, endpoint: str) -> hooks_pb2_grpc.TrialHooksStub:
        """The TrialHooks stub for `grpc://host:port`."""
        return self._stub("hooks", endpoint)

    def datalog(self, endpoint: str) -> data_pb2_grpc.LogExporterStub:
        """The LogExporter stub for `grpc://host:port`."""
        return self._stub("datalog", endpoint)

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
