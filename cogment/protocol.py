"""The one seam between wire messages and Python objects.

Everything that packs or unpacks a cogment protobuf for the SDK services lives here:
observation sets (one message for everyone, or an ObservationTable, deduplicated by object
identity, snapshot or delta), the snapshots kept for `reply_with_snapshot`, actions,
feedback and messages, configs, and `TrialParams` <-> `TrialParameters` for pre-trial hooks.
A request or a user result that cannot cross the wire raises `cogment.errors.StatusError`
with the gRPC status the server answers with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from cogment.api import common_pb2, environment_pb2
from cogment.constants import CURRENT_TICK, MAX_ACTORS
from cogment.delta import ActionsTable, ObservationTable, apply_delta
from cogment.errors import StatusError
from cogment.hooks import ActorParameters, EnvironmentParameters, TrialParameters
from cogment.settings import ActorClass, ActorClassList, Settings
from cogment.version import version_entries

UserData = Union[Message, bytes, None]


def _type_name(message_type: Any) -> str:
    descriptor = getattr(message_type, "DESCRIPTOR", None)
    return descriptor.full_name if descriptor is not None else type(message_type).__name__


def version_info(user_versions: Optional[dict[str, str]]) -> common_pb2.VersionInfo:
    """The VersionInfo every Version RPC answers with."""
    info = common_pb2.VersionInfo()
    for name, version in version_entries(user_versions):
        info.versions.add(name=name, version=version)
    return info


def decode(message_type: type[Message], content: bytes, what: str) -> Message:
    """Parses `content` as `message_type`; INVALID_ARGUMENT naming `what` and the type."""
    try:
        return message_type.FromString(content)
    except (DecodeError, ValueError, TypeError) as error:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what}: cannot parse {len(content)} bytes as {_type_name(message_type)} ({error})",
        ) from None


def decode_config(
    config_type: Optional[type[Message]], parent: Message, field: str, what: str
) -> Optional[Message]:
    """The config sub-message `field` of `parent` (a TrialConfig, ActorConfig...) decoded:
    None without a config type or when the field is absent."""
    if config_type is None or not parent.HasField(field):
        return None
    return decode(config_type, getattr(parent, field).content, what)


def encode_user_data(user_data: UserData) -> bytes:
    """Feedback `user_data`: a protobuf message, raw bytes, or None."""
    if user_data is None:
        return b""
    if isinstance(user_data, bytes):
        return user_data
    if isinstance(user_data, Message):
        return user_data.SerializeToString()
    raise TypeError(
        f"user_data must be a protobuf message or bytes, got {type(user_data).__name__}"
    )


def make_feedback(
    actor_id: int,
    id_in_class: int,
    value: float,
    confidence: float,
    tick_id: int = -1,
    user_data: UserData = None,
) -> common_pb2.Feedback:
    """A Feedback for the actor `actor_id` (`tick_id` -1: the current tick)."""
    if tick_id < CURRENT_TICK:
        raise ValueError(f"tick_id must be -1 (the current tick) or a tick id, got {tick_id}")
    if not math.isfinite(value):
        raise ValueError(f"value must be a finite number, got {value}")
    if not (math.isfinite(confidence) and confidence >= 0.0):
        raise ValueError(f"confidence must be a finite number >= 0, got {confidence}")
    return common_pb2.Feedback(
        actor_id=actor_id,
        agent_id=id_in_class,
        tick_id=tick_id,
        value=float(value),
        confidence=float(confidence),
        content=encode_user_data(user_data),
    )


def pack_payload(user_data: Message) -> any_pb2.Any:
    """A message's payload: the user's protobuf packed in an Any."""
    if not isinstance(user_data, Message):
        raise TypeError(f"a message must be a protobuf message, got {type(user_data).__name__}")
    payload = any_pb2.Any()
    payload.Pack(user_data)
    return payload


def check_actor_counts(
    actor_classes: ActorClassList, actor_counts: Sequence[int], trial_id: str
) -> None:
    """Raises INVALID_ARGUMENT for `actor_counts` that do not fit the project: one count per
    class, none negative, at most MAX_ACTORS in all."""
    counts = list(actor_counts)
    if len(counts) != len(actor_classes):
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"trial {trial_id}: actor_counts {counts} has {len(counts)} "
            f"entries, the project has {len(actor_classes)} actor classes ({', '.join(actor_classes.ids)})",
        )
    if any(count < 0 for count in counts):
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"trial {trial_id}: actor_counts {counts}: a count is negative",
        )
    if sum(counts) > MAX_ACTORS:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"trial {trial_id}: actor_counts {counts}: {sum(counts)} actors, more than a "
            f"trial may have ({MAX_ACTORS})",
        )


def class_of_actor(
    actor_classes: ActorClassList, actor_counts: Sequence[int], actor_id: int, trial_id: str
) -> tuple[ActorClass, int]:
    """The class of the actor `actor_id` and its index within that class (the counts
    checked with `check_actor_counts`)."""
    check_actor_counts(actor_classes, actor_counts, trial_id)
    start = 0
    for actor_class, count in zip(actor_classes, actor_counts):
        if start <= actor_id < start + count:
            return actor_class, actor_id - start
        start += count
    raise StatusError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"trial {trial_id}: no actor {actor_id} (the trial has {start} actors, "
        f"actor_counts {list(actor_counts)})",
    )


def actor_class_list(
    actor_classes: ActorClassList, actor_counts: Sequence[int]
) -> list[ActorClass]:
    """The class of every actor, by actor id."""
    return [c for c, n in zip(actor_classes, actor_counts) for _ in range(n)]


def parse_actions(
    action_set: environment_pb2.ActionSet,
    classes: Sequence[ActorClass],
    actor_counts: Sequence[int],
    table_type: type[ActionsTable],
    trial_id: str,
) -> ActionsTable:
    """The ActionsTable of an ActionSet, each action parsed with its class's action space."""
    contents = action_set.actions
    if len(contents) != len(classes):
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"trial {trial_id}: the ActionSet holds {len(contents)} actions, "
            f"the trial has {len(classes)} actors",
        )
    actions = []
    for actor_id, (actor_class, content) in enumerate(zip(classes, contents)):
        try:
            actions.append(actor_class.action_space.FromString(content))
        except (DecodeError, ValueError, TypeError):
            raise StatusError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"trial {trial_id}: the action of actor {actor_id} (class {actor_class.id!r}) "
                f"is not a valid {_type_name(actor_class.action_space)} ({len(content)} bytes)",
            ) from None
    return table_type(actor_counts, actions)


