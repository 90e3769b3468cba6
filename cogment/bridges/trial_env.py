"""`TrialEnv`: a Cogment trial seen as a `gymnasium.Env`, one actor slot of it.

```python
env = TrialEnv(cog_settings, "127.0.0.1:9000")        # the `player` slot
observation, info = env.reset(seed=0)                  # a new trial, seed in its config
observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
env.close()
```

Any RL library that trains on a `gymnasium.Env` then trains on a trial whose other seats may
be humans or agents. The spaces are those the project's environment config describes (what
`cogment gym init` wrote, read once from the orchestrator's default trial parameters).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Optional, SupportsFloat, Union

import grpc
import gymnasium

from cogment.bridges import envconfig, observation, spaces
from cogment.bridges.settings import PLAYER
from cogment.client import ClientTrial, Connection
from cogment.constants import HUMAN_ENDPOINT
from cogment.errors import CogmentError, ConfigurationError, TrialEndedError
from cogment.settings import ActorClass

log = logging.getLogger("cogment.bridges")

NO_SLOT = (
    "the orchestrator's default trial parameters have no human {actor_class!r} slot for a "
    "TrialEnv (trial_params.actors: give one the endpoint 'human')"
)
RESET_FIRST = "call reset() first: there is no episode under way"
EPISODE_OVER = "the episode is over (trial {trial_id}: {reason}); call reset()"
BAD_OPTIONS = "reset(options=...) must be JSON-serializable to travel: {error}"
NO_FRAMES = "render(): the served environment sends no frames (serve it with render)"


class TrialEnv(gymnasium.Env[Any, Any]):
    """A Cogment trial as a Gymnasium env: each episode is a trial, each step a `do_action`.

    `reset(seed=s)` starts a trial whose config carries `s` (and the options, as JSON): the
    served env resets with them, so the observation and info are those of
    `gymnasium.make(ENV_ID).reset(seed=s)`. `reset()` without a seed draws one from this
    env's `np_random`, so a seeded run is reproducible. `step(action)` is one `do_action`:

    * reward: the combined feedback of the tick (the env's reward, plus what other actors
      gave; a 32-bit float on the wire);
    * terminated / truncated: as the env said; `truncated` also when the trial ended
      otherwise (max_steps, inactivity, another client);
    * info: the env's info, plus `messages` (the cogment Messages received this tick) and, on
      the episode's last step, `trial_id` and `end_reason` (the trial id is also `trial_id`
      on this env; it stays out of other steps' info so that seeded runs compare equal, as
      `gymnasium.utils.env_checker.check_env` asks).

    A trial that is still running is ended by the next `reset()` and by `close()`.

    Args:
        cog_settings: the project's cog_settings (or `cogment.gym.settings`).
        endpoint: the orchestrator, `host:port` or `grpc://host:port`.
        actor_class: the class of the slot played (a human slot of the default trial).
        render_mode: None, or "rgb_array" to get frames from `render()` (the served env must
            send them).
        timeout: deadline of each call to the orchestrator, in seconds (None: none).
        tls_ca: for a `grpcs://` endpoint, the CA file that checks the orchestrator's
            certificate (None: the system's roots).

    Raises:
        ConfigurationError: no human slot of `actor_class`, or no spaces in the project.
        CogmentRpcError: the orchestrator cannot be reached.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        cog_settings: Any,
        endpoint: Union[str, grpc.Channel],
        actor_class: Union[str, ActorClass] = PLAYER,
        *,
        render_mode: Optional[str] = None,
        timeout: Optional[float] = None,
        tls_ca: Optional[str] = None,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ConfigurationError(
                f"render_mode must be None or 'rgb_array', got {render_mode!r}"
            )
        self.render_mode = render_mode
        self._connection = Connection(cog_settings, endpoint, timeout=timeout, tls_ca=tls_ca)
        self._trial: Optional[ClientTrial] = None
        self._frame: Any = None
        try:
            self._setup(cog_settings, actor_class)
        except BaseException:
            self._connection.close()
            raise

    def _setup(self, cog_settings: Any, actor_class: Union[str, ActorClass]) -> None:
        classes = cog_settings.actor_classes
        name = actor_class.id if isinstance(actor_class, ActorClass) else actor_class
        found = classes.get(name)
        if found is None:
            raise ConfigurationError(
                f"unknown actor class {name!r} (declared: {', '.join(classes.ids)})"
            )
        self._actor_class: ActorClass = found
        params = self._connection.get_trial_params()
        seat = None
        index = 0
        for actor in params.actors:
            if actor.actor_class == name:
                if actor.endpoint == HUMAN_ENDPOINT:
                    seat = index
                    break
                index += 1
        if seat is None:
            raise ConfigurationError(NO_SLOT.format(actor_class=name))
        config_type = cog_settings.environment.config_type
        if config_type is None or not params.environment.HasField("config"):
            raise ConfigurationError(envconfig.NO_SPACES)
        config = config_type.FromString(params.environment.config.content)
        self.env_id: str = config.env_id
        self.observation_space, self.action_space = envconfig.seat_spaces(config, seat)
        self._trial_config_type = cog_settings.trial.config_type

    # ------------------------------------------------------------------ gymnasium.Env

    def reset(
        self, *, seed: Optional[int] = None, options: Optional[dict[str, Any]] = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._end_trial()
        config = None
        if self._trial_config_type is not None:
            config = self._trial_config_type()
            config.seed = seed if seed is not None else int(self.np_random.integers(2**63 - 1))
            if options:
                try:
                    config.options_json = json.dumps(options)
                except (TypeError, ValueError) as error:
                    raise TypeError(BAD_OPTIONS.format(error=error)) from None
        trial = self._connection.start_trial(self._actor_class, config)
        if trial.actor_class is None:  # a pre-trial hook took the human slot away
            trial.end()
            raise ConfigurationError(NO_SLOT.format(actor_class=self._actor_class.id))
        self._trial = trial
        message = trial.observation
        self._frame = message.frame
        value = spaces.decode(self.observation_space, message.value, "observation")
        return value, observation.read_info(message)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        trial = self._trial
        if trial is None:
            raise gymnasium.error.ResetNeeded(RESET_FIRST)
        if trial.is_over:
            raise gymnasium.error.ResetNeeded(
                EPISODE_OVER.format(trial_id=trial.id, reason=trial.end_reason)
            )
        message: Any = self._actor_class.action_space()
        spaces.encode(self.action_space, action, message.value, "action")
        try:
            result = trial.do_action(message)
        except TrialEndedError:  # ended meanwhile (another client, inactivity): a truncation
            last = trial.observation
            info = observation.read_info(last)
            info.update(trial_id=trial.id, messages=[], end_reason=trial.end_reason)
            value = spaces.decode(self.observation_space, last.value, "observation")
            return value, 0.0, False, True, info
        reply = result.observation
        self._frame = reply.frame
        value = spaces.decode(self.observation_space, reply.value, "observation")
        terminated, truncated = bool(reply.terminated), bool(reply.truncated)
        info = observation.read_info(reply)
        info["messages"] = list(result.messages.messages)
        if trial.is_over:
            info["trial_id"] = trial.id
            info["end_reason"] = trial.end_reason
            if not (terminated or truncated):
                truncated = True
        return value, float(result.reward.value), terminated, truncated, info

    def render(self) -> Any:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without render_mode='rgb_array'")
            return None
        if self._frame is None or not self._frame.dtype:
            raise CogmentError(NO_FRAMES)
        return spaces.array_from_proto(self._frame, "frame")

    def close(self) -> None:
        self._end_trial()
        self._connection.close()
        super().close()

    # ------------------------------------------------------------------ cogment

    @property
    def trial(self) -> Optional[ClientTrial]:
        """The trial of the current (or last) episode."""
        return self._trial

    @property
    def trial_id(self) -> Optional[str]:
        """The id of the current (or last) episode's trial."""
        return self._trial.id if self._trial is not None else None

    @property
    def connection(self) -> Connection:
        """The Connection to the orchestrator (owned: closed by `close()`)."""
        return self._connection

    def _end_trial(self) -> None:
        trial, self._trial = self._trial, None
        if trial is not None and not trial.is_over and not self._connection.is_closed:
            try:
                trial.end()
            except CogmentError as error:
                log.debug("trial %s: end(): %s", trial.id, error)

    def __repr__(self) -> str:
        return f"TrialEnv({self.env_id!r}, {self._connection.endpoint!r}, {self._actor_class.id!r})"
