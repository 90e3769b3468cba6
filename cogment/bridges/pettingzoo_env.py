"""A PettingZoo `ParallelEnv` served as a Cogment environment:
`PettingZooEnvironment(factory)`.

```python
server = cogment.GrpcServer(PettingZooEnvironment(make_env), cogment.gym.settings, port=9002)
server.serve()   # what `cogment pettingzoo serve my_module:make_env --port 9002` does
```

The env's `possible_agents` are the trial's `player` actors, in order (agent i is player i).
Each gets its own observation (through the observation table), its own reward (feedback,
confidence 1) and its own info. An agent that leaves (terminated or truncated) gets its last
observation with that flag, then only the flag (and its name) on later ticks: its actions
are no longer used. The trial ends when no agent is left. `observer` actors see the env's
`state()` (when it has one) and the rendered frame (when served with `render=True`).
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Callable, ClassVar, Optional, Union

from pettingzoo.utils.env import ParallelEnv

import cogment
from cogment.bridges import envconfig, observation, spaces
from cogment.bridges.settings import OBSERVER, PLAYER
from cogment.errors import ConfigurationError

ParallelFactory = Callable[[], ParallelEnv]

BAD_TARGET = "{target!r} is not of the form module:function (a function making a ParallelEnv)"
PLAYERS = "trial {trial_id}: the env has {expected} agents ({names}), the trial has {count} players"


def load_factory(target: str) -> ParallelFactory:
    """The function `module:function` names.

    Raises:
        ConfigurationError: the module or function cannot be found.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(BAD_TARGET.format(target=target))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(f"{target}: cannot import {module_name!r} ({error})") from None
    factory = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)  # type: ignore[assignment]
        if factory is None:
            raise ConfigurationError(f"{target}: {module_name!r} has no {attribute!r}")
    if not callable(factory):
        raise ConfigurationError(f"{target}: {attribute!r} is not callable")
    return factory  # type: ignore[return-value]


class _PettingZooEnvironment(cogment.Environment):
    """One trial of a served ParallelEnv (subclassed by `PettingZooEnvironment`)."""

    factory: ClassVar[ParallelFactory]
    env_id: ClassVar[str]
    render: ClassVar[bool]
    agent_ids: ClassVar[list[Any]]  # possible_agents, as the env names them
    names: ClassVar[list[str]]  # the same, as strings
    observation_spaces: ClassVar[dict[str, Any]]
    action_spaces: ClassVar[dict[str, Any]]
    config: ClassVar[Any]

    def start(self, config: Optional[Any]) -> Any:
        trial = self.trial
        problem = envconfig.mismatch(self.config, config)
        if problem:
            raise ConfigurationError(problem)
        classes = trial.settings.actor_classes
        counts = dict(zip(classes.ids, trial.actor_counts))
        if counts.get(PLAYER) != len(self.names):
            raise ConfigurationError(
                PLAYERS.format(
                    trial_id=trial.id,
                    expected=len(self.names),
                    names=", ".join(self.names),
                    count=counts.get(PLAYER, 0),
                )
            )
        self._observation_type = getattr(classes, PLAYER).observation_space
        self._players = getattr(trial.actors, PLAYER)
        self._observers = counts.get(OBSERVER, 0)
        self._info = observation.InfoEncoder(f"{self.env_id} (trial {trial.id})")
        self._left: dict[str, tuple[bool, bool]] = {}
        seed, options = None, None
        trial_config = trial.trial_config
        if trial_config is not None:
            if trial_config.HasField("seed"):
                seed = trial_config.seed
            if trial_config.options_json:
                options = json.loads(trial_config.options_json)
        self._env = type(self).factory()
        values, infos = self._env.reset(seed=seed, options=options)
        self._has_state = True
        table = self.trial.new_observation_table()
        seats = getattr(table, PLAYER)
        for i, (agent, name) in enumerate(zip(self.agent_ids, self.names)):
            seats[i] = self._observe(name, values.get(agent), infos.get(agent), 0.0, False, False)
        self._fill_observers(table)
        return table

    def update(self, actions: Any) -> Any:
        env = self._env
        chosen = {}
        for i, (agent, name) in enumerate(zip(self.agent_ids, self.names)):
            if agent in env.agents:
                chosen[agent] = spaces.decode(
                    self.action_spaces[name],
                    actions.all[self._players[i].actor_id].value,
                    f"action of {name!r}",
                )
        values, rewards, terminations, truncations, infos = env.step(chosen)
        table = self.trial.new_observation_table()
        seats = getattr(table, PLAYER)
        for i, (agent, name) in enumerate(zip(self.agent_ids, self.names)):
            player = self._players[i]
            reward = rewards.get(agent)
            if reward is not None:
                player.add_feedback(value=float(reward), confidence=1.0)
            if name in self._left:  # left earlier: only the flags
                terminated, truncated = self._left[name]
                seats[i] = self._observation_type(
                    terminated=terminated, truncated=truncated, agent=name
                )
                continue
            terminated = bool(terminations.get(agent, False))
            truncated = bool(truncations.get(agent, False))
            if terminated or truncated:
                self._left[name] = (terminated, truncated)
            seats[i] = self._observe(
                name, values.get(agent), infos.get(agent), reward or 0.0, terminated, truncated
            )
        if not env.agents:
            self.end_trial = True
        self._fill_observers(table)
        return table

    def _observe(
        self, name: str, value: Any, info: Any, reward: Any, terminated: bool, truncated: bool
    ) -> Any:
        return observation.fill(
            self._observation_type(),
            self.observation_spaces[name] if value is not None else None,
            value,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            info=info,
            info_encoder=self._info,
            agent=name,
        )

    def _fill_observers(self, table: Any) -> None:
        if not self._observers:
            return
        state = None
        if self._has_state:
            try:
                state = self._env.state()
            except (NotImplementedError, AttributeError):
                self._has_state = False
        shared = observation.fill(
            self._observation_type(),
            None,
            state,
            frame=self._env.render() if self.render else None,
        )
        seats = getattr(table, OBSERVER)
        for i in range(len(seats)):
            seats[i] = shared

    def end(self) -> None:
        env = getattr(self, "_env", None)
        if env is not None:
            env.close()


