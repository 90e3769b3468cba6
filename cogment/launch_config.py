"""The launch file of `cogment launch`, parsed and checked (format: see cogment/launch.py)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from typing import Any, Optional

import yaml

from cogment.cogment_yaml import ProjectSpec, load_spec
from cogment.endpoint import (
    GRPCS_SCHEME,
    REPLICA_SEPARATOR,
    local_addresses,
    parse_grpc_endpoint,
    parse_service_endpoint,
)
from cogment.errors import CogmentError, ConfigurationError
from cogment.generate import proto_module_name
from cogment.tls import read_certificates, server_credentials

DEFAULT_STARTUP_TIMEOUT = 20.0
MISSING_KEY = "missing key {name!r}"
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_RESERVED_NAMES = ("orchestrator", "launch")


class LaunchError(CogmentError):
    """The launch file is wrong, or the run it describes failed; the message says why."""


@dataclasses.dataclass(frozen=True)
class TlsSpec:
    """The `tls` section: absolute paths of PEM files (checked when the file is read)."""

    cert: str
    key: str
    ca: Optional[str] = None

    def placeholders(self) -> dict[str, str]:
        """`{tls_cert}`, `{tls_key}` and (when given) `{tls_ca}` in commands."""
        values = {"tls_cert": self.cert, "tls_key": self.key}
        if self.ca is not None:
            values["tls_ca"] = self.ca
        return values


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    """One entry of `services`; `tls`: its port serves TLS (launch checks it over TLS)."""

    name: str
    command: str
    port: Optional[int] = None
    tls: bool = False


@dataclasses.dataclass(frozen=True)
class ClientSpec:
    """The `client` entry."""

    command: str
    name: str = "client"
    interactive: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class WebSpec:
    """The `web` entry: the page `cogment launch --web` serves (with `cogment web`)."""

    port: int
    static: Optional[str] = None  # absolute


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """A launch file; paths are absolute."""

    path: str
    folder: str
    project: str
    python_dir: Optional[str]
    orchestrator_port: Optional[int]
    services: tuple[ServiceSpec, ...]
    client: ClientSpec
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    web: Optional[WebSpec] = None
    tls: Optional[TlsSpec] = None
    orchestrator_tls: bool = False

    def tls_ports(self) -> set[int]:
        """The ports of the file that serve TLS."""
        ports = {s.port for s in self.services if s.port is not None and s.tls}
        if self.orchestrator_port is not None and self.orchestrator_tls:
            ports.add(self.orchestrator_port)
        return ports


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, what: str) -> LaunchError:
        return LaunchError(f"{self.path}: {key}: {what}")

    def map(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a map, not {type(value).__name__}")
        for name in value:
            if name not in allowed:
                raise self.fail(
                    key, f"unknown key {name!r} (allowed: {', '.join(allowed)})"
                ) from None
        return value

    def text(self, data: dict[str, Any], name: str, key: str, *, required: bool) -> Optional[str]:
        value = data.get(name)
        if value is None:
            if required:
                raise self.fail(key, MISSING_KEY.format(name=name))
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key}.{name}", "must be a non-empty string")
        return value

    def port(self, data: dict[str, Any], key: str, *, required: bool) -> Optional[int]:
        value = data.get("port")
        if value is None:
            if required:
                raise self.fail(key, MISSING_KEY.format(name="port"))
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise self.fail(f"{key}.port", f"must be a port number (1-65535), not {value!r}")
        return value

    def flag(self, data: dict[str, Any], name: str, key: str, default: bool) -> bool:
        value = data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(f"{key}.{name}", f"must be true or false, not {value!r}")
        return value


def load_launch_config(path: str) -> LaunchConfig:
    """Reads and checks a launch file.

    Raises:
        LaunchError: one line naming the file, the key and what is wrong.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as error:
        raise LaunchError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise LaunchError(f"{path}: not valid YAML{where}") from None
    r = _Reader(path)
    top = r.map(
        data if data is not None else {},
        "top level",
        (
            "project",
            "generate",
            "tls",
            "orchestrator",
            "startup_timeout",
            "services",
            "client",
            "web",
        ),
    )
    folder = os.path.dirname(os.path.abspath(path))
    tls = _tls(r, top.get("tls"), folder)
    project = os.path.join(
        folder, r.text(top, "project", "top level", required=False) or "cogment.yaml"
    )
    python_dir = None
    if top.get("generate") is not None:
        generate = r.map(top["generate"], "generate", ("python_dir",))
        python_dir = os.path.normpath(
            os.path.join(folder, r.text(generate, "python_dir", "generate", required=False) or ".")
        )
    orchestrator_port = None
    orchestrator_tls = False
    if top.get("orchestrator") is not None:
        orchestrator = r.map(top["orchestrator"], "orchestrator", ("port", "tls"))
        orchestrator_port = r.port(orchestrator, "orchestrator", required=True)
        orchestrator_tls = r.flag(orchestrator, "tls", "orchestrator", tls is not None)
        if orchestrator_tls and tls is None:
            raise r.fail("orchestrator.tls", "needs the `tls` section (its cert and key)")
    startup_timeout = top.get("startup_timeout", DEFAULT_STARTUP_TIMEOUT)
    if isinstance(startup_timeout, bool) or not isinstance(startup_timeout, (int, float)):
        raise r.fail("startup_timeout", f"must be a number of seconds, not {startup_timeout!r}")
    services = _services(r, top.get("services") or [], tls is not None)
    if "client" not in top:
        raise r.fail("top level", MISSING_KEY.format(name="client"))
    client_map = r.map(top["client"], "client", ("name", "command", "interactive"))
    client = ClientSpec(
        command=r.text(client_map, "command", "client", required=True) or "",
        name=r.text(client_map, "name", "client", required=False) or "client",
        interactive=r.text(client_map, "interactive", "client", required=False),
    )
    if not _NAME_RE.match(client.name):
        raise r.fail("client.name", f"{client.name!r} is not a valid name")
    web = None
    if top.get("web") is not None:
        web_map = r.map(top["web"], "web", ("port", "static"))
        static = r.text(web_map, "static", "web", required=False)
        if static is not None:
            static = os.path.normpath(os.path.join(folder, static))
            if not os.path.isfile(os.path.join(static, "index.html")):
                raise r.fail("web.static", f"no index.html in {static}")
        web = WebSpec(port=r.port(web_map, "web", required=True) or 0, static=static)
    ports = [s.port for s in services if s.port is not None]
    if orchestrator_port is not None:
        ports.append(orchestrator_port)
    if web is not None:
        ports.append(web.port)
    for port in ports:
        if ports.count(port) > 1:
            raise r.fail("services", f"port {port} is used twice")
    return LaunchConfig(
        path=path,
        folder=folder,
        project=project,
        python_dir=python_dir,
        orchestrator_port=orchestrator_port,
        services=services,
        client=client,
        startup_timeout=float(startup_timeout),
        web=web,
        tls=tls,
        orchestrator_tls=orchestrator_tls,
    )


