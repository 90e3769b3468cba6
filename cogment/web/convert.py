"""JSON <-> the project's protobuf messages, for the WebSocket (`google.protobuf.json_format`).

Messages go out in the proto3 JSON mapping with the field names of the .proto files and
every field shown (a car at x=0 has `"x": 0`): enums by name, 64-bit integers as strings,
bytes as base64. Coming in, enums are taken by name or number. A message payload (and a
feedback's user data) is a JSON object naming its type in `"@type"` (`"city.Chat"`; the
`type.googleapis.com/` prefix of `google.protobuf.Any` is accepted); a type the bridge does
not know goes out as `{"@type": NAME, "@value": BASE64}`.

`describe_project` tells a page what the project's messages look like (for forms).
"""

from __future__ import annotations

import base64
import inspect
from collections.abc import Iterable
from typing import Any, Optional

from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from cogment.web.protocol import BAD_DATA, ProtocolError

TYPE_KEY = "@type"
VALUE_KEY = "@value"
TYPE_URL_PREFIX = "type.googleapis.com/"

# protobuf >= 5.26 renamed `including_default_value_fields`
_ALL_FIELDS: dict[str, Any] = (
    {"always_print_fields_with_no_presence": True}
    if "always_print_fields_with_no_presence"
    in inspect.signature(json_format.MessageToDict).parameters
    else {"including_default_value_fields": True}
)


def to_json(message: Message) -> dict[str, Any]:
    """A protobuf message as a JSON-ready dict (proto field names, every field shown)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True, **_ALL_FIELDS)


def from_json(value: Any, message_type: type[Message], what: str) -> Message:
    """A `message_type` made from a JSON object.

    Raises:
        ProtocolError: BAD_DATA naming `what` and the field that does not fit.
    """
    if not isinstance(value, dict):
        raise ProtocolError(
            BAD_DATA,
            f"{what}: expected a JSON object for {_name(message_type)}, got {type(value).__name__}",
        )
    message = message_type()
    try:
        json_format.ParseDict(value, message)
    except json_format.ParseError as error:
        raise ProtocolError(BAD_DATA, f"{what}: {_reworded(error)}") from None
    except (TypeError, ValueError, AttributeError) as error:  # odd values json_format lets by
        raise ProtocolError(BAD_DATA, f"{what}: {error}") from None
    return message


def payload_to_json(payload: any_pb2.Any) -> dict[str, Any]:
    """An Any as `{"@type": "pkg.Name", ...fields}` (`"@value"`: base64, for unknown types)."""
    name = payload.type_url.rsplit("/", 1)[-1]
    try:
        data = json_format.MessageToDict(payload, preserving_proto_field_name=True, **_ALL_FIELDS)
    except (TypeError, KeyError, json_format.Error):  # a type this process never imported
        return {TYPE_KEY: name, VALUE_KEY: base64.b64encode(payload.value).decode("ascii")}
    data[TYPE_KEY] = name
    return data


def payload_from_json(value: Any, what: str) -> Message:
    """The message a `{"@type": "pkg.Name", ...fields}` object describes.

    Raises:
        ProtocolError: BAD_DATA: no `@type`, a type the bridge does not know, or fields that
            do not fit it.
    """
    if not isinstance(value, dict):
        raise ProtocolError(
            BAD_DATA, f'{what}: expected an object like {{"@type": "pkg.Message", ...}}'
        )
    name = value.get(TYPE_KEY)
    if not isinstance(name, str) or not name:
        raise ProtocolError(
            BAD_DATA,
            f'{what}: missing "@type" (the full name of a protobuf message, e.g. "city.Chat")',
        )
    name = name.rsplit("/", 1)[-1]
    message_type = message_class(name)
    if message_type is None:
        raise ProtocolError(
            BAD_DATA,
            f"{what}: unknown message type {name!r} (the bridge knows the messages of the "
            "project's .proto files)",
        )
    packed = any_pb2.Any()
    try:  # through Any, so that well-known types get their own JSON form ({"value": ...})
        json_format.ParseDict({**value, TYPE_KEY: TYPE_URL_PREFIX + name}, packed)
    except json_format.ParseError as error:
        raise ProtocolError(BAD_DATA, f"{what}: {_reworded(error)}") from None
    message = message_type()
    packed.Unpack(message)
    return message


def message_class(full_name: str) -> Optional[type[Message]]:
    """The class of a message type in the default descriptor pool (None when unknown)."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        return None
    return message_factory.GetMessageClass(descriptor)


