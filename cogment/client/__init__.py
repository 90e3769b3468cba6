"""The client: start or join trials on an orchestrator and act in them.

```python
from cogment.client import Connection
with Connection(cog_settings, "127.0.0.1:9000") as conn:
    trial = conn.start_trial(cog_settings.actor_classes.player)
    obs, reward, messages = trial.do_action(Move(cell=1))
    trial.end()
```

`trial.actors.<class>[i]` are `cogment.Actor`s, as in agents and environments.
"""

from cogment.client.connection import DEFAULT_HEARTBEAT_INTERVAL, Connection, TrialService
from cogment.client.trial import ActionResult, ClientTrial

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "ActionResult",
    "ClientTrial",
    "Connection",
    "TrialService",
]
