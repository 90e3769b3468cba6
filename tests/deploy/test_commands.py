"""What each container runs, checked against the package's real command line: every
`cogment ...` through `cogment.cli`'s parsers, every `python SCRIPT ...` run in the staged
city image up to the server it opens; then the port each one listens on against its
container's ports, its Services, its probes and the endpoints of the cluster's
cogment.yaml. And the commands deploy/README.md tells to type."""

from __future__ import annotations

import argparse
import dataclasses
import posixpath
import re
import shlex
from typing import Any, Optional

import pytest

from cogment.cogment_yaml import load_spec
from cogment.endpoint import parse_grpc_endpoint, parse_orchestrator_endpoint
from tests.deploy.cluster import (
    BASE_IMAGE,
    CITY_IMAGE,
    DEPLOY_README,
    DNS_SUFFIX,
    KUBERNETES,
    NAMESPACE,
    REPO,
    Cluster,
    Manifest,
    container_argv,
    container_port,
    service_host,
)
from tests.deploy.commands import NO_ADVERTISE, has_advertise, parse_cogment, without_advertise
from tests.deploy.conftest import run_scripts
from tests.deploy.dockerfile import StagedImage

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclasses.dataclass
class Listener:
    """A container of a workload, what it runs, and where it listens."""

    workload: Manifest
    container: dict[str, Any]
    argv: list[str]
    port: int
    host: str
    args: Optional[argparse.Namespace] = None  # a `cogment` command's parsed arguments


def _workdir(container: dict[str, Any], image: StagedImage) -> str:
    return str(container.get("workingDir") or image.workdir)


@pytest.fixture(scope="module")
def listeners(cluster: Cluster, city_image: StagedImage) -> dict[str, Listener]:
    """Every workload's container, by workload name, with the port it really listens on."""
    found: dict[str, Listener] = {}
    scripts: list[tuple[str, Manifest, dict[str, Any], list[str]]] = []
    for w in cluster.workloads():
        (container,) = w.containers
        argv = container_argv(container, w.pod_name, NAMESPACE)
        if argv[0] == "cogment":
            args = parse_cogment(without_advertise(argv))
            found[w.name] = Listener(w, container, argv, args.port, args.host, args)
        else:
            assert argv[0] == "python", f"{w.where}: runs {argv}"
            scripts.append((_workdir(container, city_image), w, container, argv))
    workdirs = {workdir for workdir, *_ in scripts}
    assert workdirs == {"/app"}, workdirs
    records = run_scripts(city_image.path("/app"), [argv[1:] for *_, argv in scripts])
    for (_, w, container, argv), record in zip(scripts, records):
        assert "server" in record, f"{w.where}: {shlex.join(argv)}: {record}"
        server = record["server"]
        found[w.name] = Listener(w, container, argv, server["port"], server["host"])
    return found


def test_every_command_is_accepted_and_listens_beyond_its_pod(
    listeners: dict[str, Listener],
) -> None:
    assert sorted(listeners) == [
        "city-datalog",
        "city-environment",
        "city-hooks",
        "city-orchestrator",
        "city-pedestrian",
        "city-web",
    ]
    expected = {
        "city-orchestrator": ["cogment", "orchestrator"],
        "city-datalog": ["cogment", "datalog", "serve"],
        "city-web": ["cogment", "web"],
        "city-environment": ["python", "environment.py"],
        "city-pedestrian": ["python", "pedestrian.py"],
        "city-hooks": ["python", "hooks.py"],
    }
    for name, listener in listeners.items():
        assert listener.argv[: len(expected[name])] == expected[name], listener.argv
        # other pods reach it: it listens on every interface, not on its loopback
        assert listener.host not in LOOPBACK, f"{name} listens on {listener.host}"
        assert 0 < listener.port < 65536


def test_each_listening_port_is_declared_probed_and_reached_by_its_services(
    cluster: Cluster, listeners: dict[str, Listener]
) -> None:
    for name, listener in listeners.items():
        container = listener.container
        assert [p["containerPort"] for p in container["ports"]] == [listener.port], name
        probe = container["readinessProbe"]
        handler = probe.get("tcpSocket") or probe.get("httpGet")
        assert container_port(container, handler["port"]) == listener.port, name
        services = cluster.services_selecting(listener.workload)
        assert len(services) == 1, f"{name}: {[s.where for s in services]}"
        for port in services[0].doc["spec"]["ports"]:
            assert container_port(container, port["targetPort"]) == listener.port, name
            assert port["port"] == listener.port, f"{name}: the Service renumbers its port"


def _endpoint_service(cluster: Cluster, endpoint: str, scheme_optional: bool = False) -> Manifest:
    parsed = parse_grpc_endpoint(endpoint, scheme_optional=scheme_optional)
    assert parsed is not None and not parsed.secure, endpoint
    name, _, domain = parsed.host.partition(".")
    assert domain == f"{NAMESPACE}.{DNS_SUFFIX}", f"{endpoint}: not a Service of {NAMESPACE}"
    service = cluster.get("Service", name)
    assert service_host(service) == parsed.host
    assert parsed.port in [p["port"] for p in service.doc["spec"]["ports"]], endpoint
    return service


