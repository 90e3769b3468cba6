"""Drive your own Agent or Environment through a fake trial, with no network.

The harnesses call the very servicers `cogment.GrpcServer` uses, with the requests an
orchestrator would send, so what works here works over gRPC. A refused call raises
`CallRefused` with the gRPC status code and message the orchestrator would get.

    env = EnvironmentHarness(MyEnv, cog_settings, actor_counts=[1, 2], config=EnvConfig(...))
    first = env.start()                       # full observations, by actor id
    step = env.update([Move(...), ...])       # observations, feedbacks, messages, end_trial
    env.end()

    agent = AgentHarness(MyAgent, cog_settings, actor_counts=[1, 2], actor_id=0)
    step = agent.decide(Board(...))           # action, feedbacks, messages
    agent.end()

`check_environment` and `check_agent` run a short trial and the protocol's checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, NoReturn, Optional

import grpc
from google.protobuf.message import Message

from cogment.api import agent_pb2, common_pb2, environment_pb2
from cogment.constants import ENVIRONMENT_ID
from cogment.errors import CogmentRpcError
from cogment.protocol import actor_class_list, unpack_observation
from cogment.servicers import AgentServicer, EnvironmentServicer, make_servicer


class CallRefused(CogmentRpcError):
    """A call the servicer ended with a non-OK status."""


class _Context:
    """The little of grpc.ServicerContext the servicers use."""

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise CallRefused(code, details)


_CONTEXT: Any = _Context()


class AgentStep(NamedTuple):
    """What a Decide returned: the action, and the feedback and messages it carried."""

    action: Any
    feedbacks: list[common_pb2.Feedback]
    messages: list[common_pb2.Message]


class EnvironmentStep(NamedTuple):
    """What an Update returned: everyone's full observation (by actor id), feedback,
    messages, and whether the environment ended the trial."""

    observations: list[Any]
    feedbacks: list[common_pb2.Feedback]
    messages: list[common_pb2.Message]
    end_trial: bool


def _config_field(field: Any, config: Optional[Message]) -> None:
    if config is not None:
        field.content = config.SerializeToString()


class AgentHarness:
    """One agent instance in a fake trial (actor `actor_id` of `actor_counts`)."""

    def __init__(
        self,
        agent_type: type,
        settings: Any,
        actor_counts: Sequence[int],
        actor_id: int = 0,
        *,
        config: Optional[Message] = None,
        trial_config: Optional[Message] = None,
        trial_id: str = "test-trial",
    ) -> None:
        servicer, _ = make_servicer(agent_type, settings)
        if not isinstance(servicer, AgentServicer):
            raise TypeError(f"{agent_type.__name__} is not a cogment.Agent")
        self._servicer, self.trial_id, self.actor_id = servicer, trial_id, actor_id
        self._action_space = agent_type.actor_class.action_space  # type: ignore[attr-defined]
        self.tick_id = 0
        request = agent_pb2.AgentStartRequest(
            trial_id=trial_id, actor_id=actor_id, actor_counts=actor_counts
        )
        _config_field(request.config, config)
        _config_field(request.trial_config, trial_config)
        servicer.Start(request, _CONTEXT)

    def decide(self, observation: Message, *, tick_id: Optional[int] = None) -> AgentStep:
        """Sends an observation (a snapshot, or a delta when it is of the delta type)."""
        actor_class = self._servicer._type.actor_class  # type: ignore[attr-defined]
        snapshot = isinstance(observation, actor_class.observation_space)
        self.tick_id = self.tick_id + 1 if tick_id is None else tick_id
        request = agent_pb2.AgentDecideRequest(trial_id=self.trial_id, actor_id=self.actor_id)
        request.observation.tick_id = self.tick_id
        request.observation.data.content = observation.SerializeToString()
        request.observation.data.snapshot = snapshot
        reply = self._servicer.Decide(request, _CONTEXT)
        return AgentStep(
            self._action_space.FromString(reply.action.content),
            list(reply.feedbacks),
            list(reply.messages),
        )

    def reward(self, value: float, confidence: float = 1.0, tick_id: int = 0) -> None:
        reward = agent_pb2.Reward(value=value, confidence=confidence)
        reward.feedbacks.add(
            actor_id=self.actor_id, tick_id=tick_id, value=value, confidence=confidence
        )
        self._servicer.Reward(
            agent_pb2.AgentRewardRequest(
                trial_id=self.trial_id, actor_id=self.actor_id, reward=reward, tick_id=tick_id
            ),
            _CONTEXT,
        )

    def send(self, user_data: Message, sender_id: int = ENVIRONMENT_ID) -> None:
        """Delivers a message from `sender_id` (-1: the environment)."""
        message = common_pb2.Message(sender_id=sender_id, receiver_id=self.actor_id)
        message.payload.Pack(user_data)
        self._servicer.OnMessage(
            agent_pb2.AgentOnMessageRequest(
                trial_id=self.trial_id, actor_id=self.actor_id, messages=[message]
            ),
            _CONTEXT,
        )

    def end(self) -> None:
        self._servicer.End(
            agent_pb2.AgentEndRequest(trial_id=self.trial_id, actor_id=self.actor_id), _CONTEXT
        )


class EnvironmentHarness:
    """One environment instance in a fake trial with `actor_counts` actors."""

    def __init__(
        self,
        env_type: type,
        settings: Any,
        actor_counts: Sequence[int],
        *,
        config: Optional[Message] = None,
        trial_config: Optional[Message] = None,
        trial_id: str = "test-trial",
    ) -> None:
        servicer, _ = make_servicer(env_type, settings)
        if not isinstance(servicer, EnvironmentServicer):
            raise TypeError(f"{env_type.__name__} is not a cogment.Environment")
        self._servicer, self.trial_id = servicer, trial_id
        self._classes = actor_class_list(settings.actor_classes, actor_counts)
        self._counts = list(actor_counts)
        self._config, self._trial_config = config, trial_config
        self.observations: list[Any] = [None] * len(self._classes)

    def _decode(self, obs_set: environment_pb2.ObservationSet) -> list[Any]:
        for actor_id, index in enumerate(obs_set.actors_map):
            self.observations[actor_id] = unpack_observation(
                self._classes[actor_id],
                obs_set.observations[index],
                self.observations[actor_id],
                f"observation of actor {actor_id}",
            )
        return list(self.observations)

    def start(self) -> list[Any]:
        """Starts the trial; returns everyone's observation of tick 0, by actor id."""
        request = environment_pb2.EnvStartRequest(trial_id=self.trial_id, actor_counts=self._counts)
        _config_field(request.config, self._config)
        _config_field(request.trial_config, self._trial_config)
        return self._decode(self._servicer.Start(request, _CONTEXT).observation_set)

    def update(
        self, actions: Optional[Sequence[Message]] = None, *, reply_with_snapshot: bool = False
    ) -> EnvironmentStep:
        """Sends one tick's actions (by actor id; default-constructed ones when None)."""
        if actions is None:
            actions = [c.action_space() for c in self._classes]
        request = environment_pb2.EnvUpdateRequest(
            trial_id=self.trial_id, reply_with_snapshot=reply_with_snapshot
        )
        request.action_set.actions.extend(a.SerializeToString() for a in actions)
        reply = self._servicer.Update(request, _CONTEXT)
        return EnvironmentStep(
            self._decode(reply.observation_set),
            list(reply.feedbacks),
            list(reply.messages),
            reply.end_trial,
        )

    def send(self, user_data: Message, sender_id: int = 0) -> None:
        """Delivers a message from actor `sender_id` to the environment."""
        message = common_pb2.Message(sender_id=sender_id, receiver_id=ENVIRONMENT_ID)
        message.payload.Pack(user_data)
        self._servicer.OnMessage(
            environment_pb2.EnvOnMessageRequest(
                trial_id=self.trial_id, actor_id=ENVIRONMENT_ID, messages=[message]
            ),
            _CONTEXT,
        )

    def end(self) -> None:
        self._servicer.End(environment_pb2.EnvEndRequest(trial_id=self.trial_id), _CONTEXT)


