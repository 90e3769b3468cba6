"""The runtime types a generated cog_settings.py is made of, and that the SDK, the client and
the orchestrator use: `ActorClass`, `ActorClassList`, `TrialSettings`,
`EnvironmentSettings`, `DatalogSettings`, the `Settings` protocol, and
`make_default_trial_params_from_dict`, which fills the YAML `config:` maps of a project's
default trial parameters into protobuf messages.

cogment.yaml itself is read by `cogment.cogment_yaml`; nothing here needs YAML. Generated
cog_settings.py files (of every cogment-py version) import this module by this name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional, Protocol

from google.protobuf import json_format
from google.protobuf.message import Message

from cogment.api import common_pb2
from cogment.endpoint import is_grpc_endpoint
from cogment.errors import ConfigurationError

DeltaApplyFn = Callable[[Message, Message], Message]

UNKNOWN_ACTOR_CLASS = "unknown actor class {actor_class!r} (declared: {declared})"

DATALOG_TYPES = ("sqlite", "grpc", "none")
DATALOG_ON_FAILURE = ("end", "continue")  # what a recording failure does to the trial
DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024  # samples waiting to be stored, in bytes


@dataclasses.dataclass(frozen=True)
class ActorClass:
    """An actor class of the project, as `cog_settings.actor_classes.<id>`."""

    id: str
    action_space: type[Message]
    observation_space: type[Message]
    observation_delta: type[Message]
    observation_delta_apply_fn: Optional[DeltaApplyFn] = None
    config_type: Optional[type[Message]] = None

    @property
    def has_distinct_delta(self) -> bool:
        """True when the class declares a delta type other than its observation space."""
        return self.observation_delta is not self.observation_space

    def __repr__(self) -> str:
        return f"ActorClass({self.id!r})"


class ActorClassList:
    """The project's actor classes in declaration order; `actor_classes.<id>` reaches one."""

    def __init__(self, *classes: ActorClass) -> None:
        self._classes = tuple(classes)
        self._by_id = {c.id: c for c in classes}
        self._index = {c.id: i for i, c in enumerate(classes)}

    def __getattr__(self, name: str) -> ActorClass:
        by_id = self.__dict__.get("_by_id")
        if by_id is None or name not in by_id:
            raise AttributeError(f"no actor class named {name!r}")
        return by_id[name]

    def __iter__(self) -> Iterator[ActorClass]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __getitem__(self, index: int) -> ActorClass:
        return self._classes[index]

    def __contains__(self, item: object) -> bool:
        return item in self._by_id or item in self._classes

    def get(self, class_id: str) -> Optional[ActorClass]:
        """The class named `class_id`, or None."""
        return self._by_id.get(class_id)

    def index_of(self, class_id: str) -> int:
        """The position of the class in cogment.yaml (it fixes actor ids)."""
        return self._index[class_id]

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self._classes]

    def __repr__(self) -> str:
        return f"ActorClassList({', '.join(self.ids)})"


@dataclasses.dataclass(frozen=True)
class TrialSettings:
    """`cog_settings.trial`: the type of the config a client passes to `start_trial`."""

    config_type: Optional[type[Message]] = None


@dataclasses.dataclass(frozen=True)
class EnvironmentSettings:
    """`cog_settings.environment`: the type of the environment's config."""

    config_type: Optional[type[Message]] = None


