"""`cogment.Agent`: the base class of agent services."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Optional, TypeVar

from google.protobuf.message import Message

from cogment.api import agent_pb2

if TYPE_CHECKING:
    from cogment.actor import Actor
    from cogment.settings import ActorClass
    from cogment.trial import Trial

ObservationT = TypeVar("ObservationT", bound=Message)
ActionT = TypeVar("ActionT", bound=Message)


class Agent(abc.ABC, Generic[ObservationT, ActionT]):
    """Base class of agents: subclass it, set `actor_class`, implement `decide`.

    Serve the subclass with `cogment.GrpcServer(MyAgent, cog_settings, port=...)`: the
    server makes one instance per (trial, actor) when the orchestrator starts the actor,
    calls its methods one at a time, and drops it after `end`. It serves every actor of
    `actor_class`.

    Set in every subclass:
        actor_class: the class it plays, `cog_settings.actor_classes.<id>`.
        VERSIONS: optional extra (name, version) entries for the Version RPC.

    Attributes:
        trial: the `cogment.Trial` (`trial.actors.<class>[i]` to give feedback or send
            messages, `trial.tick_id`, `trial.trial_config`).
        actor: this agent's own `cogment.Actor`.
        id_in_class: its index among the actors of its class.
        config: its config, decoded with the class's config_type (None without one).
    """

    VERSIONS: ClassVar[dict[str, str]] = {}
    actor_class: ClassVar[ActorClass]

    def __init__(self, trial: Trial, actor: Actor, config: Optional[Any]) -> None:
        """Called when the orchestrator starts the actor; overrides must call super().

        Feedback and messages made here go with the first `decide` reply.
        """
        self.trial = trial
        self.actor = actor
        self.id_in_class = actor.id_in_class
        self.config = config

    @abc.abstractmethod
    def decide(self, observation: ObservationT) -> ActionT:
        """Chooses the action for an observation.

        Args:
            observation: the full observation of tick `self.trial.tick_id` (an instance of
                the class's observation space; deltas were already applied). Treat it as
                read-only: the next delta is applied to it. With a `delta_apply_fn` that
                updates it in place, the next `decide` gets this same object, changed;
                copy it to keep it.

        Returns:
            An instance of the class's action space. Anything else fails the call (the
            orchestrator then ends the trial naming this class).
        """

    def reward(self, reward: agent_pb2.Reward) -> None:
        """Receives the reward of a tick (`value`, `confidence`, the `feedbacks` it came from).

        Called after the tick's update and before the next `decide`; only for ticks on
        which someone gave this actor feedback, so `reward.feedbacks` is never empty and
        `reward.feedbacks[0].tick_id` is the tick rewarded. Does nothing by default.
        """

    def on_message(self, messages: agent_pb2.MessageCollection) -> None:
        """Receives messages (`messages.messages`, each with `sender_id` and a `payload`
        Any to `Unpack`). Called between ticks, before the next `decide`. Does nothing by
        default."""

    def end(self) -> None:
        """The trial is over for this actor; no other call follows. Does nothing by default."""
