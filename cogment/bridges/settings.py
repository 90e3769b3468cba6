"""The built-in settings of a bridge project: a `cog_settings` without generating one.

The actor classes of every project `cogment gym init` (or `cogment pettingzoo init`) writes:

* `player`: acts (`cogment_bridges.Action`) and observes (`cogment_bridges.Observation`): the
  Gymnasium env's single player, or one of the PettingZoo env's `possible_agents` each;
* `observer`: any number; sees what the env shows (Gymnasium: the player's observation;
  PettingZoo: the env's `state()` and rendered frame); its actions are ignored.

`cogment gym serve` serves with these; `cogment.gym.TrialEnv`, `PolicyAgent` and
`cogment.Orchestrator` take them as well as a generated cog_settings of such a project:

```python
from cogment.bridges import settings
orchestrator = cogment.Orchestrator(
    settings, default_trial_params=settings.trial_params("grpc://127.0.0.1:9002", config)
)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import cogment.settings as _cs
from cogment.api import common_pb2
from cogment.bridges.messages import module as _messages
from cogment.delta import actions_table_type, observations_table_type

PLAYER = "player"
OBSERVER = "observer"

_pb = _messages()

actor_classes = _cs.ActorClassList(
    _cs.ActorClass(
        id=PLAYER,
        action_space=_pb.Action,
        observation_space=_pb.Observation,
        observation_delta=_pb.Observation,
    ),
    _cs.ActorClass(
        id=OBSERVER,
        action_space=_pb.Action,
        observation_space=_pb.Observation,
        observation_delta=_pb.Observation,
    ),
)
trial = _cs.TrialSettings(config_type=_pb.TrialConfig)
environment = _cs.EnvironmentSettings(config_type=_pb.EnvConfig)
pre_hooks: list[str] = []
datalog: Optional[_cs.DatalogSettings] = None
project_file: Optional[str] = None
default_trial_params = common_pb2.TrialParams()  # none: pass trial_params(...) to the orchestrator
ActionsTable = actions_table_type(actor_classes)
ObservationsTable = observations_table_type(actor_classes)
ObservationTable = ObservationsTable


def trial_params(
    env_endpoint: str,
    env_config: Any = None,
    *,
    players: Sequence[str] = ("human",),
    observers: Sequence[str] = (),
    max_steps: int = 0,
    max_inactivity: int = 0,
) -> common_pb2.TrialParams:
    """Trial parameters of a bridge trial.

    Args:
        env_endpoint: `grpc://host:port` of the served environment.
        env_config: its `EnvConfig` (`cogment.gym.env_config(...)`), or None.
        players: the endpoint of each player (`human` or `grpc://...`), in actor id order.
        observers: the endpoint of each observer.
        max_steps: ends the trial after that many ticks (0: never).
        max_inactivity: seconds without a human action before the trial is reaped (0: never).
    """
    params = common_pb2.TrialParams(max_steps=max_steps, max_inactivity=max_inactivity)
    params.environment.endpoint = env_endpoint
    if env_config is not None:
        params.environment.config.content = env_config.SerializeToString()
    for actor_class, endpoints in ((PLAYER, players), (OBSERVER, observers)):
        for endpoint in endpoints:
            params.actors.add(actor_class=actor_class, endpoint=endpoint)
    return params
