"""Gymnasium and Cogment, both ways (`pip install "cogment[gym]"`: gymnasium and numpy).

* `GymEnvironment(env_id_or_factory)`: a Gymnasium env served as a Cogment environment
  (`cogment gym serve ENV_ID --port N` on the command line);
* `TrialEnv(cog_settings, endpoint, actor_class="player")`: a Cogment trial seen as a
  `gymnasium.Env`, for any RL library;
* `PolicyAgent(policy)`: a policy on numpy values served as a Cogment agent;
* `settings`: the built-in cog_settings of a bridge project (what `cogment gym init` writes),
  `env_config(...)` the environment config describing an env's spaces;
* `space_to_proto` / `space_from_proto`, `encode` / `decode`: spaces and their values on the
  wire (`cogment_bridges` messages).
"""

from cogment.bridges.extras import require as _require

_require("gym", "cogment.gym")

from cogment.bridges import settings  # noqa: E402
from cogment.bridges.envconfig import env_config  # noqa: E402
from cogment.bridges.gym_env import GymEnvironment  # noqa: E402
from cogment.bridges.policy_agent import PolicyAgent  # noqa: E402
from cogment.bridges.spaces import (  # noqa: E402
    UnsupportedSpaceError,
    decode,
    encode,
    space_from_proto,
    space_to_proto,
)
from cogment.bridges.trial_env import TrialEnv  # noqa: E402

__all__ = [
    "GymEnvironment",
    "PolicyAgent",
    "TrialEnv",
    "UnsupportedSpaceError",
    "decode",
    "encode",
    "env_config",
    "settings",
    "space_from_proto",
    "space_to_proto",
]