def unpack_observation(
    actor_class: ActorClass,
    data: common_pb2.ObservationData,
    previous: Optional[Message],
    what: str,
) -> Message:
    """The full observation an agent gets: a snapshot, or `previous` with a delta applied."""
    if data.snapshot:
        return decode(actor_class.observation_space, data.content, what)
    if previous is None:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what}: a delta arrived before any snapshot (the first observation must be a snapshot)",
        )
    delta = decode(actor_class.observation_delta, data.content, what)
    try:
        return apply_delta(actor_class, previous, delta)
    except Exception as error:
        raise StatusError(
            grpc.StatusCode.INTERNAL,
            f"{what}: the delta_apply_fn of actor class {actor_class.id!r} failed: "
            f"{type(error).__name__}: {error}",
        ) from error


# --------------------------------------------------------------------------- observation sets


class PackedObservations:
    """The distinct serialized observations of a tick and, per actor, which one it sees."""

    __slots__ = ("actors_map", "contents", "snapshots")

    def __init__(self) -> None:
        self.contents: list[bytes] = []
        self.snapshots: list[bool] = []
        self.actors_map: list[int] = []

    def fill(self, obs_set: environment_pb2.ObservationSet, tick_id: int, timestamp: int) -> None:
        """Fills `obs_set` (an empty ObservationSet, e.g. a reply's field) in place.

        Filling the reply's own field copies each observation once; building a separate
        ObservationSet and passing it to the reply's constructor would copy it again.
        """
        obs_set.tick_id = tick_id
        obs_set.timestamp = timestamp
        obs_set.actors_map.extend(self.actors_map)
        add = obs_set.observations.add
        for content, snapshot in zip(self.contents, self.snapshots):
            add(content=content, snapshot=snapshot)


