"""How a trial talks to its agents and its environment, whatever carries the calls.

A trial holds one `AgentTransport` per agent actor and one `EnvironmentTransport`; each is
either the 0.5 unary calls (`unary.py`) or one of cogment-py's streams (`streamed.py`), as
`Endpoints.transport_of` decided for the service's endpoint. One trial may mix both. Every
method raises what the call failed with (`grpc.aio.AioRpcError`, or `CogmentRpcError` with
the same status on a stream); the trial turns it into its end (`ending.service_failure`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from cogment.api import agent_pb2, environment_pb2

from . import wire
from .endpoints import Endpoints
from .streamed import StreamedAgent, StreamedEnvironment
from .unary import UnaryAgent, UnaryEnvironment


class AgentTransport(Protocol):
    """The calls to one agent actor of one trial, one at a time (each awaited before the
    next is made)."""

    @property
    def transport(self) -> str:
        """ "unary" or "stream"."""

    async def start(self, request: agent_pb2.AgentStartRequest) -> None:
        """Start: the actor's instance is made."""

    def decide(self, observation: wire.EncodedObservation) -> Awaitable[agent_pb2.AgentDecideReply]:
        """Decide on `observation` (its request encoded around its bytes); the call is under
        way when this returns."""

    async def reward(self, request: agent_pb2.AgentRewardRequest) -> None:
        """Reward: the actor's reward of a past tick."""

    async def message(self, request: agent_pb2.AgentOnMessageRequest) -> None:
        """OnMessage: messages for the actor."""

    async def end(self) -> None:
        """End: the trial is over (after the calls under way)."""


class EnvironmentTransport(Protocol):
    """The calls to the environment of one trial, one at a time."""

    @property
    def transport(self) -> str:
        """ "unary" or "stream"."""

    async def start(self, request: environment_pb2.EnvStartRequest) -> wire.Bytes:
        """Start: the serialized EnvStartReply (read with `wire.read_env_reply`)."""

    async def update(self, request: environment_pb2.EnvUpdateRequest) -> wire.Bytes:
        """Update: the serialized EnvUpdateReply."""

    async def message(self, request: environment_pb2.EnvOnMessageRequest) -> None:
        """OnMessage: messages for the environment."""

    async def end(self) -> None:
        """End: the trial is over (after the calls under way)."""


async def agent_transport(
    endpoints: Endpoints,
    endpoint: str,
    trial_id: str,
    actor_id: int,
    timeout: float,
    end_timeout: float,
) -> AgentTransport:
    """The transport to agent actor `actor_id` of `trial_id`, at `endpoint`.

    Args:
        endpoints: the shared channels, which know each endpoint's transport.
        timeout: the bound of each call, in seconds (`end_timeout`: of End).
    """
    kind = await endpoints.transport_of("agent", endpoint, timeout)
    make = StreamedAgent if kind == "stream" else UnaryAgent
    return make(endpoints, endpoint, trial_id, actor_id, timeout, end_timeout)


async def environment_transport(
    endpoints: Endpoints, endpoint: str, trial_id: str, timeout: float, end_timeout: float
) -> EnvironmentTransport:
    """The transport to the environment of `trial_id`, at `endpoint` (see `agent_transport`)."""
    kind = await endpoints.transport_of("environment", endpoint, timeout)
    make = StreamedEnvironment if kind == "stream" else UnaryEnvironment
    return make(endpoints, endpoint, trial_id, timeout, end_timeout)
