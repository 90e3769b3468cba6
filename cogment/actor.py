"""`cogment.Actor` and `trial.actors`: the actors of a trial, as user code sees them (to give
them feedback, to message them), the same for agents, environments and clients."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Optional, Protocol, Union

from google.protobuf.message import Message

from cogment.protocol import UserData
from cogment.settings import ActorClass, ActorClassList


class ActorOwner(Protocol):
    """The trial an `Actor` belongs to: a `cogment.Trial` or a `cogment.client.ClientTrial`."""

    def _add_feedback(
        self, actor: Actor, value: float, confidence: float, tick_id: int, user_data: UserData
    ) -> None: ...

    def multi_cast(
        self, user_data: Optional[Message] = None, send_list: Iterable[Union[int, Actor]] = ()
    ) -> None: ...


class Actor:
    """An actor of a trial: a target for feedback and messages.

    What is given to it is queued and sent with the trial's next outgoing batch: for an agent
    or environment, with the reply of the current `decide`/`update` (of the next one when made
    outside them); for a client, before its next `do_action` (or on `trial.flush_feedback()` /
    `trial.flush_message()`).

    Attributes:
        actor_class: the actor's `ActorClass` (`actor.actor_class.id` is its name).
        actor_id: its id in the trial (0..N-1, grouped by class).
        id_in_class: its index among the actors of its class.
    """

    __slots__ = ("_trial", "actor_class", "actor_id", "id_in_class")

    def __init__(
        self, trial: ActorOwner, actor_class: ActorClass, actor_id: int, id_in_class: int
    ) -> None:
        self._trial = trial
        self.actor_class = actor_class
        self.actor_id = actor_id
        self.id_in_class = id_in_class

    def add_feedback(
        self, value: float, confidence: float, tick_id: int = -1, user_data: UserData = None
    ) -> None:
        """Gives this actor feedback; it counts toward its reward for tick `tick_id`.

        The feedback is sent with the trial's next outgoing batch (see the class docstring).
        `tick_id=-1` means the current tick: for an agent or environment, the tick of the
        `decide`/`update` call whose reply carries it; for a client, the tick of the
        observation it holds (the tick its next action is for).

        Args:
            value: the feedback value.
            confidence: its weight (>= 0) in the actor's reward for the tick (feedback with
                confidence 0 is kept in `Reward.feedbacks` but does not count in the value).
            tick_id: the tick it is for; -1 for the current one.
            user_data: an optional protobuf message (or bytes) attached to the feedback.

        Raises:
            ValueError: for a negative confidence or a tick id below -1.
            TrialEndedError: (clients) the trial is over (`TrialError` if a failure ended it).
        """
        self._trial._add_feedback(self, value, confidence, tick_id, user_data)

    def send_message(self, user_data: Optional[Message] = None) -> None:
        """Sends a protobuf message to this actor, delivered at the end of the current tick.

        It is sent with the trial's next outgoing batch (see the class docstring).

        Args:
            user_data: the message (packed in an Any on the wire); None sends a message
                without payload.

        Raises:
            TypeError: `user_data` is neither a protobuf message nor None.
            TrialEndedError: (clients) the trial is over (`TrialError` if a failure ended it).
        """
        self._trial.multi_cast(user_data, [self.actor_id])

    def multi_cast(
        self, user_data: Optional[Message] = None, send_list: Iterable[Union[int, Actor]] = ()
    ) -> None:
        """Sends a message to several receivers (actor ids or `Actor`s, -1 for the
        environment; an empty list sends to nobody); the same as `trial.multi_cast`."""
        self._trial.multi_cast(user_data, send_list)

    def __repr__(self) -> str:
        return f"Actor({self.actor_class.id}[{self.id_in_class}], actor_id={self.actor_id})"


class ActorTable:
    """The actors of a trial: `actors.<class>[i]` (index within the class), `actors[actor_id]`,
    `actors.all[actor_id]`, `actors.get(actor_id)`, iteration and len in actor id order."""

    def __init__(
        self, trial: ActorOwner, actor_classes: ActorClassList, actor_counts: Sequence[int]
    ) -> None:
        self.all: list[Actor] = []
        for actor_class, count in zip(actor_classes, actor_counts):
            start = len(self.all)
            members = [Actor(trial, actor_class, start + i, i) for i in range(count)]
            self.all.extend(members)
            setattr(self, actor_class.id, members)  # cogment.yaml forbids the ids all and get

    def __getattr__(self, name: str) -> list[Actor]:  # only reached for names that are not classes
        raise AttributeError(f"the trial has no actor class named {name!r}")

    def __iter__(self) -> Iterator[Actor]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    def __getitem__(self, actor_id: int) -> Actor:
        """The actor with this id (0..N-1; -1 is the environment, not an actor)."""
        actor = self.get(actor_id)
        if actor is None:
            raise IndexError(
                f"no actor {actor_id} (actor ids are 0..{len(self.all) - 1}; "
                "-1 addresses the environment in messages)"
            )
        return actor

    def get(self, actor_id: int) -> Optional[Actor]:
        """The actor with this id, or None."""
        return self.all[actor_id] if 0 <= actor_id < len(self.all) else None
