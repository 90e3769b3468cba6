"""`trial.actors`: the actors of a client's trial, and the feedback and messages queued for
them until the next action (or flush)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Optional

from cogment.api import common_pb2
from cogment.errors import ConfigurationError
from cogment.protocol import make_feedback, pack_payload
from cogment.settings import ActorClass, ActorClassList

WRONG_SLOT = "trial {trial_id}: actor {actor_id} is of class {slot!r}, not {requested!r}"
WRONG_PROJECT = (
    "trial {trial_id}: the orchestrator's project has {counts} actor classes, "
    "cog_settings has {classes} ({ids})"
)
UNKNOWN_RECEIVER = (
    "trial {trial_id}: no actor {receiver} (the trial has {n} actors; -1 is the environment)"
)

if TYPE_CHECKING:
    from cogment.client.trial import ClientTrial


class ClientActor:
    """One actor of the trial, as seen by a client: a target for feedback and messages."""

    def __init__(
        self, trial: ClientTrial, actor_class: ActorClass, actor_id: int, id_in_class: int
    ) -> None:
        self._trial = trial
        self.actor_class = actor_class
        self.actor_id = actor_id
        self.id_in_class = id_in_class

    def add_feedback(
        self, value: float, confidence: float, tick_id: int = -1, user_data: Any = None
    ) -> None:
        """Queues feedback for this actor; it is sent before the next `do_action` (or by
        `trial.flush_feedback()`).

        Args:
            value: the feedback's value.
            confidence: its weight in the tick's reward (feedback with confidence <= 0 is kept
                in `Reward.feedbacks` but does not count in the value).
            tick_id: the tick it is for; -1 means the tick of the observation the client
                holds (the tick its next action is for).
            user_data: an optional protobuf message (or bytes) attached to the feedback.
        """
        self._trial._queue_feedback(self, value, confidence, tick_id, user_data)

    def send_message(self, user_data: Any) -> None:
        """Queues a protobuf message for this actor; it is sent before the next `do_action`
        (or by `trial.flush_message()`)."""
        self._trial._queue_message(self.actor_id, user_data)

    def __repr__(self) -> str:
        return f"ClientActor({self.actor_class.id!r}, actor_id={self.actor_id})"


class ClientActors:
    """`trial.actors.<class>[i]` (index within the class) and `trial.actors.all` (by actor id)."""

    def __init__(
        self, trial: ClientTrial, actor_classes: ActorClassList, actor_counts: Sequence[int]
    ) -> None:
        self.all: list[ClientActor] = []
        self._by_class: dict[str, list[ClientActor]] = {}
        for actor_class, count in zip(actor_classes, actor_counts):
            members = [ClientActor(trial, actor_class, len(self.all) + i, i) for i in range(count)]
            self.all.extend(members)
            self._by_class[actor_class.id] = members

    def __getattr__(self, name: str) -> list[ClientActor]:
        by_class = self.__dict__.get("_by_class")
        if by_class is None or name not in by_class:
            raise AttributeError(f"no actor class named {name!r} in this trial")
        return by_class[name]

    def __iter__(self) -> Iterator[ClientActor]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    def get(self, actor_id: int) -> Optional[ClientActor]:
        """The actor with this id, or None."""
        return self.all[actor_id] if 0 <= actor_id < len(self.all) else None


def slot_class(
    actor_classes: ActorClassList,
    actor_counts: Sequence[int],
    actor_id: int,
    requested: ActorClass,
    trial_id: str,
) -> Optional[ActorClass]:
    """The class of the client's slot `actor_id` (None for -1), checked against `requested`.

    Raises:
        ConfigurationError: the trial's classes are not the project's, or the slot is of
            another class than `requested`.
    """
    if len(actor_counts) != len(actor_classes):
        raise ConfigurationError(
            WRONG_PROJECT.format(
                trial_id=trial_id,
                counts=len(actor_counts),
                classes=len(actor_classes),
                ids=", ".join(actor_classes.ids),
            )
        )
    if actor_id < 0:
        return None
    start = 0
    for actor_class, count in zip(actor_classes, actor_counts):
        if start <= actor_id < start + count:
            if actor_class.id != requested.id:
                break
            return actor_class
        start += count
    else:
        actor_class = None
    raise ConfigurationError(
        WRONG_SLOT.format(
            trial_id=trial_id,
            actor_id=actor_id,
            slot=getattr(actor_class, "id", None),
            requested=requested.id,
        )
    )


class Outbox:
    """Feedback and messages a client queued, until they are sent (thread-safe)."""

    def __init__(self, trial_id: str, sender_id: int, actors: ClientActors) -> None:
        self._trial_id = trial_id
        self._sender_id = sender_id
        self._actors = actors
        self._lock = threading.Lock()
        self._feedbacks: list[common_pb2.Feedback] = []
        self._messages: list[common_pb2.Message] = []

    def add_feedback(
        self, actor: ClientActor, value: float, confidence: float, tick_id: int, user_data: Any
    ) -> None:
        feedback = make_feedback(
            actor.actor_id, actor.id_in_class, value, confidence, tick_id, user_data
        )
        with self._lock:
            self._feedbacks.append(feedback)

    def add_message(self, receiver: int, user_data: Any) -> None:
        if receiver != -1 and self._actors.get(receiver) is None:
            raise ValueError(
                UNKNOWN_RECEIVER.format(
                    trial_id=self._trial_id, receiver=receiver, n=len(self._actors)
                )
            )
        message = common_pb2.Message(
            sender_id=self._sender_id, receiver_id=receiver, payload=pack_payload(user_data)
        )
        with self._lock:
            self._messages.append(message)

    def take_feedbacks(self) -> list[common_pb2.Feedback]:
        with self._lock:
            feedbacks, self._feedbacks = self._feedbacks, []
        return feedbacks

    def take_messages(self) -> list[common_pb2.Message]:
        with self._lock:
            messages, self._messages = self._messages, []
        return messages


def type_name(value: Any) -> str:
    """The protobuf full name of a message's type (else its Python type's name)."""
    descriptor = getattr(type(value), "DESCRIPTOR", None)
    full_name = getattr(descriptor, "full_name", None)
    return full_name if isinstance(full_name, str) else type(value).__name__
