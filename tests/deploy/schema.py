"""The part of the Kubernetes API that deploy/'s manifests use: each object's fields by name
(so that a misspelt field, which kubectl would drop with a warning at best, fails here), the
fields it requires, and the type of a few scalars.

`check(document, where)` returns every problem found, as one line each (empty: none). Types
are written "Name" (an object), "[Name]" (a list of them), None (any value), or a Python
type. Field names follow the API reference of Kubernetes 1.30 (apps/v1, v1, policy/v1).
"""

from __future__ import annotations

from typing import Any, Optional, Union

Type = Union[str, type, tuple[type, ...], None]

KINDS = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "Service"): "Service",
    ("apps/v1", "Deployment"): "Deployment",
    ("apps/v1", "StatefulSet"): "StatefulSet",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
}

TOP: dict[str, Type] = {"apiVersion": str, "kind": str, "metadata": "ObjectMeta"}

FIELDS: dict[str, dict[str, Type]] = {
    "Namespace": {**TOP, "spec": None},
    "Service": {**TOP, "spec": "ServiceSpec"},
    "Deployment": {**TOP, "spec": "DeploymentSpec"},
    "StatefulSet": {**TOP, "spec": "StatefulSetSpec"},
    "PodDisruptionBudget": {**TOP, "spec": "PodDisruptionBudgetSpec"},
    "ObjectMeta": {"name": str, "namespace": str, "labels": dict, "annotations": dict},
    "ServiceSpec": {
        "type": str,
        "clusterIP": str,
        "selector": dict,
        "ports": "[ServicePort]",
        "publishNotReadyAddresses": bool,
        "sessionAffinity": str,
        "externalTrafficPolicy": str,
        "internalTrafficPolicy": str,
        "ipFamilyPolicy": str,
    },
    "ServicePort": {
        "name": str,
        "port": int,
        "targetPort": (int, str),
        "protocol": str,
        "appProtocol": str,
        "nodePort": int,
    },
    "DeploymentSpec": {
        "replicas": int,
        "selector": "LabelSelector",
        "template": "PodTemplateSpec",
        "strategy": dict,
        "minReadySeconds": int,
        "revisionHistoryLimit": int,
        "progressDeadlineSeconds": int,
    },
    "StatefulSetSpec": {
        "replicas": int,
        "selector": "LabelSelector",
        "template": "PodTemplateSpec",
        "serviceName": str,
        "podManagementPolicy": str,
        "updateStrategy": dict,
        "volumeClaimTemplates": "[PersistentVolumeClaim]",
        "persistentVolumeClaimRetentionPolicy": dict,
        "minReadySeconds": int,
        "revisionHistoryLimit": int,
    },
    "PodDisruptionBudgetSpec": {
        "maxUnavailable": (int, str),
        "minAvailable": (int, str),
        "selector": "LabelSelector",
        "unhealthyPodEvictionPolicy": str,
    },
    "LabelSelector": {"matchLabels": dict, "matchExpressions": list},
    "PodTemplateSpec": {"metadata": "ObjectMeta", "spec": "PodSpec"},
    "PodSpec": {
        "containers": "[Container]",
        "initContainers": "[Container]",
        "volumes": "[Volume]",
        "securityContext": "PodSecurityContext",
        "automountServiceAccountToken": bool,
        "serviceAccountName": str,
        "terminationGracePeriodSeconds": int,
        "topologySpreadConstraints": "[TopologySpreadConstraint]",
        "affinity": dict,
        "nodeSelector": dict,
        "tolerations": list,
        "enableServiceLinks": bool,
        "imagePullSecrets": list,
        "priorityClassName": str,
        "restartPolicy": str,
    },
    "Container": {
        "name": str,
        "image": str,
        "imagePullPolicy": str,
        "command": list,
        "args": list,
        "workingDir": str,
        "env": "[EnvVar]",
        "ports": "[ContainerPort]",
        "readinessProbe": "Probe",
        "livenessProbe": "Probe",
        "startupProbe": "Probe",
        "resources": "ResourceRequirements",
        "securityContext": "SecurityContext",
        "volumeMounts": "[VolumeMount]",
        "lifecycle": dict,
    },
    "EnvVar": {"name": str, "value": str, "valueFrom": "EnvVarSource"},
    "EnvVarSource": {
        "fieldRef": "ObjectFieldSelector",
        "configMapKeyRef": dict,
        "secretKeyRef": dict,
        "resourceFieldRef": dict,
    },
    "ObjectFieldSelector": {"fieldPath": str, "apiVersion": str},
    "ContainerPort": {
        "name": str,
        "containerPort": int,
        "protocol": str,
        "hostPort": int,
        "hostIP": str,
    },
    "Probe": {
        "tcpSocket": "TCPSocketAction",
        "httpGet": "HTTPGetAction",
        "grpc": "GRPCAction",
        "exec": dict,
        "initialDelaySeconds": int,
        "periodSeconds": int,
        "timeoutSeconds": int,
        "successThreshold": int,
        "failureThreshold": int,
        "terminationGracePeriodSeconds": int,
    },
    "TCPSocketAction": {"port": (int, str), "host": str},
    "HTTPGetAction": {
        "path": str,
        "port": (int, str),
        "host": str,
        "scheme": str,
        "httpHeaders": list,
    },
    "GRPCAction": {"port": int, "service": str},
    "ResourceRequirements": {"requests": "Resources", "limits": "Resources"},
    "Resources": {"cpu": str, "memory": str, "ephemeral-storage": str, "storage": str},
    "SecurityContext": {
        "allowPrivilegeEscalation": bool,
        "readOnlyRootFilesystem": bool,
        "capabilities": "Capabilities",
        "runAsNonRoot": bool,
        "runAsUser": int,
        "runAsGroup": int,
        "privileged": bool,
        "seccompProfile": "SeccompProfile",
    },
    "Capabilities": {"add": list, "drop": list},
    "PodSecurityContext": {
        "runAsNonRoot": bool,
        "runAsUser": int,
        "runAsGroup": int,
        "fsGroup": int,
        "fsGroupChangePolicy": str,
        "supplementalGroups": list,
        "seccompProfile": "SeccompProfile",
    },
    "SeccompProfile": {"type": str, "localhostProfile": str},
    "VolumeMount": {
        "name": str,
        "mountPath": str,
        "readOnly": bool,
        "subPath": str,
        "subPathExpr": str,
    },
    "Volume": {
        "name": str,
        "emptyDir": "EmptyDirVolumeSource",
        "configMap": dict,
        "secret": dict,
        "persistentVolumeClaim": dict,
        "projected": dict,
    },
    "EmptyDirVolumeSource": {"medium": str, "sizeLimit": str},
    "TopologySpreadConstraint": {
        "maxSkew": int,
        "topologyKey": str,
        "whenUnsatisfiable": str,
        "labelSelector": "LabelSelector",
        "minDomains": int,
        "matchLabelKeys": list,
        "nodeAffinityPolicy": str,
        "nodeTaintsPolicy": str,
    },
    "PersistentVolumeClaim": {
        "apiVersion": str,
        "kind": str,
        "metadata": "ObjectMeta",
        "spec": "PersistentVolumeClaimSpec",
    },
    "PersistentVolumeClaimSpec": {
        "accessModes": list,
        "resources": "ResourceRequirements",
        "storageClassName": str,
        "volumeMode": str,
        "selector": "LabelSelector",
    },
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "Namespace": ("metadata",),
    "Service": ("metadata", "spec"),
    "Deployment": ("metadata", "spec"),
    "StatefulSet": ("metadata", "spec"),
    "PodDisruptionBudget": ("metadata", "spec"),
    "ServiceSpec": ("ports",),
    "ServicePort": ("port",),
    "DeploymentSpec": ("selector", "template"),
    "StatefulSetSpec": ("selector", "template", "serviceName"),
    "PodDisruptionBudgetSpec": ("selector",),
    "PodTemplateSpec": ("metadata", "spec"),
    "PodSpec": ("containers",),
    "Container": ("name", "image"),
    "EnvVar": ("name",),
    "ObjectFieldSelector": ("fieldPath",),
    "ContainerPort": ("containerPort",),
    "TCPSocketAction": ("port",),
    "HTTPGetAction": ("port",),
    "GRPCAction": ("port",),
    "VolumeMount": ("name", "mountPath"),
    "Volume": ("name",),
    "TopologySpreadConstraint": ("maxSkew", "topologyKey", "whenUnsatisfiable"),
    "PersistentVolumeClaim": ("metadata", "spec"),
    "PersistentVolumeClaimSpec": ("accessModes", "resources"),
}

