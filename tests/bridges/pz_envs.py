"""A small PettingZoo ParallelEnv for the bridge tests: agents leave one by one.

`Relay`: three runners (`possible_agents`: runner_0, runner_1, runner_2), each with a Box(2,)
observation [its position, the tick] and a Discrete(3) action (how far it runs). Each gets
its own reward: the distance it ran, plus its index / 10 (so rewards differ per agent).
runner_i terminates once its position reaches 4 + 2 i, so they leave at different ticks;
after `max_cycles` ticks everyone left is truncated. `state()` is every position.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


class Relay(ParallelEnv):  # type: ignore[type-arg]
    metadata = {"name": "relay_v0", "render_modes": ["rgb_array"]}

    def __init__(self, max_cycles: int = 50, render_mode: Optional[str] = None) -> None:
        self.possible_agents = [f"runner_{i}" for i in range(3)]
        self.agents: list[str] = []
        self.max_cycles = max_cycles
        self.render_mode = render_mode
        self._observation_space = spaces.Box(0.0, 100.0, (2,), np.float32)
        self._action_space = spaces.Discrete(3)
        self.state_space = spaces.Box(0.0, 100.0, (3,), np.float32)
        self.positions = np.zeros(3, np.float32)
        self.tick = 0

    def observation_space(self, agent: Any) -> spaces.Box:
        return self._observation_space

    def action_space(self, agent: Any) -> spaces.Discrete:
        return self._action_space

    def _observe(self, i: int) -> np.ndarray:
        return np.array([self.positions[i], self.tick], np.float32)

    def reset(self, seed: Optional[int] = None, options: Optional[dict[str, Any]] = None) -> Any:
        self.agents = list(self.possible_agents)
        start = float((seed or 0) % 2) if options is None else float(options.get("start", 0))
        self.positions = np.full(3, start, np.float32)
        self.tick = 0
        observations = {a: self._observe(i) for i, a in enumerate(self.possible_agents)}
        return observations, {a: {"seat": i} for i, a in enumerate(self.possible_agents)}

    def step(self, actions: dict[str, Any]) -> Any:
        self.tick += 1
        rewards, terminations, truncations, infos, observations = {}, {}, {}, {}, {}
        for i, agent in enumerate(self.possible_agents):
            if agent not in self.agents:
                continue
            ran = int(actions[agent])
            self.positions[i] += ran
            rewards[agent] = ran + i / 10
            terminations[agent] = bool(self.positions[i] >= 4 + 2 * i)
            truncations[agent] = self.tick >= self.max_cycles and not terminations[agent]
            observations[agent] = self._observe(i)
            infos[agent] = {"ran": ran}
        self.agents = [a for a in self.agents if not (terminations[a] or truncations[a])]
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return self.positions.copy()

    def render(self) -> Any:
        frame = np.zeros((4, 12, 3), np.uint8)
        for i, position in enumerate(self.positions):
            frame[i, min(int(position), 11)] = 255
        return frame


def make_relay() -> Relay:
    return Relay()