def _tls(r: _Reader, value: Any, folder: str) -> Optional[TlsSpec]:
    if value is None:
        return None
    data = r.map(value, "tls", ("cert", "key", "ca"))
    paths = {}
    for name in ("cert", "key", "ca"):
        text = r.text(data, name, "tls", required=name != "ca")
        if text is not None:
            paths[name] = os.path.join(folder, os.path.expanduser(text))
    try:  # unusable files are found now, before anything starts
        server_credentials(paths["cert"], paths["key"])
        if "ca" in paths:
            read_certificates(paths["ca"], "CA file")
    except ConfigurationError as error:
        raise r.fail("tls", str(error)) from None
    return TlsSpec(paths["cert"], paths["key"], paths.get("ca"))


def _services(r: _Reader, value: Any, tls: bool) -> tuple[ServiceSpec, ...]:
    if not isinstance(value, list):
        raise r.fail("services", f"must be a list, not {type(value).__name__}")
    services: list[ServiceSpec] = []
    for i, entry in enumerate(value):
        key = f"services[{i}]"
        data = r.map(entry, key, ("name", "command", "port", "tls"))
        name = r.text(data, "name", key, required=True) or ""
        if not _NAME_RE.match(name) or name in _RESERVED_NAMES:
            raise r.fail(f"{key}.name", f"{name!r} is not a valid service name")
        if any(s.name == name for s in services):
            raise r.fail(f"{key}.name", f"two services are named {name!r}")
        command = r.text(data, "command", key, required=True) or ""
        port = r.port(data, key, required=False)
        services.append(ServiceSpec(name, command, port, r.flag(data, "tls", key, tls)))
    return tuple(services)


def is_stale(project: str, python_dir: str) -> bool:
    """True when python_dir's cog_settings.py (or a compiled proto) is missing, or older than
    cogment.yaml, one of its .proto files or one of its python modules."""
    settings = os.path.join(python_dir, "cog_settings.py")
    if not os.path.exists(settings):
        return True
    spec = load_spec(project)
    generated_at = os.path.getmtime(settings)
    sources = [project] + [os.path.join(spec.project_dir, p) for p in spec.proto_files]
    for module in spec.python_modules:
        base = os.path.join(spec.project_dir, *module.split("."))
        sources += [base + ".py", os.path.join(base, "__init__.py")]
    for proto in spec.proto_files:
        compiled = os.path.join(python_dir, *proto_module_name(proto).split(".")) + ".py"
        if not os.path.exists(compiled):
            return True
    return any(os.path.exists(s) and os.path.getmtime(s) > generated_at for s in sources)