def PettingZooEnvironment(
    env: Union[str, ParallelFactory], *, render: bool = False, env_id: Optional[str] = None
) -> type[_PettingZooEnvironment]:
    """A `cogment.Environment` class serving a PettingZoo ParallelEnv (serve it with
    `GrpcServer`).

    Args:
        env: a function making the env, or `"module:function"` naming one.
        render: send `env.render()` (an RGB array) to the observers; the env must have been
            made with `render_mode="rgb_array"`.
        env_id: the name the env goes by in the project (default: `module:function`, or the
            env's `metadata["name"]`).

    Raises:
        ConfigurationError: the env cannot be made, has no `possible_agents`, does not
            render RGB arrays when asked to, or one of its spaces cannot travel.
    """
    if isinstance(env, str):
        factory, default_id = load_factory(env), env
    elif callable(env):
        factory, default_id = env, ""
    else:
        raise ConfigurationError(f"expected a function making a ParallelEnv, got {env!r}")
    try:
        sample = factory()
    except ConfigurationError:
        raise
    except Exception as error:
        raise ConfigurationError(f"{default_id or env!r}: cannot make the env ({error})") from None
    try:
        if not isinstance(sample, ParallelEnv):
            raise ConfigurationError(
                f"{default_id or env!r} made a {type(sample).__name__}, not a pettingzoo ParallelEnv"
            )
        name = env_id or default_id or str(sample.metadata.get("name", type(sample).__name__))
        names = [str(agent) for agent in getattr(sample, "possible_agents", None) or []]
        if not names:
            raise ConfigurationError(f"{name}: the env has no possible_agents")
        if render and getattr(sample, "render_mode", None) != "rgb_array":
            raise ConfigurationError(
                f"{name}: render=True needs an env made with render_mode='rgb_array'"
            )
        agents = list(sample.possible_agents)
        observation_spaces = {str(a): sample.observation_space(a) for a in agents}
        action_spaces = {str(a): sample.action_space(a) for a in agents}
        config = envconfig.env_config(
            name, [(n, observation_spaces[n], action_spaces[n]) for n in names]
        )
    finally:
        sample.close()
    attributes = {
        "factory": staticmethod(factory),
        "env_id": name,
        "render": render,
        "agent_ids": agents,
        "names": names,
        "observation_spaces": observation_spaces,
        "action_spaces": action_spaces,
        "config": config,
        "__doc__": f"The PettingZoo env {name!r} served as a Cogment environment.",
    }
    return type(f"PettingZooEnvironment[{name}]", (_PettingZooEnvironment,), attributes)