# exactly one of these fields
ONE_OF: dict[str, tuple[str, ...]] = {
    "Probe": ("tcpSocket", "httpGet", "grpc", "exec"),
    "PodDisruptionBudgetSpec": ("maxUnavailable", "minAvailable"),
}


def kind_of(document: Any) -> Optional[str]:
    """The schema type of a top-level object, None for a kind this module does not know."""
    if not isinstance(document, dict):
        return None
    return KINDS.get((str(document.get("apiVersion")), str(document.get("kind"))))


def check(document: Any, where: str) -> list[str]:
    kind = kind_of(document)
    if kind is None:
        api = document.get("apiVersion") if isinstance(document, dict) else None
        found = document.get("kind") if isinstance(document, dict) else type(document).__name__
        return [f"{where}: unknown apiVersion/kind {api}/{found}"]
    problems: list[str] = []
    _check(document, kind, where, problems)
    if not isinstance(document["metadata"].get("name"), str):
        problems.append(f"{where}.metadata.name: missing")
    return problems


def _check(value: Any, type_: Type, where: str, problems: list[str]) -> None:
    if type_ is None:
        return
    if isinstance(type_, str) and type_.startswith("["):
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {value!r}")
            return
        for i, item in enumerate(value):
            _check(item, type_[1:-1], f"{where}[{i}]", problems)
        return
    if not isinstance(type_, str):
        types = type_ if isinstance(type_, tuple) else (type_,)
        # YAML's true is no number, though Python's bool is an int
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            problems.append(f"{where}: expected {type_}, got {value!r}")
        return
    if not isinstance(value, dict):
        problems.append(f"{where}: expected an object ({type_}), got {value!r}")
        return
    fields = FIELDS[type_]
    for key, item in value.items():
        if key not in fields:
            problems.append(f"{where}.{key}: no such field in {type_}")
        else:
            _check(item, fields[key], f"{where}.{key}", problems)
    for key in REQUIRED.get(type_, ()):
        if key not in value:
            problems.append(f"{where}.{key}: missing (required in {type_})")
    one_of = ONE_OF.get(type_)
    if one_of and sum(key in value for key in one_of) != 1:
        problems.append(f"{where}: needs exactly one of {', '.join(one_of)}")
