"""deploy/city/kubernetes: every manifest parses, uses fields the Kubernetes API has, and the
objects fit together (selectors, Services, ports, probes, volumes, limits, security)."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy import dockerfile, schema
from tests.deploy.cluster import (
    CITY_DOCKERFILE,
    CITY_IMAGE,
    KUBERNETES,
    NAMESPACE,
    Cluster,
    Manifest,
    container_port,
    kustomization,
    read_documents,
)

NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
QUANTITY = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<unit>m|Ki|Mi|Gi)?$")
UNITS = {None: 1.0, "m": 0.001, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30}


def quantity(text: Any) -> float:
    match = QUANTITY.match(str(text))
    assert match, f"not a quantity this test reads: {text!r}"
    return float(match["number"]) * UNITS[match["unit"]]


def test_every_file_parses_and_the_kustomization_lists_them_all() -> None:
    listed = kustomization()["resources"]
    on_disk = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)
    for file in on_disk:
        documents = read_documents(KUBERNETES / file)
        assert documents, f"{file}: no document"
        assert all(isinstance(d, dict) for d in documents), file


def test_a_misspelt_field_or_a_missing_one_is_found() -> None:
    # the check below would pass anything if it found nothing here
    document = yaml.safe_load(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: x}
        spec:
          selector: {matchLabels: {a: b}}
          template:
            metadata: {labels: {a: b}}
            spec:
              containers:
                - name: x
                  readinesProbe: {tcpSocket: {port: 1}}
                  ports: [{containerPort: "9000"}]
        """
    )
    assert schema.check(document, "x") == [
        "x.spec.template.spec.containers[0].readinesProbe: no such field in Container",
        "x.spec.template.spec.containers[0].ports[0].containerPort: expected <class 'int'>, "
        "got '9000'",
        "x.spec.template.spec.containers[0].image: missing (required in Container)",
    ]


def test_every_object_has_the_fields_of_its_kind_and_no_other(cluster: Cluster) -> None:
    problems = [p for m in cluster.manifests for p in schema.check(m.doc, m.where)]
    assert problems == []
    kinds = sorted({m.kind for m in cluster.manifests})
    assert kinds == ["Deployment", "Namespace", "PodDisruptionBudget", "Service", "StatefulSet"]


def test_everything_lives_in_one_namespace_with_the_same_labels(cluster: Cluster) -> None:
    namespaces = cluster.objects("Namespace")
    assert [n.name for n in namespaces] == [NAMESPACE]
    seen = set()
    for m in cluster.manifests:
        assert DNS_LABEL.match(m.name), f"{m.where}: not a DNS label"
        assert (m.kind, m.name) not in seen, f"{m.where}: twice"
        seen.add((m.kind, m.name))
        labels = m.doc["metadata"].get("labels") or {}
        assert labels.get(NAME) == "city" and labels.get(PART_OF) == "cogment", m.where
        if m.kind != "Namespace":
            assert m.namespace == NAMESPACE, m.where
            assert labels.get(COMPONENT), f"{m.where}: no {COMPONENT} label"


def test_each_workload_selects_its_own_pods(cluster: Cluster) -> None:
    components = []
    for w in cluster.workloads():
        selector = w.doc["spec"]["selector"]["matchLabels"]
        assert selector == {NAME: "city", COMPONENT: w.doc["metadata"]["labels"][COMPONENT]}
        assert all(w.pod_labels.get(k) == v for k, v in selector.items()), w.where
        assert w.pod_labels.get(PART_OF) == "cogment", w.where
        components.append(selector[COMPONENT])
    assert sorted(components) == [
        "datalog",
        "environment",
        "hooks",
        "orchestrator",
        "pedestrian",
        "web",
    ]
    for pdb in cluster.objects("PodDisruptionBudget"):
        selected = [
            w
            for w in cluster.workloads()
            if w.doc["spec"]["selector"]["matchLabels"]
            == pdb.doc["spec"]["selector"]["matchLabels"]
        ]
        assert len(selected) == 1, pdb.where


