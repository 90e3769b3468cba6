"""deploy/: where its files are, and its Kubernetes manifests read into a `Cluster` to query.

* `load_cluster()`: every document of every file kustomization.yaml lists, parsed.
* `Cluster`: `objects(kind)`, `get(kind, name)`, `workloads()` (Deployments and
  StatefulSets), `services_selecting(workload)`, `workloads_selected_by(service)`.
* `container_argv(container, pod_name, namespace)`: what a container runs (`command` then
  `args`), with `$(VAR)` replaced from its `env` as the kubelet does.
* `container_port(container, port)`: a port number, or the name of one of its ports, as a
  number.
* `service_host(service)`: the Service's DNS name in the cluster.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Optional

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BASE_DOCKERFILE = DEPLOY / "Dockerfile"
DEPLOY_README = DEPLOY / "README.md"
CITY = DEPLOY / "city"
CITY_DOCKERFILE = CITY / "Dockerfile"
CLUSTER_YAML = CITY / "cogment.yaml"
KUBERNETES = CITY / "kubernetes"
EXAMPLE = REPO / "examples" / "city"
NAMESPACE = "cogment-city"
BASE_IMAGE = "cogment-py:0.5.0"  # deploy/Dockerfile
CITY_IMAGE = "cogment-city:0.5.0"  # deploy/city/Dockerfile, which every pod runs
DNS_SUFFIX = "svc.cluster.local"  # the cluster's default domain

_VAR_REF = re.compile(r"\$\((\w+)\)")


@dataclasses.dataclass(frozen=True)
class Manifest:
    file: str  # relative to KUBERNETES
    index: int  # the document's place in its file
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    @property
    def namespace(self) -> Optional[str]:
        return self.doc["metadata"].get("namespace")

    @property
    def where(self) -> str:
        return f"{self.file}#{self.index} {self.kind}/{self.name}"

    @property
    def pod_spec(self) -> dict[str, Any]:
        return dict(self.doc["spec"]["template"]["spec"])

    @property
    def pod_labels(self) -> dict[str, str]:
        return dict(self.doc["spec"]["template"]["metadata"].get("labels") or {})

    @property
    def containers(self) -> list[dict[str, Any]]:
        return list(self.pod_spec["containers"])

    @property
    def pod_name(self) -> str:
        """The name of a pod of this workload (a StatefulSet's first one)."""
        return f"{self.name}-0" if self.kind == "StatefulSet" else f"{self.name}-6d9f7c-x2x5q"


def read_documents(path: Path) -> list[Any]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def kustomization() -> dict[str, Any]:
    return dict(yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text()))


class Cluster:
    def __init__(self, manifests: list[Manifest]) -> None:
        self.manifests = manifests

    def objects(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def get(self, kind: str, name: str) -> Manifest:
        found = [m for m in self.objects(kind) if m.name == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} in the manifests"
        return found[0]

    def workloads(self) -> list[Manifest]:
        return self.objects("Deployment") + self.objects("StatefulSet")

    def services_selecting(self, workload: Manifest) -> list[Manifest]:
        labels = workload.pod_labels
        return [
            s
            for s in self.objects("Service")
            if s.namespace == workload.namespace and _selects(s.doc["spec"].get("selector"), labels)
        ]

    def workloads_selected_by(self, service: Manifest) -> list[Manifest]:
        selector = service.doc["spec"].get("selector")
        return [
            w
            for w in self.workloads()
            if w.namespace == service.namespace and _selects(selector, w.pod_labels)
        ]


def _selects(selector: Optional[dict[str, str]], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def load_cluster() -> Cluster:
    manifests = []
    for file in kustomization()["resources"]:
        for index, doc in enumerate(read_documents(KUBERNETES / file)):
            manifests.append(Manifest(file, index, doc))
    return Cluster(manifests)


def container_env(container: dict[str, Any], pod_name: str, namespace: str) -> dict[str, str]:
    """The container's variables as the kubelet sets them (field references resolved)."""
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace}
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = _expand(var["value"], env, f"env {var['name']}")
        else:
            path = var["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in fields, f"env {var['name']}: a field this test does not know: {path}"
            env[var["name"]] = fields[path]
    return env


def container_argv(container: dict[str, Any], pod_name: str, namespace: str) -> list[str]:
    env = container_env(container, pod_name, namespace)
    words = list(container.get("command") or []) + list(container.get("args") or [])
    assert words, f"container {container['name']}: no command (the image's CMD is --help)"
    assert all(isinstance(w, str) for w in words), f"{container['name']}: {words}: not strings"
    return [_expand(w, env, f"container {container['name']}") for w in words]


def _expand(text: str, env: dict[str, str], where: str) -> str:
    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in env, f"{where}: $({name}) is no variable of the container"
        return env[name]

    return _VAR_REF.sub(variable, text)


def container_port(container: dict[str, Any], port: Any) -> int:
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port]
    assert named, f"container {container['name']}: no port named {port!r}"
    return int(named[0])


def service_host(service: Manifest) -> str:
    return f"{service.name}.{service.namespace}.{DNS_SUFFIX}"
