"""Trial parameters: through the pre-trial hooks, checked, actors ordered by class."""

from __future__ import annotations

from typing import Any, Optional

from google.protobuf.message import DecodeError

from cogment.api import common_pb2, hooks_pb2
from cogment.constants import MAX_ACTORS
from cogment.endpoint import SERVICE_ENDPOINT_FORMS, is_actor_endpoint, is_service_endpoint
from cogment.settings import UNKNOWN_ACTOR_CLASS, ActorClassList

from .ending import service_failure
from .runtime import Runtime
from .status import invalid_argument


def _parses(message_type: Optional[type[Any]], content: bytes) -> Optional[str]:
    """None when `content` parses as `message_type`, else what is wrong."""
    if not content or message_type is None:
        return None
    try:
        message_type.FromString(content)
    except (DecodeError, RuntimeError, ValueError) as error:
        return f"does not parse as {message_type.DESCRIPTOR.full_name} ({error})"
    return None


def problems(params: common_pb2.TrialParams, settings: Any) -> list[str]:
    """Everything wrong with `params` for the project `settings` (empty when fine)."""
    found: list[str] = []
    classes: ActorClassList = settings.actor_classes
    env = params.environment
    if not env.endpoint:
        found.append("environment.endpoint is missing")
    elif not is_service_endpoint(env.endpoint):
        found.append(f"environment.endpoint {env.endpoint!r} is not {SERVICE_ENDPOINT_FORMS}")
    error = _parses(settings.environment.config_type, env.config.content)
    if error:
        found.append(f"environment.config {error}")
    error = _parses(settings.trial.config_type, params.trial_config.content)
    if error:
        found.append(f"trial_config {error}")
    if not params.actors:
        found.append("actors is empty (a trial needs at least one actor)")
    if len(params.actors) > MAX_ACTORS:
        found.append(
            f"actors has {len(params.actors)} entries, more than a trial may have ({MAX_ACTORS})"
        )
        return found
    for i, actor in enumerate(params.actors):
        actor_class = classes.get(actor.actor_class)
        if actor_class is None:
            found.append(
                f"actors[{i}].actor_class: "
                + UNKNOWN_ACTOR_CLASS.format(
                    actor_class=actor.actor_class, declared=", ".join(classes.ids)
                )
            )
            continue
        if not is_actor_endpoint(actor.endpoint):
            found.append(
                f"actors[{i}].endpoint {actor.endpoint!r} is not 'human', {SERVICE_ENDPOINT_FORMS}"
            )
        error = _parses(actor_class.config_type, actor.config.content)
        if error:
            found.append(f"actors[{i}].config {error}")
    return found


def check(params: common_pb2.TrialParams, settings: Any, source: str) -> None:
    """Raises INVALID_ARGUMENT naming `source` (e.g. the pre-trial hook) and the problems."""
    found = problems(params, settings)
    if found:
        raise invalid_argument(f"invalid trial parameters from {source}: {'; '.join(found)}")


def sort_actors(params: common_pb2.TrialParams, settings: Any) -> None:
    """Stable-sorts the actors by the position of their class in cogment.yaml (actor ids)."""
    classes: ActorClassList = settings.actor_classes
    ordered = sorted(params.actors, key=lambda a: classes.index_of(a.actor_class))
    if [a.actor_class for a in ordered] == [a.actor_class for a in params.actors]:
        return
    copies = [common_pb2.ActorParams() for _ in ordered]
    for copy, actor in zip(copies, ordered):
        copy.CopyFrom(actor)
    del params.actors[:]
    params.actors.extend(copies)


def actor_counts(params: common_pb2.TrialParams, settings: Any) -> list[int]:
    """Actors per class, in cogment.yaml order."""
    classes: ActorClassList = settings.actor_classes
    counts = [0] * len(classes)
    for actor in params.actors:
        counts[classes.index_of(actor.actor_class)] += 1
    return counts


async def resolve(
    runtime: Runtime, trial_id: str, user_id: str, config: Optional[common_pb2.TrialConfig]
) -> common_pb2.TrialParams:
    """A trial's parameters: the defaults, with the client's trial config if it gave one,
    through every pre-trial hook in order, checked, actors sorted by class, and each service
    pinned to one of its replicas (`Replicas.pin`).

    Raises:
        StatusError: ABORTED, a hook failed or could not be reached; INVALID_ARGUMENT, the
            result is not valid (naming the last hook).
    """
    timeout = runtime.response_timeout
    params = common_pb2.TrialParams()
    params.CopyFrom(runtime.default_params)
    if config is not None:
        params.trial_config.CopyFrom(config)
    source = "the project's trial_params"
    for i, hook in enumerate(runtime.pre_hooks):
        hook = await runtime.replicas.pick(trial_id, hook, f"pre-trial hook {i}")
        context = hooks_pb2.TrialContext(params=params, trial_id=trial_id, user_id=user_id)
        try:
            context = await runtime.endpoints.hooks(hook).PreTrial(context, timeout=timeout)
        except Exception as error:
            raise service_failure(f"pre-trial hook {hook}", "PreTrial", error, timeout) from None
        params = context.params
        source = f"pre-trial hook {hook}"
    check(params, runtime.settings, source)
    sort_actors(params, runtime.settings)
    return await runtime.replicas.pin(trial_id, params)


def client_config(settings: Any, config: common_pb2.TrialConfig) -> None:
    """Checks the trial config a client passed to Start."""
    error = _parses(settings.trial.config_type, config.content)
    if error:
        raise invalid_argument(f"TrialStartRequest.config {error}")


__all__ = ["actor_counts", "check", "client_config", "problems", "resolve", "sort_actors"]
