"""Shared fixtures: the generated test project, and GrpcServers on free ports.

* `project_dir` (session): the folder of the test project (tests/project).
* `generated_dir` (session): where `cogment generate` wrote cog_settings.py and data_pb2.py;
  it is on sys.path (as is tests/project, so `delta` and `services` import).
* `cog_settings` (session): the imported `cog_settings` module of the test project.
* `data` (session): the test project's generated `data_pb2` module (its messages).
* `project_services` (session): the module tests/project/services.py (BoardEnv,
  PlayerAgent, WatcherAgent, Hooks, JOURNAL; see its docstring).
* `start_server` (function): `start_server(service_class, settings=None, **kwargs)` starts a
  `cogment.GrpcServer` on 127.0.0.1, port 0 (settings default to the test project's), and
  stops it at teardown. `server.port` is its port, `endpoint(server)` its grpc:// endpoint.
* `grpc_channel` (function): `grpc_channel(server_or_port)` opens an insecure channel to
  127.0.0.1:<port> with message-size limits lifted, closed at teardown.
* `tls_certificate`, `other_certificate` (session): two self-signed certificates for
  127.0.0.1 and localhost (`.cert`, `.key`: PEM files), made with openssl
  (tests/certificates.py); each is its own CA.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional, Union

import grpc
import pytest

import cogment
from cogment.generate import generate
from tests.certificates import Certificate, make_certificate

PROJECT_DIR = Path(__file__).resolve().parent / "project"
LOCALHOST = "127.0.0.1"
UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def endpoint(server: cogment.GrpcServer) -> str:
    """The grpc:// endpoint of a server started by `start_server`."""
    return f"grpc://{LOCALHOST}:{server.port}"


@pytest.fixture(scope="session")
def project_dir() -> Path:
    return PROJECT_DIR


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("cog_settings")
    generate(str(PROJECT_DIR / "cogment.yaml"), str(out))
    sys.path.insert(0, str(out))
    if str(PROJECT_DIR) not in sys.path:
        sys.path.append(str(PROJECT_DIR))
    importlib.invalidate_caches()
    yield out
    sys.path.remove(str(out))


@pytest.fixture(scope="session")
def cog_settings(generated_dir: Path) -> types.ModuleType:
    module = importlib.import_module("cog_settings")
    project_file = Path(getattr(module, "project_file", ""))
    assert project_file == PROJECT_DIR / "cogment.yaml", f"another project's cog_settings: {module}"
    return module


@pytest.fixture(scope="session")
def data(cog_settings: types.ModuleType) -> types.ModuleType:
    return importlib.import_module("data_pb2")


@pytest.fixture(scope="session")
def project_services(cog_settings: types.ModuleType) -> types.ModuleType:
    return importlib.import_module("services")


@pytest.fixture
def start_server(
    cog_settings: types.ModuleType,
) -> Iterator[Callable[..., cogment.GrpcServer]]:
    servers: list[cogment.GrpcServer] = []

    def start(
        service_class: type, settings: Optional[Any] = None, **kwargs: Any
    ) -> cogment.GrpcServer:
        kwargs.setdefault("host", LOCALHOST)
        server = cogment.GrpcServer(service_class, settings or cog_settings, port=0, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def grpc_channel() -> Iterator[Callable[[Union[cogment.GrpcServer, int]], grpc.Channel]]:
    channels: list[grpc.Channel] = []

    def open_channel(target: Union[cogment.GrpcServer, int]) -> grpc.Channel:
        port = target.port if isinstance(target, cogment.GrpcServer) else target
        channel = grpc.insecure_channel(f"{LOCALHOST}:{port}", options=UNLIMITED)
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        channel.close()


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"), "server")


@pytest.fixture(scope="session")
def other_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls-other"), "other")
