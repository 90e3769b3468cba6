"""A project's cogment.yaml, read and checked into a `ProjectSpec`: the one parser for every
caller (`cogment generate`, `cogment launch`).

`load_spec(path)` gives plain values (no protobuf needed, nothing imported from the
project); `cogment generate` checks them against the project's protos and writes
cog_settings.py, whose runtime types live in `cogment.settings`. The format:
COGMENT_YAML.md, and the README.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from typing import Any, Optional

import yaml

from cogment.endpoint import (
    GRPC_ENDPOINT_FORMS,
    REPLICA_SEPARATOR,
    SERVICE_ENDPOINT_FORMS,
    is_actor_endpoint,
    is_grpc_endpoint,
    is_service_endpoint,
)
from cogment.errors import ConfigurationError
from cogment.settings import (
    DATALOG_ON_FAILURE,
    DATALOG_TYPES,
    DEFAULT_MAX_QUEUE_BYTES,
    UNKNOWN_ACTOR_CLASS,
)

MISSING = "missing (required)"

_CLASS_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclasses.dataclass(frozen=True)
class ActorClassSpec:
    """One entry of `actor_classes`; type names are fully qualified protobuf names."""

    id: str
    action_space: str
    observation_space: str
    observation_delta: Optional[str] = None
    delta_apply_fn: Optional[str] = None  # "module.function"
    config_type: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ActorParamsSpec:
    actor_class: str
    endpoint: str
    config: Optional[dict[str, Any]] = None


@dataclasses.dataclass(frozen=True)
class TrialParamsSpec:
    max_steps: int = 0
    max_inactivity: int = 0
    environment_endpoint: str = ""
    environment_config: Optional[dict[str, Any]] = None
    actors: tuple[ActorParamsSpec, ...] = ()
    trial_config: Optional[dict[str, Any]] = None

    def to_dict(self) -> dict[str, Any]:
        """The literal a generated cog_settings.py holds, which
        `cogment.settings.make_default_trial_params_from_dict` turns into `TrialParams`."""
        return {
            "max_steps": self.max_steps,
            "max_inactivity": self.max_inactivity,
            "trial_config": self.trial_config,
            "environment": {
                "endpoint": self.environment_endpoint,
                "config": self.environment_config,
            },
            "actors": [
                {"actor_class": a.actor_class, "endpoint": a.endpoint, "config": a.config}
                for a in self.actors
            ],
        }


@dataclasses.dataclass(frozen=True)
class ProjectSpec:
    """Everything cogment.yaml declares, checked for shape but not yet against the protos."""

    path: str  # absolute path of cogment.yaml
    proto_files: tuple[str, ...]  # relative to the project folder
    python_modules: tuple[str, ...]
    actor_classes: tuple[ActorClassSpec, ...]
    trial_config_type: Optional[str] = None
    environment_config_type: Optional[str] = None
    pre_hooks: tuple[str, ...] = ()
    trial_params: TrialParamsSpec = TrialParamsSpec()
    datalog_type: Optional[str] = None  # sqlite or grpc; None: no datalog
    datalog_url: Optional[str] = None  # grpc
    datalog_path: Optional[str] = None  # sqlite, as written (relative to cogment.yaml)
    datalog_on_failure: str = "end"
    datalog_max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES

    @property
    def project_dir(self) -> str:
        return os.path.dirname(self.path)

    def type_names(self) -> list[tuple[str, str]]:
        """Every (yaml key, protobuf type name) the project refers to."""
        names: list[tuple[str, str]] = []
        if self.trial_config_type:
            names.append(("trial.config_type", self.trial_config_type))
        if self.environment_config_type:
            names.append(("environment.config_type", self.environment_config_type))
        for i, ac in enumerate(self.actor_classes):
            key = f"actor_classes[{i}]"
            names.append((f"{key}.action.space", ac.action_space))
            names.append((f"{key}.observation.space", ac.observation_space))
            if ac.observation_delta:
                names.append((f"{key}.observation.delta", ac.observation_delta))
            if ac.config_type:
                names.append((f"{key}.config_type", ac.config_type))
        return names


class _Reader:
    """Walks the YAML tree, raising one-line errors that name the file and the key."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, what: str) -> ConfigurationError:
        return ConfigurationError(f"{self.path}: {key}: {what}")

    def map(self, value: Any, key: str, allowed: Sequence[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a map, got {_describe(value)}")
        for name in value:
            if name not in allowed:
                raise self.fail(
                    f"{key}.{name}" if key else str(name),
                    f"unknown key (expected one of: {', '.join(allowed)})",
                )
        return value

    def list(self, value: Any, key: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {_describe(value)}")
        return value

    def string(self, value: Any, key: str, *, required: bool = False) -> Optional[str]:
        if value is None:
            if required:
                raise self.fail(key, MISSING)
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {_describe(value)}")
        return value

    def type_name(self, value: Any, key: str, *, required: bool = False) -> Optional[str]:
        name = self.string(value, key, required=required)
        if name is not None and not _TYPE_NAME_RE.match(name):
            raise self.fail(
                key, f"{name!r} is not a protobuf message name of the form package.Message"
            )
        return name

    def count(self, value: Any, key: str) -> int:
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, f"expected a whole number >= 0, got {_describe(value)}")
        if value > 0xFFFFFFFF:
            raise self.fail(key, f"{value} is too large (at most {0xFFFFFFFF})")
        return value

    def endpoint(self, value: Any, key: str, *, human_ok: bool, replicas: bool = True) -> str:
        """An endpoint; with `replicas`, a service's, which may be a list of replicas (a YAML
        list of endpoints is written as the string `grpc://h1:p1,grpc://h2:p2`)."""
        if replicas and isinstance(value, list) and value:
            entries = [self.string(v, f"{key}[{i}]", required=True) for i, v in enumerate(value)]
            value = REPLICA_SEPARATOR.join(str(entry) for entry in entries)
        text = self.string(value, key, required=True)
        assert text is not None
        if not replicas:
            valid, expected = is_grpc_endpoint(text), GRPC_ENDPOINT_FORMS
        elif human_ok:
            valid, expected = is_actor_endpoint(text), f"'human', {SERVICE_ENDPOINT_FORMS}"
        else:
            valid, expected = is_service_endpoint(text), SERVICE_ENDPOINT_FORMS
        if not valid:
            raise self.fail(key, f"{text!r} is not a valid endpoint (expected {expected})")
        return text

    def config(self, value: Any, key: str) -> Optional[dict[str, Any]]:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a map of fields, got {_describe(value)}")
        return value


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, (dict, list)):
        return f"a {'map' if isinstance(value, dict) else 'list'}"
    return f"{type(value).__name__} {value!r}"


def load_spec(path: str) -> ProjectSpec:
    """Reads and checks a cogment.yaml.

    Raises:
        ConfigurationError: one line naming the file, the key and what is wrong.
    """
    path = os.path.abspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read the file ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigurationError(f"{path}: {where}invalid YAML ({problem})") from None
    return parse_spec(data, path)


def parse_spec(data: Any, path: str) -> ProjectSpec:
    """Checks the already-parsed YAML `data` of the file `path` (see `load_spec`)."""
    r = _Reader(path)
    if data is None:
        raise ConfigurationError(f"{path}: the file is empty")
    top = r.map(
        data, "", ["import", "trial", "environment", "actor_classes", "trial_params", "datalog"]
    )

    imports = r.map(top.get("import"), "import", ["proto", "python"])
    proto_files = []
    for i, entry in enumerate(r.list(imports.get("proto"), "import.proto")):
        name = r.string(entry, f"import.proto[{i}]", required=True)
        assert name is not None
        if not name.endswith(".proto"):
            raise r.fail(f"import.proto[{i}]", f"{name!r} is not a .proto file")
        if not os.path.isfile(os.path.join(os.path.dirname(path), name)):
            raise r.fail(f"import.proto[{i}]", f"{name!r} not found next to cogment.yaml")
        proto_files.append(name)
    python_modules = []
    for i, entry in enumerate(r.list(imports.get("python"), "import.python")):
        name = r.string(entry, f"import.python[{i}]", required=True)
        assert name is not None
        if not _MODULE_RE.match(name):
            raise r.fail(f"import.python[{i}]", f"{name!r} is not a python module name")
        python_modules.append(name)

    trial = r.map(top.get("trial"), "trial", ["config_type", "pre_hooks"])
    pre_hooks = tuple(
        r.endpoint(hook, f"trial.pre_hooks[{i}]", human_ok=False)
        for i, hook in enumerate(r.list(trial.get("pre_hooks"), "trial.pre_hooks"))
    )
    environment = r.map(top.get("environment"), "environment", ["config_type"])

    if "actor_classes" not in top:
        raise r.fail("actor_classes", "missing (a project needs at least one actor class)")
    classes_data = r.list(top.get("actor_classes"), "actor_classes")
    if not classes_data:
        raise r.fail("actor_classes", "empty (a project needs at least one actor class)")
    classes: list[ActorClassSpec] = []
    for i, entry in enumerate(classes_data):
        classes.append(_parse_actor_class(r, entry, f"actor_classes[{i}]", classes))
    class_ids = [c.id for c in classes]

    params = _parse_trial_params(r, top.get("trial_params"), class_ids)

    datalog = _parse_datalog(r, top.get("datalog"))

    return ProjectSpec(
        path=path,
        proto_files=tuple(proto_files),
        python_modules=tuple(python_modules),
        actor_classes=tuple(classes),
        trial_config_type=r.type_name(trial.get("config_type"), "trial.config_type"),
        environment_config_type=r.type_name(
            environment.get("config_type"), "environment.config_type"
        ),
        pre_hooks=pre_hooks,
        trial_params=params,
        **datalog,
    )


def _parse_datalog(r: _Reader, value: Any) -> dict[str, Any]:
    """The `datalog:` section as ProjectSpec fields (none of them without a datalog)."""
    data = r.map(value, "datalog", ["type", "path", "url", "on_failure", "max_queue_bytes"])
    if not data:
        return {}
    kind = r.string(data.get("type"), "datalog.type", required=True)
    if kind not in DATALOG_TYPES:
        raise r.fail("datalog.type", f"{kind!r} is not supported (expected sqlite, grpc or none)")
    if kind == "none":
        return {}
    for key, wanted in (("url", "grpc"), ("path", "sqlite")):
        if key in data and kind != wanted:
            raise r.fail(f"datalog.{key}", f"only for type {wanted} (the type is {kind})")
    fields: dict[str, Any] = {"datalog_type": kind}
    if kind == "grpc":
        fields["datalog_url"] = r.endpoint(
            data.get("url"), "datalog.url", human_ok=False, replicas=False
        )
    else:
        fields["datalog_path"] = r.string(data.get("path"), "datalog.path", required=True)
    on_failure = r.string(data.get("on_failure"), "datalog.on_failure") or "end"
    if on_failure not in DATALOG_ON_FAILURE:
        raise r.fail(
            "datalog.on_failure", f"{on_failure!r} is not supported (expected end or continue)"
        )
    fields["datalog_on_failure"] = on_failure
    if "max_queue_bytes" in data:
        size = r.count(data.get("max_queue_bytes"), "datalog.max_queue_bytes")
        if size < 1024:
            raise r.fail("datalog.max_queue_bytes", f"{size} is too small (at least 1024)")
        fields["datalog_max_queue_bytes"] = size
    return fields


def _parse_actor_class(
    r: _Reader, entry: Any, key: str, previous: Sequence[ActorClassSpec]
) -> ActorClassSpec:
    data = r.map(entry, key, ["id", "config_type", "action", "observation"])
    class_id = r.string(data.get("id"), f"{key}.id", required=True)
    assert class_id is not None
    if not _CLASS_ID_RE.match(class_id) or class_id in ("all", "get"):
        raise r.fail(f"{key}.id", f"{class_id!r} is not a valid actor class id")
    if any(p.id == class_id for p in previous):
        raise r.fail(f"{key}.id", f"actor class {class_id!r} is declared twice")
    if "action" not in data:
        raise r.fail(f"{key}.action", MISSING)
    action = r.map(data.get("action"), f"{key}.action", ["space"])
    if "observation" not in data:
        raise r.fail(f"{key}.observation", MISSING)
    observation = r.map(
        data.get("observation"), f"{key}.observation", ["space", "delta", "delta_apply_fn"]
    )
    apply_fn = None
    if observation.get("delta_apply_fn") is not None:
        fn = r.map(observation["delta_apply_fn"], f"{key}.observation.delta_apply_fn", ["python"])
        apply_fn = r.string(
            fn.get("python"), f"{key}.observation.delta_apply_fn.python", required=True
        )
        assert apply_fn is not None
        if "." not in apply_fn or not _MODULE_RE.match(apply_fn):
            raise r.fail(
                f"{key}.observation.delta_apply_fn.python",
                f"{apply_fn!r} is not of the form module.function",
            )
    return ActorClassSpec(
        id=class_id,
        action_space=r.type_name(action.get("space"), f"{key}.action.space", required=True) or "",
        observation_space=r.type_name(
            observation.get("space"), f"{key}.observation.space", required=True
        )
        or "",
        observation_delta=r.type_name(observation.get("delta"), f"{key}.observation.delta"),
        delta_apply_fn=apply_fn,
        config_type=r.type_name(data.get("config_type"), f"{key}.config_type"),
    )


def _parse_trial_params(r: _Reader, value: Any, class_ids: Sequence[str]) -> TrialParamsSpec:
    data = r.map(
        value,
        "trial_params",
        ["max_steps", "max_inactivity", "environment", "actors", "trial_config"],
    )
    env = r.map(data.get("environment"), "trial_params.environment", ["endpoint", "config"])
    env_endpoint = ""
    if "environment" in data:
        env_endpoint = r.endpoint(
            env.get("endpoint"), "trial_params.environment.endpoint", human_ok=False
        )
    actors = []
    for i, entry in enumerate(r.list(data.get("actors"), "trial_params.actors")):
        key = f"trial_params.actors[{i}]"
        actor = r.map(entry, key, ["actor_class", "endpoint", "config"])
        actor_class = r.string(actor.get("actor_class"), f"{key}.actor_class", required=True)
        if actor_class not in class_ids:
            raise r.fail(
                f"{key}.actor_class",
                UNKNOWN_ACTOR_CLASS.format(actor_class=actor_class, declared=", ".join(class_ids)),
            )
        assert actor_class is not None
        actors.append(
            ActorParamsSpec(
                actor_class=actor_class,
                endpoint=r.endpoint(actor.get("endpoint"), f"{key}.endpoint", human_ok=True),
                config=r.config(actor.get("config"), f"{key}.config"),
            )
        )
    return TrialParamsSpec(
        max_steps=r.count(data.get("max_steps"), "trial_params.max_steps"),
        max_inactivity=r.count(data.get("max_inactivity"), "trial_params.max_inactivity"),
        environment_endpoint=env_endpoint,
        environment_config=r.config(env.get("config"), "trial_params.environment.config"),
        actors=tuple(actors),
        trial_config=r.config(data.get("trial_config"), "trial_params.trial_config"),
    )