@dataclasses.dataclass(frozen=True)
class DatalogSettings:
    """`cog_settings.datalog`: where the orchestrator records each trial.

    Attributes:
        type: `sqlite` (the orchestrator writes `path` itself), `grpc` (it streams to the
            LogExporter at `url`) or `none`.
        url: the LogExporter's endpoint, `grpc://host:port` (type grpc).
        path: the SQLite file (type sqlite); generated settings hold it absolute.
        on_failure: `end` (a recording failure ends the trial, with a reason naming the
            datalog) or `continue` (trials go on; lost samples are counted).
        max_queue_bytes: how many bytes of samples may wait to be stored before ticks wait.
    """

    type: str
    url: str = ""
    path: str = ""
    on_failure: str = "end"
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES

    def __post_init__(self) -> None:
        if self.type not in DATALOG_TYPES:
            raise ConfigurationError(
                f"datalog type {self.type!r} is not supported (expected sqlite, grpc or none)"
            )
        if self.type == "grpc" and not is_grpc_endpoint(self.url):
            raise ConfigurationError(f"datalog url {self.url!r} is not grpc://host:port")
        if self.type == "sqlite" and not self.path:
            raise ConfigurationError("a sqlite datalog needs a path")
        if self.on_failure not in DATALOG_ON_FAILURE:
            raise ConfigurationError(
                f"datalog on_failure {self.on_failure!r} is not supported (expected end or "
                "continue)"
            )
        if self.max_queue_bytes < 1024:
            raise ConfigurationError(
                f"datalog max_queue_bytes {self.max_queue_bytes} is too small (at least 1024)"
            )

    @property
    def where(self) -> str:
        """How log lines and trial end reasons name this datalog."""
        return self.url if self.type == "grpc" else f"sqlite:{self.path}"


class Settings(Protocol):
    """What cogment needs of a generated cog_settings module."""

    actor_classes: ActorClassList
    trial: TrialSettings
    environment: EnvironmentSettings


def fill_message(message_type: type[Message], values: Mapping[str, Any], where: str) -> Message:
    """Fills a `message_type` from a YAML map.

    Raises:
        ConfigurationError: names `where` (file and key), the type and the offending field.
    """
    message = message_type()
    try:
        json_format.ParseDict(dict(values), message)
    except json_format.ParseError as error:
        detail = str(error)
        unknown = re.search(r'no field named "([^"]+)"', detail) or re.search(
            r"has no field named \"?([\w.]+)", detail
        )
        type_name = message_type.DESCRIPTOR.full_name
        if unknown:
            raise ConfigurationError(
                f"{where}.{unknown.group(1)}: {type_name} has no field {unknown.group(1)!r}"
            ) from None
        raise ConfigurationError(f"{where}: does not fit {type_name}: {detail}") from None
    return message


def make_default_trial_params_from_dict(
    values: Mapping[str, Any],
    actor_classes: ActorClassList,
    trial: TrialSettings,
    environment: EnvironmentSettings,
    source: str = "cogment.yaml",
) -> common_pb2.TrialParams:
    """The project's default `TrialParams`, from the literal a generated cog_settings.py
    holds, with its `config:` maps filled into their types.

    A config field is present in the result only where cogment.yaml gives a `config:` (even
    an empty one): services tell "no config" from "a config of default values" by presence.

    Raises:
        ConfigurationError: names `source`, the key and what is wrong.
    """

    def fill(
        field: Message, config: Optional[Mapping[str, Any]], config_type: Any, key: str
    ) -> None:
        if config is None:
            return
        if config_type is None:
            raise ConfigurationError(
                f"{source}: {key}: a config is given but no config_type is declared"
            )
        message = fill_message(config_type, config, f"{source}: {key}")
        field.SetInParent()
        field.content = message.SerializeToString()  # type: ignore[attr-defined]

    env = values.get("environment") or {}
    params = common_pb2.TrialParams(
        max_steps=values.get("max_steps", 0), max_inactivity=values.get("max_inactivity", 0)
    )
    fill(
        params.trial_config,
        values.get("trial_config"),
        trial.config_type,
        "trial_params.trial_config",
    )
    params.environment.endpoint = env.get("endpoint", "")
    fill(
        params.environment.config,
        env.get("config"),
        environment.config_type,
        "trial_params.environment.config",
    )
    for i, actor in enumerate(values.get("actors", ())):
        actor_class = actor_classes.get(actor["actor_class"])
        if actor_class is None:
            unknown = UNKNOWN_ACTOR_CLASS.format(
                actor_class=actor["actor_class"], declared=", ".join(actor_classes.ids)
            )
            raise ConfigurationError(f"{source}: trial_params.actors[{i}].actor_class: {unknown}")
        entry = params.actors.add(actor_class=actor["actor_class"], endpoint=actor["endpoint"])
        fill(
            entry.config,
            actor.get("config"),
            actor_class.config_type,
            f"trial_params.actors[{i}].config",
        )
    return params
