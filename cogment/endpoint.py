"""Endpoints, parsed and written in one place.

An endpoint names a service a trial calls: `grpc://host:port` in cogment.yaml and in trial
parameters (a host name, an IPv4 address or an IPv6 address in brackets, and a port in
1..65535), or `human` (`cogment.constants.HUMAN_ENDPOINT`), the actor slot a client takes.
gRPC channels take the address `host:port`; a client names its orchestrator either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple, Optional

from cogment.constants import HUMAN_ENDPOINT
from cogment.errors import ConfigurationError

GRPC_SCHEME = "grpc://"

LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]", "[::]")
"""The hosts that mean "this machine" (as written in an endpoint)."""

BAD_ORCHESTRATOR_ENDPOINT = (
    "invalid orchestrator endpoint {endpoint!r} (expected 'host:port' or 'grpc://host:port')"
)

_HOST = r"(?P<host>[^\s:/\[\]]+|\[[0-9a-fA-F:.]+\])"
_PORT = r"(?P<port>\d{1,5})"
_ENDPOINT_RE = re.compile(rf"^(?P<scheme>{GRPC_SCHEME})?{_HOST}:{_PORT}$")
_LOCAL_ADDRESS_RE = re.compile(
    rf"(?:{GRPC_SCHEME})?(?P<host>{'|'.join(map(re.escape, LOCAL_HOSTS))}):{_PORT}(?!\d)"
)


class Endpoint(NamedTuple):
    """A parsed endpoint; an IPv6 host keeps its brackets."""

    host: str
    port: int

    @property
    def address(self) -> str:
        """`host:port`, what gRPC channels take."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """`grpc://host:port`, as cogment.yaml and trial parameters write it."""
        return f"{GRPC_SCHEME}{self.address}"

    @property
    def is_local(self) -> bool:
        """True when the host is this machine (one of `LOCAL_HOSTS`)."""
        return self.host in LOCAL_HOSTS


def host_port(host: str, port: int) -> str:
    """`host:port` for a host as a user writes it (an IPv6 host gets its brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return Endpoint(host, port).address


def parse_grpc_endpoint(text: str, *, scheme_optional: bool = False) -> Optional[Endpoint]:
    """The endpoint `grpc://host:port` (or `host:port` too, with `scheme_optional`) names;
    None when `text` is not one, or its port is not in 1..65535."""
    match = _ENDPOINT_RE.match(text)
    if match is None or (match.group("scheme") is None and not scheme_optional):
        return None
    port = int(match.group("port"))
    return Endpoint(match.group("host"), port) if 0 < port < 65536 else None


def is_grpc_endpoint(text: str) -> bool:
    """True for `grpc://host:port` with a port in 1..65535."""
    return parse_grpc_endpoint(text) is not None


def is_actor_endpoint(text: str) -> bool:
    """True for an actor's endpoint: `human`, or `grpc://host:port`."""
    return text == HUMAN_ENDPOINT or is_grpc_endpoint(text)


def endpoint_address(endpoint: str) -> str:
    """`grpc://host:port` -> `host:port` (what gRPC channels take); other text as it is."""
    return endpoint[len(GRPC_SCHEME) :] if endpoint.startswith(GRPC_SCHEME) else endpoint


def orchestrator_address(endpoint: Any) -> str:
    """A client's orchestrator endpoint, `host:port` or `grpc://host:port` -> `host:port`.

    Raises:
        ConfigurationError: the endpoint is not of either form.
    """
    parsed = (
        parse_grpc_endpoint(endpoint.strip(), scheme_optional=True)
        if isinstance(endpoint, str)
        else None
    )
    if parsed is None:
        raise ConfigurationError(BAD_ORCHESTRATOR_ENDPOINT.format(endpoint=endpoint))
    return parsed.address


def local_addresses(text: str) -> Iterator[tuple[str, int]]:
    """Each address of this machine written in `text` (`localhost:9000`,
    `grpc://127.0.0.1:9000`, ...), as written, with its port."""
    for match in _LOCAL_ADDRESS_RE.finditer(text):
        yield match.group(0), int(match.group("port"))
