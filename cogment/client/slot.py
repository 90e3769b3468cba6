"""The client's actor slot in a trial (its class, checked against cog_settings, and its
config), and type names for the client's error messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from cogment.api import orchestrator_pb2
from cogment.errors import WRONG_SLOT_CLASS, CogmentError, ConfigurationError, StatusError
from cogment.protocol import decode_config
from cogment.settings import ActorClass, ActorClassList

WRONG_PROJECT = (
    "trial {trial_id}: the orchestrator's project has {counts} actor classes, "
    "cog_settings has {classes} ({ids})"
)


def slot_class(
    actor_classes: ActorClassList,
    actor_counts: Sequence[int],
    actor_id: int,
    requested: ActorClass,
    trial_id: str,
) -> Optional[ActorClass]:
    """The class of the client's slot `actor_id` (None for -1), checked against `requested`.

    Raises:
        ConfigurationError: the trial's classes are not the project's, or the slot is of
            another class than `requested`.
    """
    if len(actor_counts) != len(actor_classes):
        raise ConfigurationError(
            WRONG_PROJECT.format(
                trial_id=trial_id,
                counts=len(actor_counts),
                classes=len(actor_classes),
                ids=", ".join(actor_classes.ids),
            )
        )
    if actor_id < 0:
        return None
    start = 0
    for actor_class, count in zip(actor_classes, actor_counts):
        if start <= actor_id < start + count:
            if actor_class.id != requested.id:
                break
            return actor_class
        start += count
    else:
        actor_class = None
    raise ConfigurationError(
        WRONG_SLOT_CLASS.format(
            trial_id=trial_id,
            actor_id=actor_id,
            slot=getattr(actor_class, "id", None),
            requested=requested.id,
        )
    )


def slot_config(actor_class: Optional[ActorClass], reply: orchestrator_pb2.TrialStartReply) -> Any:
    """The slot's config from a Start/Join reply, decoded with the class's `config_type`
    (None without a slot, a config type, or a config in the reply).

    Raises:
        CogmentError: the config's bytes do not parse as the class's config type.
    """
    if actor_class is None:
        return None
    try:
        return decode_config(
            actor_class.config_type,
            reply,
            "human_config",
            f"trial {reply.trial_id}: config of actor {reply.actor_id}",
        )
    except StatusError as error:
        raise CogmentError(error.message) from None


def type_name(value: Any) -> str:
    """The protobuf full name of a message's type (else its Python type's name)."""
    descriptor = getattr(type(value), "DESCRIPTOR", None)
    full_name = getattr(descriptor, "full_name", None)
    return full_name if isinstance(full_name, str) else type(value).__name__
