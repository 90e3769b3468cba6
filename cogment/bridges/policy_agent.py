"""`PolicyAgent(policy)`: a policy on numpy values served as a Cogment agent.

```python
def policy(observation):                     # e.g. a numpy array for a Box space
    return int(observation @ weights > 0)    # an action of the env's action space

server = cogment.GrpcServer(PolicyAgent(policy), cog_settings, port=9001)
```
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from gymnasium import spaces as gs

import cogment
from cogment.bridges import settings as builtin
from cogment.bridges import spaces
from cogment.errors import ConfigurationError
from cogment.settings import ActorClass

Policy = Callable[[Any], Any]


class _PolicyAgent(cogment.Agent):  # type: ignore[type-arg]
    """A player acting with `policy` (subclassed by `PolicyAgent`)."""

    policy: Policy
    observation_space: Optional[gs.Space[Any]] = None
    action_space: Optional[gs.Space[Any]] = None

    def decide(self, observation: Any) -> Any:
        action: Any = self.actor.actor_class.action_space()
        if observation.terminated or observation.truncated or not observation.HasField("value"):
            return action  # a PettingZoo agent that left: its actions are not needed
        value = spaces.decode(self.observation_space, observation.value, "observation")
        chosen = type(self).policy(value)
        if self.action_space is not None:
            spaces.encode(self.action_space, chosen, action.value, "the policy's action")
        else:
            spaces.encode_any(chosen, action.value, "the policy's action")
        return action


def PolicyAgent(
    policy: Policy,
    *,
    actor_class: Union[str, ActorClass] = builtin.PLAYER,
    observation_space: Optional[gs.Space[Any]] = None,
    action_space: Optional[gs.Space[Any]] = None,
    name: Optional[str] = None,
) -> type[cogment.Agent]:  # type: ignore[type-arg]
    """A `cogment.Agent` class whose actors act with `policy` (serve it with `GrpcServer`).

    `policy(observation) -> action` works on numpy values: it gets the env's observation as
    the env made it (arrays, ints or numpy integers, dicts, tuples) and returns an action of
    the env's action space
    (a numpy array or scalar, an int, a dict or tuple of them). It is not called for a
    PettingZoo agent that left; that actor's action is then empty.

    Args:
        policy: the function choosing actions.
        actor_class: the class its actors play (`player`, or a project's ActorClass).
        observation_space: decode observations as elements of this space (exact dtypes);
            by default they are decoded as they travel.
        action_space: encode actions as elements of this space (casting lists and other
            dtypes, checking shapes); by default they are sent as they are.
        name: the class's name (for logs).

    Raises:
        ConfigurationError: `policy` is not callable, or a space cannot travel.
    """
    if not callable(policy):
        raise ConfigurationError(f"PolicyAgent: policy must be callable, got {policy!r}")
    for space, what in ((observation_space, "observation_space"), (action_space, "action_space")):
        if space is not None:
            spaces.check_space(space, f"PolicyAgent {what}")
    if isinstance(actor_class, ActorClass):
        played = actor_class
    elif actor_class == builtin.PLAYER:
        played = builtin.actor_classes.player
    else:
        played = ActorClass(
            id=actor_class,
            action_space=builtin.actor_classes.player.action_space,
            observation_space=builtin.actor_classes.player.observation_space,
            observation_delta=builtin.actor_classes.player.observation_space,
        )
    label = name or getattr(policy, "__name__", type(policy).__name__)
    attributes = {
        "policy": staticmethod(policy),
        "actor_class": played,
        "observation_space": observation_space,
        "action_space": action_space,
        "__doc__": f"Plays {played.id!r} with the policy {label}.",
    }
    return type(f"PolicyAgent[{label}]", (_PolicyAgent,), attributes)