def _runs(cluster: Cluster, listeners: dict[str, Listener], service: Manifest) -> list[str]:
    (workload,) = cluster.workloads_selected_by(service)
    return listeners[workload.name].argv


def test_the_project_endpoints_are_the_services_of_their_scripts(
    cluster: Cluster, listeners: dict[str, Listener], city_image: StagedImage
) -> None:
    # the cogment.yaml the orchestrators load: the one in the image
    (orchestrator,) = [x for x in listeners.values() if x.argv[1] == "orchestrator"]
    assert orchestrator.args is not None
    spec = load_spec(str(city_image.path(orchestrator.args.file)))
    params = spec.trial_params
    environment = _endpoint_service(cluster, params.environment_endpoint)
    assert _runs(cluster, listeners, environment)[1] == "environment.py"
    agents = [a for a in params.actors if a.endpoint != "human"]
    assert {a.actor_class for a in agents} == {"pedestrian"}
    for agent in agents:
        service = _endpoint_service(cluster, agent.endpoint)
        assert _runs(cluster, listeners, service)[1] == "pedestrian.py"
    assert [a.actor_class for a in params.actors if a.endpoint == "human"] == ["driver"]
    (hooks,) = spec.pre_hooks
    assert _runs(cluster, listeners, _endpoint_service(cluster, hooks))[1] == "hooks.py"
    assert spec.datalog_type == "grpc" and spec.datalog_url
    datalog = _endpoint_service(cluster, spec.datalog_url)
    assert _runs(cluster, listeners, datalog)[1:3] == ["datalog", "serve"]


def test_the_web_front_end_serves_the_city_page_in_front_of_the_orchestrators(
    cluster: Cluster, listeners: dict[str, Listener], city_image: StagedImage
) -> None:
    web = listeners["city-web"]
    assert web.args is not None
    assert city_image.path(web.args.file).is_file()
    assert (city_image.path(web.args.static) / "index.html").is_file()
    parse_orchestrator_endpoint(web.args.orchestrator)
    service = _endpoint_service(cluster, web.args.orchestrator, scheme_optional=True)
    assert service.name == "city-orchestrator"


def test_the_orchestrators_load_the_image_project(
    listeners: dict[str, Listener], city_image: StagedImage
) -> None:
    orchestrator = listeners["city-orchestrator"]
    assert orchestrator.args is not None
    assert city_image.path(orchestrator.args.file).is_file()
    assert orchestrator.workload.kind == "StatefulSet"


def test_the_datalog_store_is_on_the_persistent_volume(listeners: dict[str, Listener]) -> None:
    datalog = listeners["city-datalog"]
    assert datalog.args is not None
    mounts = {m["mountPath"]: m["name"] for m in datalog.container["volumeMounts"]}
    claims = [t["metadata"]["name"] for t in datalog.workload.doc["spec"]["volumeClaimTemplates"]]
    assert mounts[posixpath.dirname(datalog.args.db)] in claims


@pytest.mark.skipif(not has_advertise(), reason=NO_ADVERTISE)
def test_each_orchestrator_advertises_its_own_pod_dns_name(
    cluster: Cluster, listeners: dict[str, Listener]
) -> None:
    orchestrator = listeners["city-orchestrator"]
    assert orchestrator.args is not None
    sts = orchestrator.workload
    service = cluster.get("Service", sts.doc["spec"]["serviceName"])
    # $(POD_NAME) and $(POD_NAMESPACE) as the kubelet fills them in for the first pod
    expected = f"{sts.pod_name}.{service_host(service)}:{orchestrator.port}"
    assert orchestrator.args.advertise == expected
    assert parse_grpc_endpoint(orchestrator.args.advertise, scheme_optional=True) is not None
    assert [p["port"] for p in service.doc["spec"]["ports"]] == [orchestrator.port]


# -- deploy/README.md ------------------------------------------------------------------------

# kubectl options that take a value, as the README writes them
_KUBECTL_VALUES = ("-n", "--namespace", "-l", "--selector", "-k", "-o", "--output")
_KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet", "service": "Service"}


@dataclasses.dataclass
class Kubectl:
    words: list[str]
    operands: list[str]  # the verb, then its operands
    options: dict[str, str]  # the options of _KUBECTL_VALUES, by name
    command: list[str]  # what follows `--` (exec)


def readme_commands(text: Optional[str] = None) -> list[list[str]]:
    """Every command line of the sh blocks of deploy/README.md (or `text`), continuations
    joined and comments dropped, split into words."""
    text = DEPLOY_README.read_text() if text is None else text
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if ">" in words:  # a redirection is the shell's, not the command's
                words = words[: words.index(">")]
            if words:
                commands.append(words)
    return commands


