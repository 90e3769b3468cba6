"""`cogment.Actor`: an actor of a trial, as user code sees it (to reward it, to message it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Union

from google.protobuf.message import Message

from cogment.protocol import UserData
from cogment.settings import ActorClass

if TYPE_CHECKING:
    from cogment.trial import Trial


class Actor:
    """An actor of a trial, seen from the agent or environment that holds `trial`.

    Attributes:
        actor_class: the actor's `ActorClass` (`actor.actor_class.id` is its name).
        actor_id: its id in the trial (0..N-1, grouped by class).
        id_in_class: its index among the actors of its class.
    """

    __slots__ = ("_trial", "actor_class", "actor_id", "id_in_class")

    def __init__(self, trial: Trial, actor_class: ActorClass, actor_id: int, id_in_class: int):
        self._trial = trial
        self.actor_class = actor_class
        self.actor_id = actor_id
        self.id_in_class = id_in_class

    def add_feedback(
        self, value: float, confidence: float, tick_id: int = -1, user_data: UserData = None
    ) -> None:
        """Gives this actor feedback; it counts toward its reward for tick `tick_id`.

        Made inside `decide`/`update`, the feedback goes with that call's reply and
        `tick_id=-1` means the tick of that call; made elsewhere it goes with the next reply.

        Args:
            value: the feedback value.
            confidence: its weight (>= 0) in the actor's reward for the tick.
            tick_id: the tick it is for; -1 for the current one.
            user_data: an optional protobuf message (or bytes) attached to the feedback.

        Raises:
            ValueError: for a negative confidence or a tick id below -1.
        """
        self._trial._add_feedback(self, value, confidence, tick_id, user_data)

    def send_message(self, user_data: Message) -> None:
        """Sends a protobuf message to this actor (delivered after the current tick)."""
        self._trial.multi_cast(user_data, [self.actor_id])

    def multi_cast(self, user_data: Message, send_list: Iterable[Union[int, Actor]]) -> None:
        """Sends a message to several actors (ids, or -1 for the environment); see
        `Trial.multi_cast`."""
        self._trial.multi_cast(user_data, send_list)

    def __repr__(self) -> str:
        return f"Actor({self.actor_class.id}[{self.id_in_class}], actor_id={self.actor_id})"
