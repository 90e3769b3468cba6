"""The 0.5 transport: one unary call per request (`cogment.Agent`, `cogment.Environment`).

Decide requests go out already encoded around the observation bytes (`wire`), and the
environment's Start/Update replies come back as bytes (read with `wire.read_env_reply`).
"""

from __future__ import annotations

from typing import Any

from cogment.api import agent_pb2, environment_pb2

from . import wire
from .endpoints import Endpoints


class UnaryAgent:
    """One agent actor of one trial, called with the 0.5 unary calls.

    Args:
        endpoints: the shared channels.
        endpoint: the agent service's endpoint.
        trial_id, actor_id: the actor.
        timeout: the deadline of each call, in seconds (`end_timeout`: of End).
    """

    transport = "unary"

    def __init__(
        self,
        endpoints: Endpoints,
        endpoint: str,
        trial_id: str,
        actor_id: int,
        timeout: float,
        end_timeout: float,
    ) -> None:
        self._stub = endpoints.agent(endpoint)
        self._decide = endpoints.decide(endpoint)
        self._trial_id = trial_id
        self._trial_field = wire.string_field(trial_id)
        self._actor_id = actor_id
        self._timeout = timeout
        self._end_timeout = end_timeout

    async def start(self, request: agent_pb2.AgentStartRequest) -> None:
        await self._stub.Start(request, timeout=self._timeout)

    def decide(self, observation: wire.EncodedObservation) -> Any:
        request = wire.decide_request(self._trial_field, self._actor_id, observation)
        return self._decide(request, timeout=self._timeout)

    async def reward(self, request: agent_pb2.AgentRewardRequest) -> None:
        await self._stub.Reward(request, timeout=self._timeout)

    async def message(self, request: agent_pb2.AgentOnMessageRequest) -> None:
        await self._stub.OnMessage(request, timeout=self._timeout)

    async def end(self) -> None:
        request = agent_pb2.AgentEndRequest(trial_id=self._trial_id, actor_id=self._actor_id)
        await self._stub.End(request, timeout=self._end_timeout)


class UnaryEnvironment:
    """The environment of one trial, called with the 0.5 unary calls (see `UnaryAgent`)."""

    transport = "unary"

    def __init__(
        self, endpoints: Endpoints, endpoint: str, trial_id: str, timeout: float, end_timeout: float
    ) -> None:
        self._stub = endpoints.environment(endpoint)
        self._start = endpoints.env_raw(endpoint, "Start")
        self._update = endpoints.env_raw(endpoint, "Update")
        self._trial_id = trial_id
        self._timeout = timeout
        self._end_timeout = end_timeout

    async def start(self, request: environment_pb2.EnvStartRequest) -> wire.Bytes:
        return await self._start(request, timeout=self._timeout)  # type: ignore[no-any-return]

    async def update(self, request: environment_pb2.EnvUpdateRequest) -> wire.Bytes:
        return await self._update(request, timeout=self._timeout)  # type: ignore[no-any-return]

    async def message(self, request: environment_pb2.EnvOnMessageRequest) -> None:
        await self._stub.OnMessage(request, timeout=self._timeout)

    async def end(self) -> None:
        request = environment_pb2.EnvEndRequest(trial_id=self._trial_id)
        await self._stub.End(request, timeout=self._end_timeout)
