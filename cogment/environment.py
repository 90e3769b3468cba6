"""`cogment.Environment`: the base class of environment services."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Optional, Union

from google.protobuf.message import Message

from cogment.api import agent_pb2
from cogment.delta import ActionsTable, ObservationTable

if TYPE_CHECKING:
    from cogment.trial import Trial

Observations = Union[Message, ObservationTable]
"""What `start`/`update` return: one observation for every actor, or an ObservationTable."""


class Environment(abc.ABC):
    """Base class of environments: subclass it, implement `start` and `update`.

    Serve the subclass with `cogment.GrpcServer(MyEnv, cog_settings, port=...)`: the server
    makes one instance per trial (`MyEnv(trial)`) when the orchestrator starts the trial,
    calls its methods one at a time, and drops it after `end`.

    Observations: return one message (every actor sees it, sent once) or a table from
    `self.trial.new_observation_table()` with `table.<class>[i] = obs`; an entry of the
    class's observation delta type is sent as a delta. The same object given to several
    actors goes on the wire once. The first observations (from `start`) must be snapshots.

    Attributes:
        trial: the `cogment.Trial` (`trial.actors.<class>[i].add_feedback(...)` and
            `.send_message(...)`, `trial.tick_id`, `trial.trial_config`).
        end_trial: set it to True in `update` to end the trial after this tick.
    """

    VERSIONS: ClassVar[dict[str, str]] = {}

    def __init__(self, trial: Trial) -> None:
        """Called when the orchestrator starts the trial; overrides must call super()."""
        self.trial = trial
        self.end_trial = False

    @abc.abstractmethod
    def start(self, config: Optional[Any]) -> Observations:
        """Returns the observations of tick 0.

        Args:
            config: the environment config decoded with `environment.config_type` (None
                without one).
        """

    @abc.abstractmethod
    def update(self, actions: ActionsTable) -> Observations:
        """Consumes the actions of tick `self.trial.tick_id` and returns the observations of
        the next tick.

        Args:
            actions: `actions.<class>[i]` and `actions.all[actor_id]`, instances of each
                class's action space.

        Feedback made here with `tick_id=-1` is for the tick whose actions are consumed.
        Set `self.end_trial = True` to end the trial with the returned observations; later
        updates are refused (FAILED_PRECONDITION) and `end` follows.
        """

    def on_message(self, messages: agent_pb2.MessageCollection) -> None:  # noqa: B027
        """Receives messages addressed to the environment (-1), between ticks. Does nothing
        by default."""

    def end(self) -> None:  # noqa: B027
        """The trial is over; no other call follows. Does nothing by default."""
