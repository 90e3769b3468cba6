"""`cogment.Trial`: the trial an agent or environment instance takes part in."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Optional, Union

from google.protobuf.message import Message

from cogment.actor import Actor
from cogment.api import common_pb2
from cogment.delta import ObservationsTable, observations_table_type
from cogment.protocol import UserData, make_feedback, pack_payload
from cogment.settings import ActorClassList, Settings

ENVIRONMENT_ID = -1
"""The id that addresses the environment in messages."""


class TrialActors:
    """The actors of a trial: `actors.<class>[i]`, `actors.all[actor_id]`, iteration, len."""

    def __init__(self, all_actors: list[Actor], actor_classes: ActorClassList) -> None:
        self.all = all_actors
        for actor_class in actor_classes:
            setattr(self, actor_class.id, [a for a in all_actors if a.actor_class is actor_class])

    def __getattr__(self, name: str) -> list[Actor]:  # only reached for unknown names
        raise AttributeError(f"the trial has no actor class named {name!r}")

    def __iter__(self) -> Iterator[Actor]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    def __getitem__(self, actor_id: int) -> Actor:
        return self.all[actor_id]


class Trial:
    """A trial as seen by one agent or environment instance.

    Attributes:
        id: the trial id.
        settings: the project's settings (the generated cog_settings module).
        actor_counts: the number of actors of each class, in cogment.yaml order.
        actors: `actors.<class>[i]` and `actors.all[actor_id]`, `cogment.Actor` objects.
        tick_id: the tick of the latest observation (for an agent, the one it decides on;
            for an environment, the tick whose actions `update` consumes).
        trial_config: the trial config decoded with `trial.config_type` (or None).
    """

    def __init__(
        self,
        trial_id: str,
        settings: Settings,
        actor_counts: Sequence[int],
        trial_config: Optional[Any] = None,
        *,
        sender_id: int = ENVIRONMENT_ID,
    ) -> None:
        self.id = trial_id
        self.settings = settings
        self.actor_counts = tuple(actor_counts)
        self.trial_config: Any = trial_config
        self.tick_id = 0
        classes = settings.actor_classes
        actors: list[Actor] = []
        for actor_class, count in zip(classes, self.actor_counts):
            start = len(actors)
            actors.extend(Actor(self, actor_class, start + i, i) for i in range(count))
        self.actors = TrialActors(actors, classes)
        self._sender_id = sender_id
        self._table_type: type[ObservationsTable] = getattr(
            settings, "ObservationsTable", None
        ) or observations_table_type(classes)
        self._lock = threading.Lock()
        self._feedbacks: list[common_pb2.Feedback] = []
        self._messages: list[common_pb2.Message] = []

    def new_observation_table(self) -> ObservationsTable:
        """An empty ObservationsTable for this trial's actors, to return from start/update."""
        return self._table_type(self.actor_counts)

    def multi_cast(self, user_data: Message, send_list: Iterable[Union[int, Actor]]) -> None:
        """Sends a protobuf message to several receivers.

        Args:
            user_data: the message (packed in an Any on the wire).
            send_list: actor ids or `Actor` objects; -1 addresses the environment.

        Raises:
            ValueError: for a receiver that is not in the trial.
        """
        payload = pack_payload(user_data)
        messages = []
        for receiver in send_list:
            receiver_id = receiver.actor_id if isinstance(receiver, Actor) else receiver
            if not (receiver_id == ENVIRONMENT_ID or 0 <= receiver_id < len(self.actors.all)):
                raise ValueError(
                    f"trial {self.id}: no actor {receiver_id} to send a message to "
                    f"(actor ids are 0..{len(self.actors.all) - 1}, -1 is the environment)"
                )
            messages.append(
                common_pb2.Message(
                    sender_id=self._sender_id, receiver_id=receiver_id, payload=payload
                )
            )
        with self._lock:
            self._messages.extend(messages)

    def _add_feedback(
        self, actor: Actor, value: float, confidence: float, tick_id: int, user_data: UserData
    ) -> None:
        feedback = make_feedback(
            actor.actor_id, actor.id_in_class, value, confidence, tick_id, user_data
        )
        with self._lock:
            self._feedbacks.append(feedback)

    def _mark(self) -> int:
        """How many feedbacks are queued (those made before a call, kept at tick -1)."""
        return len(self._feedbacks)

    def _drain(
        self, mark: int, tick_id: int
    ) -> tuple[list[common_pb2.Feedback], list[common_pb2.Message]]:
        """Takes the queued feedback and messages; feedback queued after `mark` with tick
        -1 gets `tick_id`."""
        if not self._feedbacks and not self._messages:
            return [], []
        with self._lock:
            feedbacks, self._feedbacks = self._feedbacks, []
            messages, self._messages = self._messages, []
        for feedback in feedbacks[mark:]:
            if feedback.tick_id == -1:
                feedback.tick_id = tick_id
        return feedbacks, messages

    def __repr__(self) -> str:
        return f"Trial({self.id!r}, actor_counts={list(self.actor_counts)}, tick_id={self.tick_id})"
