"""Small Gymnasium envs for the bridge tests.

`Corridor`: walk right to cell 5. Observation: a Dict (position as a Box(1,) of float32, and
the number of steps as a Discrete(100)); action Discrete(2) (0 stays, 1 moves). Its info
carries an action mask, a float and a string; it renders a 2x6 RGB frame. `TextEnv`: an env
with a Text observation space (unsupported on the wire).
"""

from __future__ import annotations

from typing import Any, Optional

import gymnasium
import numpy as np
from gymnasium import spaces


class Corridor(gymnasium.Env[Any, Any]):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: Optional[str] = None) -> None:
        self.observation_space = spaces.Dict(
            {"position": spaces.Box(0.0, 5.0, (1,), np.float32), "steps": spaces.Discrete(100)}
        )
        self.action_space = spaces.Discrete(2)
        self.render_mode = render_mode
        self.position = 0.0
        self.steps = 0

    def _observe(self) -> dict[str, Any]:
        return {
            "position": np.array([self.position], np.float32),
            "steps": np.int64(self.steps),
        }

    def _info(self) -> dict[str, Any]:
        mask = np.array([1, 1 if self.position < 5 else 0], np.int8)
        return {"action_mask": mask, "distance": 5.0 - self.position, "note": "corridor"}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict[str, Any]] = None) -> Any:
        super().reset(seed=seed)
        self.position = (
            float(self.np_random.integers(0, 2))
            if options is None
            else float(options.get("start", 0))
        )
        self.steps = 0
        return self._observe(), self._info()

    def step(self, action: Any) -> Any:
        self.position = min(5.0, self.position + int(action))
        self.steps += 1
        terminated = self.position >= 5.0
        return self._observe(), 1.0 if terminated else -0.5, terminated, False, self._info()

    def render(self) -> Any:
        frame = np.zeros((2, 6, 3), np.uint8)
        frame[:, int(self.position)] = 255
        return frame


class TextEnv(gymnasium.Env[Any, Any]):
    def __init__(self) -> None:
        self.observation_space = spaces.Text(8)
        self.action_space = spaces.Discrete(2)
