"""`Runtime`: what every trial of an orchestrator shares."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Optional

from cogment.api import common_pb2

from .datalog import Recorder
from .endpoints import Endpoints
from .replicas import Replicas


@dataclasses.dataclass
class Runtime:
    """The project, the channels to its services, the defaults, the deadlines, the
    recorder of the datalog (None: trials are not recorded), and the services' replicas."""

    settings: Any
    endpoints: Endpoints
    default_params: common_pb2.TrialParams
    pre_hooks: Sequence[str]
    recorder: Optional[Recorder]
    response_timeout: float
    end_timeout: float
    replicas: Replicas