def _name(message_type: Any) -> str:
    return str(message_type.DESCRIPTOR.full_name)


def _reworded(error: Exception) -> str:
    """json_format's message, without its Python-flavoured list of field names."""
    text = str(error)
    return text.replace(" Available Fields(except extensions): ", " Known fields: ")


# ---------------------------------------------------------------- describing the project

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
    FieldDescriptor.TYPE_ENUM: "enum",
    FieldDescriptor.TYPE_MESSAGE: "message",
}


def _is_repeated(field: FieldDescriptor) -> bool:
    is_repeated = getattr(field, "is_repeated", None)  # protobuf >= 5.29; `label` is deprecated
    if isinstance(is_repeated, bool):
        return is_repeated
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def _field(field: FieldDescriptor, types: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {"name": field.name, "type": _SCALARS.get(field.type, "unknown")}
    if field.type == FieldDescriptor.TYPE_ENUM:
        info["enum"] = [value.name for value in field.enum_type.values]
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        entry = field.message_type
        if entry.GetOptions().map_entry:
            key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
            info["type"] = "map"
            info["key"] = _SCALARS.get(key.type, "unknown")
            info["value"] = _field(value, types)
            return info
        info["message"] = entry.full_name
        _describe(entry, types)
    if _is_repeated(field):
        info["repeated"] = True
    return info


def _describe(descriptor: Descriptor, types: dict[str, Any]) -> None:
    if descriptor.full_name in types:
        return
    entry: dict[str, Any] = {"fields": []}
    types[descriptor.full_name] = entry  # before the fields: a type may contain itself
    entry["fields"] = [_field(f, types) for f in descriptor.fields]


def describe_types(message_types: Iterable[Any]) -> dict[str, Any]:
    """`{full name: {"fields": [{"name", "type", "enum"?, "message"?, "repeated"?}]}}` of
    the given message classes and of every message they contain."""
    types: dict[str, Any] = {}
    for message_type in message_types:
        if message_type is not None:
            _describe(message_type.DESCRIPTOR, types)
    return types


def describe_project(settings: Any, default_params: Any = None) -> dict[str, Any]:
    """What a page needs to know of the project: its actor classes (their action,
    observation and config types), the trial config type, the human slots of the default
    trial (of `default_params`, else of the project's), and the fields of every type named
    (`types`)."""
    classes = []
    message_types: list[Any] = []
    for actor_class in settings.actor_classes:
        config_type = getattr(actor_class, "config_type", None)
        classes.append(
            {
                "id": actor_class.id,
                "action": _name(actor_class.action_space),
                "observation": _name(actor_class.observation_space),
                "config": _name(config_type) if config_type is not None else None,
            }
        )
        message_types += [actor_class.action_space, actor_class.observation_space, config_type]
    trial_config = getattr(getattr(settings, "trial", None), "config_type", None)
    message_types.append(trial_config)
    params = default_params or getattr(settings, "default_trial_params", None)
    slots = []
    if params is not None:  # actor ids: the actors stable-sorted by class, as in a trial
        order = [c.id for c in settings.actor_classes]
        actors = sorted(
            params.actors, key=lambda a: order.index(a.actor_class) if a.actor_class in order else 0
        )
        for actor_id, actor in enumerate(actors):
            if actor.endpoint == "human":
                slots.append({"actor_id": actor_id, "actor_class": actor.actor_class})
    return {
        "actor_classes": classes,
        "trial_config": _name(trial_config) if trial_config is not None else None,
        "human_slots": slots,
        "types": describe_types(message_types),
    }
