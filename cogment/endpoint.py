"""Endpoints, parsed and written in one place.

An endpoint names a service a trial calls: `grpc://host:port` (plaintext) or
`grpcs://host:port` (TLS) in cogment.yaml and in trial parameters (a host name, an IPv4
address or an IPv6 address in brackets, and a port in 1..65535), or `human`
(`cogment.constants.HUMAN_ENDPOINT`), the actor slot a client takes. gRPC channels take the
address `host:port`; a client names its orchestrator with or without a scheme (`host:port`
is plaintext).

An environment's, agent's or pre-trial hook's endpoint may name several replicas of one
service: a host name with several addresses (a Kubernetes headless Service), or an explicit
list, `grpc://10.0.0.1:9001,10.0.0.2:9001` (the scheme written once, or repeated the same on
every entry). The orchestrator pins each trial to one of them (`orchestrator/replicas.py`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from typing import Any, NamedTuple, Optional

from cogment.constants import HUMAN_ENDPOINT
from cogment.errors import ConfigurationError

GRPC_SCHEME = "grpc://"
GRPCS_SCHEME = "grpcs://"
GRPC_ENDPOINT_FORMS = "grpc://host:port or grpcs://host:port"
"""How an error says what a service endpoint must look like."""

SERVICE_ENDPOINT_FORMS = f"{GRPC_ENDPOINT_FORMS}, or a list of replicas grpc://host:port,host:port"
"""How an error says what an environment's, agent's or hook's endpoint must look like."""

REPLICA_SEPARATOR = ","

LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]", "[::]")
"""The hosts that mean "this machine" (as written in an endpoint)."""

BAD_ORCHESTRATOR_ENDPOINT = (
    "invalid orchestrator endpoint {endpoint!r} "
    "(expected 'host:port', 'grpc://host:port' or 'grpcs://host:port')"
)

_HOST = r"(?P<host>[^\s:/\[\]]+|\[[0-9a-fA-F:.]+\])"
_PORT = r"(?P<port>\d{1,5})"
_SCHEME = r"(?P<scheme>grpcs?://)"
_ENDPOINT_RE = re.compile(rf"^{_SCHEME}?{_HOST}:{_PORT}$")
_LOCAL_ADDRESS_RE = re.compile(
    rf"{_SCHEME}?(?P<host>{'|'.join(map(re.escape, LOCAL_HOSTS))}):{_PORT}(?!\d)"
)


class Endpoint(NamedTuple):
    """A parsed endpoint; an IPv6 host keeps its brackets; `secure`: called over TLS."""

    host: str
    port: int
    secure: bool = False

    @property
    def address(self) -> str:
        """`host:port`, what gRPC channels take."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """`grpc://host:port` (`grpcs://` when secure), as cogment.yaml and trial parameters
        write it."""
        return f"{GRPCS_SCHEME if self.secure else GRPC_SCHEME}{self.address}"

    @property
    def is_local(self) -> bool:
        """True when the host is this machine (one of `LOCAL_HOSTS`)."""
        return self.host in LOCAL_HOSTS


def port_argument(text: str) -> int:
    """A command line's port number (0-65535), for `argparse` (`type=port_argument`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text}")
    return value


def host_port(host: str, port: int) -> str:
    """`host:port` for a host as a user writes it (an IPv6 host gets its brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return Endpoint(host, port).address


def parse_grpc_endpoint(text: str, *, scheme_optional: bool = False) -> Optional[Endpoint]:
    """The endpoint `grpc://host:port` or `grpcs://host:port` (or `host:port` too, plaintext,
    with `scheme_optional`) names; None when `text` is not one, or its port is not in
    1..65535."""
    match = _ENDPOINT_RE.match(text)
    if match is None or (match.group("scheme") is None and not scheme_optional):
        return None
    port = int(match.group("port"))
    secure = match.group("scheme") == GRPCS_SCHEME
    return Endpoint(match.group("host"), port, secure) if 0 < port < 65536 else None


def is_grpc_endpoint(text: str) -> bool:
    """True for `grpc://host:port` or `grpcs://host:port` with a port in 1..65535."""
    return parse_grpc_endpoint(text) is not None


def parse_service_endpoint(text: str) -> Optional[list[Endpoint]]:
    """The replicas a service endpoint names: `[endpoint]` for `grpc://host:port` or
    `grpcs://host:port`, each entry of a list `grpc://h1:p1,h2:p2` (the scheme first, or
    the same on every entry; no entry twice); None when `text` is none of these."""
    if REPLICA_SEPARATOR not in text:
        single = parse_grpc_endpoint(text)
        return None if single is None else [single]
    entries = [entry.strip() for entry in text.split(REPLICA_SEPARATOR)]
    first = parse_grpc_endpoint(entries[0])
    if first is None:
        return None
    scheme = GRPCS_SCHEME if first.secure else GRPC_SCHEME
    found = [first]
    for entry in entries[1:]:
        if "://" not in entry:
            entry = scheme + entry
        parsed = parse_grpc_endpoint(entry)
        if parsed is None or parsed.secure != first.secure or parsed in found:
            return None
        found.append(parsed)
    return found


def is_service_endpoint(text: str) -> bool:
    """True for an environment's, agent's or hook's endpoint (see `parse_service_endpoint`)."""
    return parse_service_endpoint(text) is not None


def is_actor_endpoint(text: str) -> bool:
    """True for an actor's endpoint: `human`, `grpc://host:port` or `grpcs://host:port`, or
    a list of replicas (`grpc://h1:p1,h2:p2`)."""
    return text == HUMAN_ENDPOINT or is_service_endpoint(text)


def endpoint_address(endpoint: str) -> str:
    """`grpc://host:port` or `grpcs://host:port` -> `host:port` (what gRPC channels take);
    other text as it is."""
    for scheme in (GRPC_SCHEME, GRPCS_SCHEME):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme) :]
    return endpoint


def parse_orchestrator_endpoint(endpoint: Any) -> Endpoint:
    """A client's orchestrator endpoint: `host:port` or `grpc://host:port` (plaintext), or
    `grpcs://host:port` (TLS).

    Raises:
        ConfigurationError: the endpoint is of none of these forms.
    """
    parsed = (
        parse_grpc_endpoint(endpoint.strip(), scheme_optional=True)
        if isinstance(endpoint, str)
        else None
    )
    if parsed is None:
        raise ConfigurationError(BAD_ORCHESTRATOR_ENDPOINT.format(endpoint=endpoint))
    return parsed


def orchestrator_address(endpoint: Any) -> str:
    """A client's orchestrator endpoint (see `parse_orchestrator_endpoint`) -> `host:port`.

    Raises:
        ConfigurationError: the endpoint is not of those forms.
    """
    return parse_orchestrator_endpoint(endpoint).address


def local_addresses(text: str) -> Iterator[tuple[str, int]]:
    """Each address of this machine written in `text` (`localhost:9000`,
    `grpc://127.0.0.1:9000`, `grpcs://[::1]:9000`, ...), as written, with its port."""
    for match in _LOCAL_ADDRESS_RE.finditer(text):
        yield match.group(0), int(match.group("port"))