def rewrite_endpoint(endpoint: str, port_map: dict[int, int]) -> str:
    """`grpc://localhost:9002` -> `grpc://localhost:<port_map[9002]>` for local hosts (each
    entry of a list of replicas alike)."""
    replicas = parse_service_endpoint(endpoint)
    if replicas is not None and len(replicas) > 1:
        return REPLICA_SEPARATOR.join(rewrite_endpoint(r.url, port_map) for r in replicas)
    parsed = parse_grpc_endpoint(endpoint)
    if parsed is None or not parsed.is_local or parsed.port not in port_map:
        return endpoint
    return parsed._replace(port=port_map[parsed.port]).url


def _local_port(endpoint: str) -> Optional[int]:
    parsed = parse_grpc_endpoint(endpoint)
    return parsed.port if parsed is not None and parsed.is_local else None


def project_endpoints(spec: ProjectSpec) -> dict[str, list[str]]:
    """Every gRPC endpoint on this machine that cogment.yaml names -> who it is for
    (`the environment`, `actor 1 (pedestrian)`, `pre-hook 0`, `the datalog`), in file order."""
    named: list[tuple[str, str]] = [("the environment", spec.trial_params.environment_endpoint)]
    for i, actor in enumerate(spec.trial_params.actors):
        named.append((f"actor {i} ({actor.actor_class})", actor.endpoint))
    named += [(f"pre-hook {i}", hook) for i, hook in enumerate(spec.pre_hooks)]
    if spec.datalog_url:
        named.append(("the datalog", spec.datalog_url))
    endpoints: dict[str, list[str]] = {}
    for who, endpoint in named:
        if _local_port(endpoint) is not None:
            endpoints.setdefault(endpoint, []).append(who)
    return endpoints


def endpoint_warnings(config: LaunchConfig, client_argv: Sequence[str]) -> list[str]:
    """What the project's cogment.yaml and the client command connect to on this machine
    that no port of the launch file serves: one line each (empty when the project is
    missing or unreadable, or when the launch file serves no port).

    An endpoint may be served by something launch does not start: these are warnings.
    """
    served = {s.port: s.name for s in config.services if s.port is not None}
    if config.orchestrator_port is not None:
        served[config.orchestrator_port] = "orchestrator"
    if not served or not os.path.isfile(config.project):
        return []
    try:
        spec = load_spec(config.project)
    except ConfigurationError:  # reported by whatever needs the project (generate, orchestrator)
        return []
    named = project_endpoints(spec)
    client_addresses: dict[str, int] = {}  # as written -> port
    for arg in client_argv:
        client_addresses.update(local_addresses(arg))
    named_ports = {_local_port(e) for e in named}
    named_ports |= set(client_addresses.values())
    unnamed = [f"{name} {port}" for port, name in served.items() if port not in named_ports]
    hint = f" (ports nothing names: {', '.join(unnamed)})" if unnamed else ""
    launch_file = os.path.basename(config.path)
    project = os.path.relpath(config.project, config.folder)
    tls_ports = config.tls_ports()
    warnings = []
    for endpoint, users in named.items():
        port = _local_port(endpoint)
        if port not in served:
            warnings.append(
                f"{project}: the endpoint of {', '.join(users)} is {endpoint}, but no service "
                f"of {launch_file} has port {port}{hint}"
            )
        elif endpoint.startswith(GRPCS_SCHEME) != (port in tls_ports):
            warnings.append(
                f"{project}: the endpoint of {', '.join(users)} is {endpoint}, but "
                f"{_serves(served[port], port, tls_ports)}"
            )
    for address, port in client_addresses.items():
        if port not in served:
            warnings.append(
                f"the client command connects to {address}, but no service of {launch_file} "
                f"has port {port}{hint}"
            )
        elif address.startswith(GRPCS_SCHEME) != (port in tls_ports):
            warnings.append(
                f"the client command connects to {address}, but "
                f"{_serves(served[port], port, tls_ports)}"
            )
    return warnings


def _serves(name: str, port: int, tls_ports: set[int]) -> str:
    """How a port of the launch file is served, and how an endpoint calls it."""
    if port in tls_ports:
        return f"{name} serves TLS on port {port} (call it at grpcs://)"
    return f"{name} serves plaintext on port {port} (call it at grpc://, or set its tls)"