def check_environment(
    env_type: type,
    settings: Any,
    actor_counts: Sequence[int],
    *,
    ticks: int = 10,
    config: Optional[Message] = None,
    trial_config: Optional[Message] = None,
) -> list[EnvironmentStep]:
    """Runs `ticks` updates with default actions (or until the environment ends the trial)
    and checks that the observations rebuilt from deltas equal the snapshots the
    environment gives when asked for them. Returns the steps.

    Raises:
        CallRefused: a call failed (the message names the class, method and problem).
        AssertionError: observations from deltas and snapshots disagree.
    """
    env = EnvironmentHarness(
        env_type, settings, actor_counts, config=config, trial_config=trial_config
    )
    twin = EnvironmentHarness(
        env_type, settings, actor_counts, config=config, trial_config=trial_config
    )
    env.start()
    twin.start()
    steps = []
    for tick in range(ticks):
        step = env.update()
        snap = twin.update(reply_with_snapshot=True)
        if step.observations != snap.observations:
            raise AssertionError(
                f"{env_type.__name__}: at tick {tick + 1} the observations rebuilt from deltas "
                "differ from the snapshots (is the class's delta_apply_fn right?)"
            )
        steps.append(step)
        if step.end_trial:
            break
    env.end()
    twin.end()
    return steps


def check_agent(
    agent_type: type,
    settings: Any,
    actor_counts: Sequence[int],
    observations: Sequence[Message],
    *,
    actor_id: int = 0,
    config: Optional[Message] = None,
    trial_config: Optional[Message] = None,
) -> list[AgentStep]:
    """Starts the agent as actor `actor_id`, has it decide on each observation (the first
    one must be a snapshot), gives it a reward, ends it, and returns the steps.

    Raises:
        CallRefused: a call failed (e.g. the action is not of the class's action space).
    """
    agent = AgentHarness(
        agent_type,
        settings,
        actor_counts,
        actor_id,
        config=config,
        trial_config=trial_config,
    )
    steps = []
    for tick, observation in enumerate(observations):
        steps.append(agent.decide(observation, tick_id=tick))
        agent.reward(1.0, 1.0, tick_id=tick)
    agent.end()
    return steps