def test_every_service_reaches_a_port_of_one_workload(cluster: Cluster) -> None:
    for service in cluster.objects("Service"):
        workloads = cluster.workloads_selected_by(service)
        assert len(workloads) == 1, f"{service.where} selects {[w.where for w in workloads]}"
        (container,) = workloads[0].containers
        declared = {p["containerPort"] for p in container["ports"]}
        for port in service.doc["spec"]["ports"]:
            target = container_port(container, port.get("targetPort", port["port"]))
            assert target in declared, f"{service.where}: port {port} reaches no containerPort"
        # gRPC services are headless: their name resolves to every ready replica, which the
        # orchestrators (and clients) pin trials to; the web page is behind a virtual IP
        headless = service.doc["spec"].get("clusterIP") == "None"
        assert headless == (service.name != "city-web"), service.where


def test_statefulsets_name_the_headless_service_that_gives_their_pods_dns_names(
    cluster: Cluster,
) -> None:
    for sts in cluster.objects("StatefulSet"):
        service = cluster.get("Service", sts.doc["spec"]["serviceName"])
        assert service.doc["spec"]["clusterIP"] == "None", service.where
        assert cluster.workloads_selected_by(service) == [sts]


def test_every_container_is_bounded_probed_and_unprivileged(cluster: Cluster) -> None:
    base = dockerfile.read(CITY_DOCKERFILE)
    image_user = [i.text for i in base if i.keyword == "USER"][-1]
    uid, _, gid = image_user.partition(":")
    for w in cluster.workloads():
        pod = w.pod_spec
        assert pod.get("automountServiceAccountToken") is False, w.where
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, w.where
        assert (security["runAsUser"], security["runAsGroup"]) == (int(uid), int(gid)), w.where
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, w.where
        claims = [t["metadata"]["name"] for t in w.doc["spec"].get("volumeClaimTemplates", [])]
        volumes = [v["name"] for v in pod.get("volumes", [])] + claims
        for container in w.containers:
            where = f"{w.where} container {container['name']}"
            assert container["image"] == CITY_IMAGE, where
            assert container["imagePullPolicy"] == "IfNotPresent", where
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                limit = quantity(resources["limits"][resource])
                assert 0 < request <= limit, f"{where}: {resource} {request} > {limit}"
            probe = container["readinessProbe"]
            handler = probe.get("tcpSocket") or probe.get("httpGet")
            assert handler, f"{where}: a readiness probe on the port it serves"
            assert container_port(container, handler["port"]) in {
                p["containerPort"] for p in container["ports"]
            }, where
            hardening = container["securityContext"]
            assert hardening["allowPrivilegeEscalation"] is False, where
            assert hardening["readOnlyRootFilesystem"] is True, where
            assert hardening["capabilities"] == {"drop": ["ALL"]}, where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert set(mounts.values()) <= set(volumes), where
            # a read-only image: Python's temporary files (the project's generated settings)
            assert "/tmp" in mounts, f"{where}: no writable /tmp"


def test_the_datalog_is_one_replica_with_a_persistent_volume(cluster: Cluster) -> None:
    datalog = cluster.get("StatefulSet", "city-datalog")
    assert datalog.doc["spec"]["replicas"] == 1  # one SQLite writer
    (claim,) = datalog.doc["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 2**30
    assert (
        datalog.pod_spec["securityContext"]["fsGroup"]
        == datalog.pod_spec["securityContext"]["runAsGroup"]
    )


def _identity(m: Manifest) -> tuple[str, str, Any]:
    return (m.kind, m.name, m.namespace)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_every_object(cluster: Cluster) -> None:
    done = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d is not None]
    assert sorted(
        (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in rendered
    ) == sorted(map(_identity, cluster.manifests))
    images = {
        c["image"]
        for d in rendered
        if d["kind"] in ("Deployment", "StatefulSet")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {CITY_IMAGE}