def kubectl_commands() -> list[Kubectl]:
    found = []
    for words in readme_commands():
        if words[0] != "kubectl":
            continue
        rest, command = words[1:], []
        if "--" in rest:
            i = rest.index("--")
            rest, command = rest[:i], rest[i + 1 :]
        operands, options = [], {}
        i = 0
        while i < len(rest):
            if rest[i] in _KUBECTL_VALUES:
                options[rest[i]] = rest[i + 1]
                i += 2
            else:
                if not rest[i].startswith("-"):
                    operands.append(rest[i])
                i += 1
        found.append(Kubectl(words, operands, options, command))
    return found


def _target(cluster: Cluster, name: str) -> Manifest:
    """kind/name, or a StatefulSet's pod by its stable name (city-datalog-0)."""
    kind, _, name = name.rpartition("/")
    if kind:
        return cluster.get(_KINDS[kind], name)
    sts, _, ordinal = name.rpartition("-")
    assert ordinal.isdigit(), f"{name}: neither kind/name nor a StatefulSet's pod"
    return cluster.get("StatefulSet", sts)


def test_the_readme_kubectl_commands_name_real_objects(cluster: Cluster) -> None:
    commands = kubectl_commands()
    verbs = sorted({c.operands[0] for c in commands})
    assert verbs == ["apply", "exec", "get", "logs", "port-forward", "rollout", "scale"]
    scaled = set()
    for c in commands:
        verb, operands = c.operands[0], c.operands[1:]
        if verb == "apply":
            assert (REPO / c.options["-k"]).resolve() == KUBERNETES, c.words
            continue
        assert c.options.get("-n") == NAMESPACE, f"{c.words}: not in the namespace"
        if verb == "scale":
            (target,) = operands
            scaled.add(_target(cluster, target).name)
            assert any(re.fullmatch(r"--replicas=\d+", w) for w in c.words), c.words
        elif verb == "rollout":
            assert operands[0] == "status", c.words
            assert _target(cluster, operands[1]).kind == "StatefulSet"
        elif verb == "logs":
            key, _, value = c.options["-l"].partition("=")
            assert [w for w in cluster.workloads() if w.pod_labels.get(key) == value], c.words
        elif verb == "port-forward":
            service = _target(cluster, operands[0])
            _, _, remote = operands[1].partition(":")
            assert int(remote) in [p["port"] for p in service.doc["spec"]["ports"]], c.words
        elif verb == "exec":
            _target(cluster, operands[0])
            assert c.command, f"{c.words}: runs nothing"
    # every part that may be scaled is, and the datalog is not
    assert scaled == {w.name for w in cluster.workloads()} - {"city-datalog"}


def test_the_readme_commands_run_in_pods_are_accepted(
    cluster: Cluster, city_image: StagedImage, listeners: dict[str, Listener]
) -> None:
    commands = [c for c in kubectl_commands() if c.operands[0] == "exec"]
    scripts = []
    for c in commands:
        workload = _target(cluster, c.operands[1])
        (container,) = workload.containers
        if c.command[0] == "cogment":
            args = parse_cogment(c.command)
            if c.command[1] == "datalog":
                # the store the datalog serves, decoded with the image's project
                assert args.db == listeners["city-datalog"].args.db  # type: ignore[union-attr]
                if getattr(args, "file", None):
                    assert city_image.path(args.file, _workdir(container, city_image)).is_file()
        else:
            assert c.command[0] == "python", c.words
            assert _workdir(container, city_image) == "/app", c.words
            scripts.append(c.command[1:])
    assert scripts, "the README plays a trial with driver.py from a pod"
    orchestrators = cluster.get("Service", "city-orchestrator")
    for argv, record in zip(scripts, run_scripts(city_image.path("/app"), scripts)):
        assert "connection" in record, f"{argv}: {record}"
        address = parse_orchestrator_endpoint(record["connection"]["endpoint"]).address
        assert address == f"{service_host(orchestrators)}:{listeners['city-orchestrator'].port}"
    reads = {c.command[2] for c in commands if c.command[:2] == ["cogment", "datalog"]}
    assert reads == {"ls", "show", "export"}


def test_the_readme_builds_the_images_the_manifests_run(cluster: Cluster) -> None:
    builds = [c for c in readme_commands() if c[:2] == ["docker", "build"]]
    tags = {}
    for words in builds:
        assert words[-1] == ".", f"{words}: the build context is the repository's root"
        tags[words[words.index("-f") + 1]] = words[words.index("-t") + 1]
    assert tags == {
        "deploy/Dockerfile": BASE_IMAGE,
        "deploy/city/Dockerfile": CITY_IMAGE,
    }
    for path in tags:
        assert (REPO / path).is_file(), path
    images = {c["image"] for w in cluster.workloads() for c in w.containers}
    assert images == {CITY_IMAGE}


def test_the_main_readme_section_gives_commands_of_the_deploy_readme() -> None:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## On Kubernetes\n", 1)[1].split("\n## ", 1)[0]
    assert "deploy/README.md" in section
    commands = readme_commands(section)
    assert commands
    for words in commands:
        assert words in readme_commands(), words
