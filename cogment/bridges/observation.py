"""What a served environment puts in an `Observation`, and what a client takes out of it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
from gymnasium import spaces as gs

from cogment.bridges import spaces

log = logging.getLogger("cogment.bridges")

ACTION_MASK = "action_mask"


class InfoEncoder:
    """Puts info dicts in observations; an entry that cannot travel is left out, with one
    warning per key."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._warned: set[str] = set()

    def fill(self, info: Any, observation: Any) -> None:
        if not info or not isinstance(info, Mapping):
            return
        out = observation.info.dict
        out.SetInParent()
        for key, value in info.items():
            if key == ACTION_MASK and isinstance(value, np.ndarray):  # also on its own, for
                try:  # front ends that do not read info
                    spaces.array_to_proto(value, observation.action_mask, "info['action_mask']")
                except TypeError:
                    observation.ClearField(ACTION_MASK)
            item = out.items.add()
            try:
                if not isinstance(key, str):
                    raise TypeError(f"info key {key!r} is not a string")
                item.key = key
                spaces.encode_any(value, item.value, f"info[{key!r}]")
            except TypeError as error:
                del out.items[-1]
                if str(key) not in self._warned:
                    self._warned.add(str(key))
                    log.warning(
                        "%s: info[%r] left out of observations: %s", self._owner, key, error
                    )


def fill(
    observation: Any,
    space: Optional[gs.Space[Any]],
    value: Any,
    *,
    reward: float = 0.0,
    terminated: bool = False,
    truncated: bool = False,
    info: Any = None,
    info_encoder: Optional[InfoEncoder] = None,
    frame: Any = None,
    agent: str = "",
) -> Any:
    """Fills an `Observation` message; returns it."""
    if value is not None:
        if space is None:
            spaces.encode_any(value, observation.value, "observation")
        else:
            spaces.encode(space, value, observation.value, "observation")
    if terminated:
        observation.terminated = True
    if truncated:
        observation.truncated = True
    if reward:
        observation.reward = float(reward)
    if info_encoder is not None and info:
        info_encoder.fill(info, observation)
    if frame is not None:
        spaces.array_to_proto(frame, observation.frame, "frame")
    if agent:
        observation.agent = agent
    return observation


def read_info(observation: Any) -> dict[str, Any]:
    """The env's info dict an Observation carries, a new dict."""
    info = spaces.decode_any(observation.info, "info") if observation.HasField("info") else None
    return info if isinstance(info, dict) else {}
