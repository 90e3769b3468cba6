"""`cogment.Trial`: the trial an agent or environment instance takes part in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

from google.protobuf.message import Message

from cogment.actor import Actor, ActorTable
from cogment.delta import ObservationsTable, observations_table_type
from cogment.outbox import ENVIRONMENT_ID, Outbox
from cogment.protocol import UserData
from cogment.settings import Settings


class Trial:
    """A trial as seen by one agent or environment instance.

    Attributes:
        id: the trial id.
        settings: the project's settings (the generated cog_settings module).
        actor_counts: the number of actors of each class, in cogment.yaml order.
        actors: `actors.<class>[i]` and `actors[actor_id]`: the `cogment.Actor`s (an
            `ActorTable`).
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
        self.actors = ActorTable(self, classes, self.actor_counts)
        self._table_type: type[ObservationsTable] = getattr(
            settings, "ObservationsTable", None
        ) or observations_table_type(classes)
        self._outbox = Outbox(trial_id, sender_id, len(self.actors))

    def new_observation_table(self) -> ObservationsTable:
        """An empty ObservationsTable for this trial's actors, to return from start/update."""
        return self._table_type(self.actor_counts)

    def multi_cast(self, user_data: Message, send_list: Iterable[Union[int, Actor]]) -> None:
        """Sends a protobuf message to several receivers, with the reply of the current
        `decide`/`update` (of the next one when called outside them).

        Args:
            user_data: the message (packed in an Any on the wire).
            send_list: actor ids or `Actor` objects; -1 addresses the environment.

        Raises:
            TypeError: `user_data` is not a protobuf message.
            ValueError: for a receiver that is not in the trial (then nothing is sent).
        """
        self._outbox.add_messages(user_data, send_list)

    def _add_feedback(
        self, actor: Actor, value: float, confidence: float, tick_id: int, user_data: UserData
    ) -> None:
        self._outbox.add_feedback(actor, value, confidence, tick_id, user_data)

    def __repr__(self) -> str:
        return f"Trial({self.id!r}, actor_counts={list(self.actor_counts)}, tick_id={self.tick_id})"
