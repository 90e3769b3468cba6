"""The driver's delta-apply function: rebuilds its full observation from the previous one
and an ObservationDelta (cogment.yaml names it as `delta_apply_fn`)."""

from __future__ import annotations

from typing import Any


def apply_delta(previous_observation: Any, delta: Any) -> Any:
    """Returns a new city.Observation: `previous_observation` with `delta` applied.

    The inputs are left unchanged (the SDK and the client may hold on to them).
    """
    observation = type(previous_observation)()
    observation.CopyFrom(previous_observation)
    observation.tick = delta.tick
    observation.car.CopyFrom(delta.car)
    observation.collisions = delta.collisions
    for moved in delta.moved:
        observation.pedestrians[moved.index].CopyFrom(moved)
    return observation
