"""PettingZoo and Cogment, both ways (`pip install "cogment[pettingzoo]"`).

* `PettingZooEnvironment(factory)`: a PettingZoo ParallelEnv served as a Cogment environment,
  its `possible_agents` the trial's players (`cogment pettingzoo serve module:function`);
* `TrialParallelEnv(cog_settings, endpoint)`: a Cogment trial seen as a ParallelEnv, holding
  its human player slots, for multi-agent learners;
* `PolicyAgent`, `settings`, `env_config`: as in `cogment.gym`.
"""

from cogment.bridges.extras import require as _require

_require("pettingzoo", "cogment.pettingzoo")

from cogment.bridges import settings  # noqa: E402
from cogment.bridges.envconfig import env_config  # noqa: E402
from cogment.bridges.parallel_env import TrialParallelEnv  # noqa: E402
from cogment.bridges.pettingzoo_env import PettingZooEnvironment  # noqa: E402
from cogment.bridges.policy_agent import PolicyAgent  # noqa: E402

__all__ = [
    "PettingZooEnvironment",
    "PolicyAgent",
    "TrialParallelEnv",
    "env_config",
    "settings",
]
