"""The embedded orchestrator: runs a project's trials with no Docker and no native binary.

`Orchestrator` (runner.py) serves `cogment.Trial` from one background thread; the core is
`service.OrchestratorServer`; one trial's life is `tick.Trial`.
"""

from __future__ import annotations

from .runner import Orchestrator

__all__ = ["Orchestrator"]