def pack_observations(
    value: Any, classes: Sequence[ActorClass], *, allow_deltas: bool = True
) -> PackedObservations:
    """Packs what `start`/`update` returned: one message for all actors, or an ObservationTable.

    An object given to several actors is serialized and sent once.

    Raises:
        StatusError: INTERNAL, naming the actor and the expected type, for a value that does
            not fit (missing entry, wrong type, a delta where a snapshot is needed).
    """
    packed = PackedObservations()
    seen: dict[tuple[int, bool], int] = {}
    if isinstance(value, ObservationTable):
        if len(value.all) != len(classes):
            raise StatusError(
                grpc.StatusCode.INTERNAL,
                f"the ObservationTable has {len(value.all)} entries, the trial has {len(classes)} actors",
            )
        entries = [(slot.value, slot.is_snapshot) for slot in value.all]
    elif isinstance(value, Message):
        entries = [(value, None) for _ in classes]  # type: ignore[misc]
    else:
        raise StatusError(
            grpc.StatusCode.INTERNAL,
            f"expected an observation message or an ObservationTable, got {type(value).__name__}",
        )
    for actor_id, ((obs, snapshot), actor_class) in enumerate(zip(entries, classes)):
        if obs is None:
            raise StatusError(
                grpc.StatusCode.INTERNAL,
                f"no observation for actor {actor_id} (class {actor_class.id!r}) in the ObservationTable",
            )
        if snapshot is None:  # one message for everyone: its type tells snapshot from delta
            snapshot = isinstance(obs, actor_class.observation_space)
            if not snapshot and not isinstance(obs, actor_class.observation_delta):
                raise StatusError(
                    grpc.StatusCode.INTERNAL,
                    f"actor {actor_id} (class {actor_class.id!r}) expects an observation of "
                    f"type {_type_name(actor_class.observation_space)}, got {type(obs).__name__}",
                )
        expected = actor_class.observation_space if snapshot else actor_class.observation_delta
        if not isinstance(obs, expected):
            raise StatusError(
                grpc.StatusCode.INTERNAL,
                f"actor {actor_id} (class {actor_class.id!r}) expects "
                f"{'an observation' if snapshot else 'a delta'} of type {_type_name(expected)}, "
                f"got {type(obs).__name__}",
            )
        if not snapshot and not allow_deltas:
            raise StatusError(
                grpc.StatusCode.INTERNAL,
                f"actor {actor_id} (class {actor_class.id!r}) got a delta for its first "
                "observation; the first observation must be a snapshot",
            )
        key = (id(obs), snapshot)
        index = seen.get(key)
        if index is None:
            index = seen[key] = len(packed.contents)
            packed.contents.append(obs.SerializeToString())
            packed.snapshots.append(snapshot)
        packed.actors_map.append(index)
    return packed


class SnapshotKeeper:
    """Each actor's latest observation, to answer `reply_with_snapshot` with full snapshots.

    The hot path only records references to the serialized bytes already produced for the
    wire (a snapshot resets an actor's base, a delta is appended to its pending list); the
    user's objects are never kept, as users often mutate and re-send them. Snapshots are
    materialized (parse, apply the deltas with the class's delta_apply_fn, serialize) only
    when asked for, or when an actor has `MAX_PENDING` deltas, which bounds memory and the
    cost of a late request. Actors sharing the same base and deltas share the work.
    """

    MAX_PENDING = 32

    def __init__(self, classes: Sequence[ActorClass]) -> None:
        self._classes = list(classes)
        self._bases: list[bytes] = [b""] * len(classes)
        self._pending: list[list[bytes]] = [[] for _ in classes]

    def record(self, packed: PackedObservations) -> None:
        """Takes in the observations of a tick."""
        contents, snapshots, pending = packed.contents, packed.snapshots, self._pending
        memo: dict[tuple[int, ...], bytes] = {}
        for actor_id, index in enumerate(packed.actors_map):
            if snapshots[index]:
                self._bases[actor_id] = contents[index]
                if pending[actor_id]:
                    pending[actor_id] = []
            else:
                pending[actor_id].append(contents[index])
                if len(pending[actor_id]) >= self.MAX_PENDING:
                    self._compact(actor_id, memo)

    def snapshots(self) -> PackedObservations:
        """Everyone's latest observation as snapshots (materializing pending deltas)."""
        memo: dict[tuple[int, ...], bytes] = {}
        packed = PackedObservations()
        seen: dict[bytes, int] = {}  # by content: materialized copies of one observation merge
        for actor_id in range(len(self._classes)):
            if self._pending[actor_id]:
                self._compact(actor_id, memo)
            content = self._bases[actor_id]
            index = seen.get(content)
            if index is None:
                index = seen[content] = len(packed.contents)
                packed.contents.append(content)
                packed.snapshots.append(True)
            packed.actors_map.append(index)
        return packed

    def _compact(self, actor_id: int, memo: dict[tuple[int, ...], bytes]) -> None:
        base, deltas = self._bases[actor_id], self._pending[actor_id]
        actor_class = self._classes[actor_id]
        key = (id(actor_class), id(base), *map(id, deltas))
        content = memo.get(key)
        if content is None:
            what = f"actor {actor_id} (class {actor_class.id!r})"
            observation = decode(actor_class.observation_space, base, what)
            for delta in deltas:
                try:
                    observation = apply_delta(
                        actor_class, observation, actor_class.observation_delta.FromString(delta)
                    )
                except Exception as error:
                    raise StatusError(
                        grpc.StatusCode.INTERNAL,
                        f"{what}: the delta_apply_fn failed: {type(error).__name__}: {error}",
                    ) from error
            content = memo[key] = observation.SerializeToString()
        self._bases[actor_id] = content
        self._pending[actor_id] = []


