"""Fixtures of the client unit tests: the test project's settings and a fake orchestrator."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from cogment.client import Connection
from tests.client.fake_orchestrator import FakeOrchestrator, FakeServer


@pytest.fixture(scope="session")
def settings(cog_settings: types.ModuleType) -> types.ModuleType:
    """The test project's cog_settings (tests/conftest.py generates it)."""
    return cog_settings


@pytest.fixture
def fake() -> FakeOrchestrator:
    return FakeOrchestrator()


@pytest.fixture
def server(fake: FakeOrchestrator) -> Iterator[FakeServer]:
    served = FakeServer(fake)
    yield served
    fake.release.set()
    served.stop()


@pytest.fixture
def connect(settings: Any, server: FakeServer) -> Iterator[Callable[..., Connection]]:
    """Opens Connections to the fake (closed at teardown); keywords go to Connection."""
    opened: list[Connection] = []

    def make(**kwargs: Any) -> Connection:
        kwargs.setdefault("timeout", 10.0)
        connection = Connection(settings, server.endpoint, **kwargs)
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        connection.close()
