"""Cogment Python SDK: agents, environments, pre-trial hooks and datalogs served over gRPC.

Users write `cogment.Agent`, `cogment.Environment`, `cogment.TrialHooks` or
`cogment.LogExporter` subclasses and serve them with `cogment.GrpcServer`; everything public
is re-exported here (trials recorded in a SQLite store are read with `cogment.datalog`).
"""

import os as _os

# gRPC core logs transient connection events (a service restarting: "Got goaway") at INFO
# on stderr; cogment reports what matters itself. Set GRPC_VERBOSITY to see them again.
# (It takes effect only when grpc is first imported after this line.)
_os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from cogment.actor import Actor
from cogment.agent import Agent
from cogment.delta import ActionsTable, ObservationsTable, ObservationTable
from cogment.environment import Environment
from cogment.errors import (
    CogmentError,
    CogmentRpcError,
    ConfigurationError,
    DatalogError,
    LifecycleError,
    StatusError,
    TrialEndedError,
    TrialError,
)
from cogment.exporter import LogExporter
from cogment.hooks import ActorParameters, EnvironmentParameters, TrialHooks, TrialParameters
from cogment.orchestrator import Orchestrator
from cogment.server import GrpcServer
from cogment.trial import Trial
from cogment.version import API_VERSION, __version__

# Do not import cogment.client here.

__all__ = [
    "API_VERSION",
    "ActionsTable",
    "Actor",
    "ActorParameters",
    "Agent",
    "CogmentError",
    "CogmentRpcError",
    "ConfigurationError",
    "DatalogError",
    "Environment",
    "EnvironmentParameters",
    "GrpcServer",
    "LifecycleError",
    "LogExporter",
    "ObservationTable",
    "ObservationsTable",
    "Orchestrator",
    "StatusError",
    "Trial",
    "TrialEndedError",
    "TrialError",
    "TrialHooks",
    "TrialParameters",
    "__version__",
]
