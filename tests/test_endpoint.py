"""cogment.endpoint: the one parser and writer of endpoints."""

from __future__ import annotations

import pytest

from cogment.constants import HUMAN_ENDPOINT
from cogment.endpoint import (
    Endpoint,
    endpoint_address,
    is_actor_endpoint,
    is_grpc_endpoint,
    local_addresses,
    orchestrator_address,
    parse_grpc_endpoint,
    parse_orchestrator_endpoint,
    parse_service_endpoint,
)
from cogment.errors import ConfigurationError


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("grpc://localhost:9000", Endpoint("localhost", 9000)),
        ("grpc://10.0.0.2:1", Endpoint("10.0.0.2", 1)),
        ("grpc://[::1]:65535", Endpoint("[::1]", 65535)),
        ("grpc://[fe80::1:2]:80", Endpoint("[fe80::1:2]", 80)),
        ("grpc://my-host.example.com:9001", Endpoint("my-host.example.com", 9001)),
    ],
)
def test_grpc_endpoints_parse_and_are_written_back(text: str, endpoint: Endpoint) -> None:
    assert parse_grpc_endpoint(text) == endpoint
    assert endpoint.url == text
    assert endpoint.address == text[len("grpc://") :] == endpoint_address(text)
    assert is_grpc_endpoint(text) and is_actor_endpoint(text)
    assert not endpoint.secure


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("grpcs://localhost:9000", Endpoint("localhost", 9000, secure=True)),
        ("grpcs://[::1]:443", Endpoint("[::1]", 443, secure=True)),
        ("grpcs://my-host.example.com:9001", Endpoint("my-host.example.com", 9001, True)),
    ],
)
def test_grpcs_endpoints_are_secure(text: str, endpoint: Endpoint) -> None:
    assert parse_grpc_endpoint(text) == endpoint
    assert parse_grpc_endpoint(text, scheme_optional=True) == endpoint
    assert endpoint.url == text
    assert endpoint.address == text[len("grpcs://") :] == endpoint_address(text)
    assert is_grpc_endpoint(text) and is_actor_endpoint(text)
    assert endpoint._replace(port=1).url == f"grpcs://{endpoint.host}:1"
    # the same address over plaintext is another endpoint
    assert parse_grpc_endpoint(text.replace("grpcs://", "grpc://")) != endpoint


def test_an_orchestrator_endpoint_says_whether_it_is_tls() -> None:
    assert parse_orchestrator_endpoint(" grpcs://127.0.0.1:9000 ").secure
    assert not parse_orchestrator_endpoint("grpc://127.0.0.1:9000").secure
    assert not parse_orchestrator_endpoint("127.0.0.1:9000").secure
    assert orchestrator_address("grpcs://127.0.0.1:9000") == "127.0.0.1:9000"
    with pytest.raises(ConfigurationError) as raised:
        parse_orchestrator_endpoint("https://127.0.0.1:9000")
    assert str(raised.value) == (
        "invalid orchestrator endpoint 'https://127.0.0.1:9000' "
        "(expected 'host:port', 'grpc://host:port' or 'grpcs://host:port')"
    )


@pytest.mark.parametrize(
    "text",
    [
        "localhost:9000",  # a scheme is required in cogment.yaml and trial parameters
        "http://localhost:9000",
        "grpcss://localhost:9000",
        "grpcs://localhost",
        "grpcs://localhost:0",
        "GRPCS://localhost:9000",
        "grpc://localhost",
        "grpc://localhost:0",
        "grpc://localhost:65536",
        "grpc://localhost:123456",
        "grpc://:9000",
        "grpc://::1:9000",  # IPv6 needs its brackets
        "grpc://local host:9000",
        "grpc://a/b:9000",
        "grpc://localhost:9000 ",
        HUMAN_ENDPOINT,
        "",
    ],
)
def test_what_is_not_a_grpc_endpoint(text: str) -> None:
    assert parse_grpc_endpoint(text) is None
    assert not is_grpc_endpoint(text)


def test_host_port_is_an_endpoint_only_where_the_scheme_is_optional() -> None:
    assert parse_grpc_endpoint("127.0.0.1:9000", scheme_optional=True) == Endpoint(
        "127.0.0.1", 9000
    )
    assert parse_grpc_endpoint("127.0.0.1:0", scheme_optional=True) is None


def test_human_is_an_actor_endpoint_only() -> None:
    assert is_actor_endpoint(HUMAN_ENDPOINT)
    assert not is_grpc_endpoint(HUMAN_ENDPOINT)
    assert not is_actor_endpoint("robot")
    assert endpoint_address(HUMAN_ENDPOINT) == HUMAN_ENDPOINT


def test_local_hosts() -> None:
    for host in ("localhost", "127.0.0.1", "0.0.0.0", "[::1]", "[::]"):
        assert Endpoint(host, 9000).is_local, host
    assert not Endpoint("127.0.0.2", 9000).is_local
    assert not Endpoint("example.com", 9000).is_local


def test_local_addresses_are_found_as_written() -> None:
    text = (
        "--orchestrator localhost:9000,grpc://[::1]:9001 --other example.com:9002 127.0.0.1:900000"
        " grpcs://127.0.0.1:9003"
    )
    assert list(local_addresses(text)) == [
        ("localhost:9000", 9000),
        ("grpc://[::1]:9001", 9001),
        ("grpcs://127.0.0.1:9003", 9003),
    ]


@pytest.mark.parametrize(
    ("text", "replicas"),
    [
        ("grpc://a:1", [Endpoint("a", 1)]),
        ("grpc://10.0.0.1:9001,10.0.0.2:9001", [Endpoint("10.0.0.1", 9001), Endpoint("10.0.0.2", 9001)]),
        ("grpcs://a:1, grpcs://b:2", [Endpoint("a", 1, True), Endpoint("b", 2, True)]),
        ("grpc://[::1]:1,[::2]:1", [Endpoint("[::1]", 1), Endpoint("[::2]", 1)]),
    ],
)  # fmt: skip
def test_a_service_endpoint_may_list_replicas(text: str, replicas: list[Endpoint]) -> None:
    assert parse_service_endpoint(text) == replicas
    assert is_actor_endpoint(text)
    assert (len(replicas) == 1) == is_grpc_endpoint(text)  # one replica: an endpoint as before


@pytest.mark.parametrize(
    "text",
    [
        "grpc://a:1,",  # an empty entry
        "a:1,grpc://b:1",  # no scheme first
        "grpc://a:1,grpcs://b:1",  # two schemes
        "grpc://a:1,a:1",  # an entry twice
        "grpc://a:1,b",  # no port
        "human,grpc://a:1",
    ],
)
def test_a_bad_replica_list_is_refused(text: str) -> None:
    assert parse_service_endpoint(text) is None
    assert not is_actor_endpoint(text)
