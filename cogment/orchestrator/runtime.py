"""`Runtime`: what every trial of an orchestrator shares."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Optional

from cogment.api import common_pb2

from .endpoints import Endpoints


@dataclasses.dataclass
class Runtime:
    """The project, the channels to its services, the defaults and the deadlines."""

    settings: Any
    endpoints: Endpoints
    default_params: common_pb2.TrialParams
    pre_hooks: Sequence[str]
    datalog_endpoint: Optional[str]
    response_timeout: float
    end_timeout: float
