"""`cogment.Trial`: a trial as user code sees it, in an agent, an environment or a client.

`Trial` is the documented contract (id, settings, actor counts, actors, tick, trial config,
observation tables, messages); `ServiceTrial` is the one an agent or environment service
hands its user instance, and `cogment.client.ClientTrial` the one a client drives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

from google.protobuf.message import Message

from cogment.actor import Actor, ActorTable
from cogment.api import common_pb2
from cogment.constants import ENVIRONMENT_ID
from cogment.delta import ObservationTable, observation_table_type
from cogment.outbox import Outbox
from cogment.protocol import UserData
from cogment.settings import Settings


class Trial:
    """A trial as seen by one agent, environment or client.

    Attributes:
        id: the trial id.
        settings: the project's settings (the generated cog_settings module).
        actor_counts: the number of actors of each class, in cogment.yaml order (a list).
        actors: `actors.<class>[i]`, `actors.all[actor_id]` and `actors[actor_id]`: the
            `cogment.Actor`s (an `ActorTable`), to give feedback or send messages to.
        tick_id: the tick of the latest observation (for an agent, the one it decides on;
            for an environment, the tick whose actions `update` consumes; for a client, the
            tick its next action is for).
        trial_config: the trial config decoded with `trial.config_type`, None when the trial
            has none.
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
        self._id = trial_id
        self._settings = settings
        self._actor_counts = list(actor_counts)
        self._trial_config: Any = trial_config
        self._tick_id = 0
        classes = settings.actor_classes
        self._actors = ActorTable(self, classes, self._actor_counts)
        self._table_type: type[ObservationTable] = (
            getattr(settings, "ObservationTable", None)
            or getattr(settings, "ObservationsTable", None)  # cog_settings of cogment-py 0.5.0
            or observation_table_type(classes)
        )
        self._outbox = Outbox(trial_id, sender_id, len(self._actors))

    @property
    def id(self) -> str:
        """The trial's id."""
        return self._id

    @property
    def settings(self) -> Any:
        """The project's generated `cog_settings` module."""
        return self._settings

    @property
    def actor_counts(self) -> list[int]:
        """The number of actors of each class, in cogment.yaml order."""
        return list(self._actor_counts)

    @property
    def actors(self) -> ActorTable:
        """The trial's `cogment.Actor`s: `actors.<class>[i]`, `actors.all[actor_id]`."""
        return self._actors

    @property
    def tick_id(self) -> int:
        """The tick of the latest observation."""
        return self._tick_id

    @property
    def trial_config(self) -> Any:
        """The trial config, decoded with `cog_settings.trial.config_type` (None without one)."""
        return self._trial_config

    def new_observation_table(self) -> ObservationTable:
        """An empty `cog_settings.ObservationTable` for this trial's actors (what an
        environment's `start`/`update` may return)."""
        return self._table_type(self._actor_counts)

    def multi_cast(
        self,
        user_data: Optional[Message] = None,
        send_list: Iterable[Union[int, Actor]] = (),
    ) -> None:
        """Sends a protobuf message to several receivers, with the trial's next outgoing
        batch (see `cogment.Actor`).

        Args:
            user_data: the message (packed in an Any on the wire); None sends a message
                without payload.
            send_list: actor ids or `Actor` objects; -1 addresses the environment. Empty:
                nobody gets the message.

        Raises:
            TypeError: `user_data` is neither a protobuf message nor None.
            ValueError: for a receiver that is not in the trial (then nothing is sent).
        """
        self._outbox.add_messages(user_data, send_list)

    def _add_feedback(
        self, actor: Actor, value: float, confidence: float, tick_id: int, user_data: UserData
    ) -> None:
        self._outbox.add_feedback(actor, value, confidence, tick_id, user_data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._id!r}, actor_counts={self._actor_counts}, tick_id={self._tick_id})"


class ServiceTrial(Trial):
    """The trial of an agent or environment service: the service moves its tick and sends
    what the user code queued (feedback, messages) with each reply."""

    def begin_tick(self, tick_id: int) -> int:
        """Starts the user call of tick `tick_id`; returns the mark to pass to `take_outgoing`."""
        self._tick_id = tick_id
        return self._outbox.mark()

    def take_outgoing(
        self, mark: int
    ) -> tuple[Sequence[common_pb2.Feedback], Sequence[common_pb2.Message]]:
        """The feedback and messages queued so far, for the reply of the current call:
        feedback queued during the call (after `mark`) at tick -1 is for the current tick."""
        return self._outbox.drain(mark, self._tick_id)

    def advance(self) -> None:
        """Moves to the next tick (an environment, once its update has been answered)."""
        self._tick_id += 1
