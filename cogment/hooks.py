"""Pre-trial hooks: `cogment.TrialHooks` and the trial parameters it works on.

The orchestrator calls every pre-trial hook, in order, before a trial starts; each gets the
trial parameters (decoded into the Python objects below) and returns them, possibly
rewritten. Serve a subclass with `cogment.GrpcServer(MyHooks, cog_settings, port=...)`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Optional


@dataclasses.dataclass
class ActorParameters:
    """One actor of a trial: its class id, its endpoint (`human`, grpc://host:port or, over
    TLS, grpcs://host:port), and its config decoded with the class's config_type (None when
    it has none)."""

    actor_class: str
    endpoint: str
    config: Any = None


@dataclasses.dataclass
class EnvironmentParameters:
    """The trial's environment: its endpoint (grpc://host:port, or grpcs://host:port over TLS)
    and its decoded config."""

    endpoint: str = ""
    config: Any = None


@dataclasses.dataclass
class TrialParameters:
    """A trial's parameters, as a pre-trial hook sees and returns them.

    Configs are protobuf messages of the types cogment.yaml declares (`trial_config`:
    `trial.config_type`, environment: `environment.config_type`, actors: their class's
    `config_type`), or None where no type is declared. The order of `actors` does not need
    to follow the classes: the orchestrator sorts them by class to assign actor ids.
    """

    trial_config: Any = None
    environment: EnvironmentParameters = dataclasses.field(default_factory=EnvironmentParameters)
    actors: list[ActorParameters] = dataclasses.field(default_factory=list)
    max_steps: int = 0
    max_inactivity: int = 0


class TrialHooks(abc.ABC):
    """Base class of pre-trial hook services.

    The server makes one instance (with no arguments) and calls its `pre_trial` for every
    trial, for several trials at once (from the server's thread pool): a hook that keeps
    state across trials guards it with a lock. A call the orchestrator gave up on (its
    `--response-timeout` passed) while it waited for a thread is not run; one that finishes
    after that has its result discarded (logged).
    """

    VERSIONS: ClassVar[dict[str, str]] = {}
    """Extra (name, version) entries the service's Version RPC reports."""

    @abc.abstractmethod
    def pre_trial(
        self, trial_id: str, user_id: str, trial_params: TrialParameters
    ) -> Optional[TrialParameters]:
        """Inspects and may rewrite the parameters of a trial about to start.

        Args:
            trial_id: the id of the trial.
            user_id: the id the starting client gave.
            trial_params: the parameters so far (the project's defaults, or the previous
                hook's output); it may be modified in place.

        Returns:
            The parameters to use (returning None keeps `trial_params` as modified). The
            orchestrator checks them and refuses the trial when they are invalid. An
            exception fails the trial's start with a status naming this class.
        """