# --------------------------------------------------------------------------- trial parameters


def _decode_param_config(
    config_type: Optional[type[Message]], field: Any, present: bool, what: str
) -> Any:
    """A config sub-message of TrialParams for a hook: None when absent, else decoded (raw
    bytes when the type is unknown, so they survive the round trip)."""
    if not present:
        return None
    if config_type is None:
        return field.content
    return decode(config_type, field.content, what)


def _encode_param_config(
    field: Any, config_type: Optional[type[Message]], config: Any, what: str
) -> None:
    """Fills a config sub-message of TrialParams from what a hook set (None: absent)."""
    if config is None:
        return
    if isinstance(config, bytes):
        content = config
    elif config_type is not None and not isinstance(config, config_type):
        raise StatusError(
            grpc.StatusCode.INTERNAL,
            f"{what}: expected {_type_name(config_type)}, got {type(config).__name__}",
        )
    elif not isinstance(config, Message):
        raise StatusError(
            grpc.StatusCode.INTERNAL,
            f"{what}: expected a protobuf message, bytes or None, got {type(config).__name__}",
        )
    else:
        content = config.SerializeToString()
    field.SetInParent()
    field.content = content


def params_from_proto(params: common_pb2.TrialParams, settings: Settings) -> TrialParameters:
    """Decodes TrialParams for a hook: configs become messages of their declared types."""
    actors = []
    for i, actor in enumerate(params.actors):
        actor_class = settings.actor_classes.get(actor.actor_class)
        config_type = actor_class.config_type if actor_class is not None else None
        actors.append(
            ActorParameters(
                actor_class=actor.actor_class,
                endpoint=actor.endpoint,
                config=_decode_param_config(
                    config_type,
                    actor.config,
                    actor.HasField("config"),
                    f"trial_params.actors[{i}].config",
                ),
            )
        )
    return TrialParameters(
        trial_config=_decode_param_config(
            settings.trial.config_type,
            params.trial_config,
            params.HasField("trial_config"),
            "trial_params.trial_config",
        ),
        environment=EnvironmentParameters(
            endpoint=params.environment.endpoint,
            config=_decode_param_config(
                settings.environment.config_type,
                params.environment.config,
                params.environment.HasField("config"),
                "trial_params.environment.config",
            ),
        ),
        actors=actors,
        max_steps=params.max_steps,
        max_inactivity=params.max_inactivity,
    )


def params_to_proto(value: Any, settings: Settings) -> common_pb2.TrialParams:
    """Encodes what a hook returned; INTERNAL naming the offending field."""
    if not isinstance(value, TrialParameters):
        raise StatusError(
            grpc.StatusCode.INTERNAL,
            f"expected cogment.TrialParameters, got {type(value).__name__}",
        )
    params = common_pb2.TrialParams()
    try:
        params.max_steps = value.max_steps
        params.max_inactivity = value.max_inactivity
        params.environment.endpoint = value.environment.endpoint
        for i, actor in enumerate(value.actors):
            actor_class = settings.actor_classes.get(actor.actor_class)
            entry = params.actors.add(actor_class=actor.actor_class, endpoint=actor.endpoint)
            _encode_param_config(
                entry.config,
                actor_class.config_type if actor_class is not None else None,
                actor.config,
                f"trial_params.actors[{i}].config",
            )
    except (TypeError, ValueError, AttributeError) as error:
        raise StatusError(grpc.StatusCode.INTERNAL, f"invalid trial parameters: {error}") from None
    _encode_param_config(
        params.trial_config,
        settings.trial.config_type,
        value.trial_config,
        "trial_params.trial_config",
    )
    _encode_param_config(
        params.environment.config,
        settings.environment.config_type,
        value.environment.config,
        "trial_params.environment.config",
    )
    return params
