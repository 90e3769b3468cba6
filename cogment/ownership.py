"""Which orchestrator owns a trial: its address, written into the trial's id.

An orchestrator names its trials `<uuid>@<host:port>`, where `host:port` is the address it
advertises (`cogment orchestrator --advertise`). A client with several orchestrators sends
every call of a trial to its owner; an orchestrator asked about a trial it does not own
forwards the call to the owner. An id without `@` (from a 0.5 orchestrator) names no owner.
"""

from __future__ import annotations

import socket
import uuid
from typing import Optional

from cogment.endpoint import host_port, parse_grpc_endpoint

SEPARATOR = "@"

FORWARDED_BY = "cogment-forwarded-by"
"""gRPC metadata an orchestrator adds to a call it forwards to a trial's owner (naming
itself): the owner answers it, never forwards it again."""

_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


def new_trial_id(owner: str) -> str:
    """A new trial id owned by the orchestrator at `owner` (`host:port`)."""
    return f"{uuid.uuid4()}{SEPARATOR}{owner}"


def owner_of(trial_id: str) -> Optional[str]:
    """The `host:port` of the orchestrator that owns `trial_id`; None when it names none."""
    _, separator, owner = trial_id.rpartition(SEPARATOR)
    if not separator or parse_grpc_endpoint(owner, scheme_optional=True) is None:
        return None
    return owner


def default_advertised(host: str, port: int) -> str:
    """What an orchestrator bound to `host:port` advertises unless told: that address, with
    this machine's name for a wildcard host (0.0.0.0, [::]) other machines cannot dial."""
    if host in _WILDCARD_HOSTS:
        host = socket.getfqdn()
    return host_port(host, port)
