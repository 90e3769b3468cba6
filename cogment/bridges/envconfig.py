"""`EnvConfig`: what a served environment is (its id, and each seat's spaces).

`cogment gym init` writes it into the project (cogment.yaml, `trial_params.environment.config`);
the served environment checks the config of each trial against its own; a `TrialEnv` takes
its `observation_space` and `action_space` from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional

from google.protobuf import json_format
from gymnasium import spaces as gs

from cogment.bridges import spaces
from cogment.bridges.messages import module as messages
from cogment.errors import ConfigurationError

Seat = tuple[str, gs.Space[Any], gs.Space[Any]]  # (name, observation space, action space)

NO_SPACES = (
    "the orchestrator's default trial parameters describe no spaces "
    "(trial_params.environment.config.agents): write the project with `cogment gym init`"
)
MISMATCH = (
    "this service serves {served!r} but the trial's environment config describes {asked!r} "
    "({what}); write the project again with `cogment gym init`"
)


def env_config(env_id: str, seats: Sequence[Seat], config_type: Any = None) -> Any:
    """The `EnvConfig` of an environment (`config_type`: the class to make; the package's
    own by default).

    Raises:
        UnsupportedSpaceError: a space cannot travel (named with its seat).
    """
    config = (config_type or messages().EnvConfig)(env_id=env_id)
    for name, observation_space, action_space in seats:
        agent = config.agents.add(name=name)
        spaces.space_to_proto(
            observation_space, agent.observation_space, f"{name}: observation_space"
        )
        spaces.space_to_proto(action_space, agent.action_space, f"{name}: action_space")
    return config


def seat_spaces(config: Any, index: int) -> tuple[gs.Space[Any], gs.Space[Any]]:
    """The (observation, action) spaces of seat `index` of an EnvConfig.

    Raises:
        ConfigurationError: the config describes no such seat or an unusable space.
    """
    if not config.agents:
        raise ConfigurationError(NO_SPACES)
    if index >= len(config.agents):
        raise ConfigurationError(
            f"the environment config describes {len(config.agents)} seats, not seat {index}"
        )
    agent = config.agents[index]
    try:
        return (
            spaces.space_from_proto(agent.observation_space, f"{agent.name}: observation_space"),
            spaces.space_from_proto(agent.action_space, f"{agent.name}: action_space"),
        )
    except ValueError as error:
        raise ConfigurationError(f"the environment config: {error}") from None


def mismatch(served: Any, asked: Optional[Any]) -> Optional[str]:
    """Why a trial's EnvConfig (`asked`, None when absent) does not fit the served one."""
    if asked is None:
        return None
    if asked.env_id and asked.env_id != served.env_id:
        return MISMATCH.format(served=served.env_id, asked=asked.env_id, what="another env")
    if not asked.agents:
        return None
    if len(asked.agents) != len(served.agents):
        return MISMATCH.format(
            served=served.env_id,
            asked=asked.env_id,
            what=f"{len(asked.agents)} seats instead of {len(served.agents)}",
        )
    for mine, theirs in zip(served.agents, asked.agents):
        if mine.SerializeToString(deterministic=True) != theirs.SerializeToString(
            deterministic=True
        ):
            return MISMATCH.format(
                served=served.env_id, asked=asked.env_id, what=f"other spaces for {mine.name!r}"
            )
    return None


_INTEGER_KEYS = ("shape", "n", "start")
_DIGITS = re.compile(r"^-?\d+$")


def to_yaml_data(config: Any) -> dict[str, Any]:
    """An EnvConfig as the map cogment.yaml holds (`config:`), integers as numbers."""

    def tidy(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: tidy(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [tidy(v, key) for v in value]
        if key in _INTEGER_KEYS and isinstance(value, str) and _DIGITS.match(value):
            return int(value)
        return value

    data: dict[str, Any] = tidy(json_format.MessageToDict(config, preserving_proto_field_name=True))
    return data
