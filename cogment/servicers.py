"""The unary servicers that adapt user classes to the wire protocol (served by
`cogment.GrpcServer`), and `make_servicer`, which picks them for a user class.

The agent and environment servicers are thin: what each call does is `cogment.service_calls`'
(shared with the streams of `cogment.stream_servicers`); here a `StatusError` it raises ends
the call with its status (`cogment.boundary.handler`).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, Optional

from cogment.agent import Agent
from cogment.api import (
    agent_pb2,
    agent_pb2_grpc,
    environment_pb2,
    environment_pb2_grpc,
    hooks_pb2,
    hooks_pb2_grpc,
    stream_pb2,
)
from cogment.boundary import add_service, handler
from cogment.environment import Environment
from cogment.errors import ConfigurationError, StatusError
from cogment.exporter import LogExporter
from cogment.hooks import TrialHooks
from cogment.protocol import params_from_proto, params_to_proto, version_info
from cogment.service_calls import AgentCalls, EnvironmentCalls, check_result, user_call
from cogment.settings import ActorClass, ActorClassList, Settings
from cogment.stream_servicers import (
    AgentStreamServicer,
    EnvironmentStreamServicer,
    StreamSlots,
    stream_version_entry,
)

_LOG = logging.getLogger("cogment")


def _wanted(context: Any) -> bool:
    """False once the caller gave up on the call (deadline passed, cancelled). (A call given
    up on while it waited for a thread is not run at all: grpc drops it.)"""
    is_active = getattr(context, "is_active", None)
    return is_active is None or bool(is_active())


class _Servicer:
    """What every servicer of a user class shares: the class, its name (in messages), the
    project's settings, and the Version RPC (`versions`: entries added to the class's)."""

    def __init__(
        self, user_type: type[Any], settings: Settings, versions: Optional[dict[str, str]] = None
    ) -> None:
        self._type = user_type
        self._name = user_type.__name__
        self._settings = settings
        self._versions = versions or {}

    @handler
    def Version(self, request: Any, context: Any) -> Any:
        return version_info({**self._versions, **self._type.VERSIONS})


# --------------------------------------------------------------------------- agents


class AgentServicer(_Servicer, agent_pb2_grpc.AgentServicer):
    """Serves one `cogment.Agent` subclass for every actor of its actor class (0.5 unary
    calls); `calls` does the work (shared with the stream servicer, when there is one)."""

    def __init__(
        self,
        agent_type: type[Agent],
        settings: Settings,
        calls: Optional[AgentCalls] = None,
        versions: Optional[dict[str, str]] = None,
    ) -> None:
        super().__init__(agent_type, settings, versions)
        self.calls = calls or AgentCalls(agent_type, settings)

    def end_idle_sessions(self, limit: float) -> int:
        """Ends the sessions not called for `limit` seconds; returns how many."""
        return self.calls.end_idle_sessions(limit)

    @property
    def session_count(self) -> int:
        """The sessions being served."""
        return self.calls.session_count

    @handler
    def Start(self, request: Any, context: Any) -> Any:
        self.calls.start(request)
        return agent_pb2.AgentStartReply()

    @handler
    def Decide(self, request: Any, context: Any) -> Any:
        reply = agent_pb2.AgentDecideReply()
        self.calls.decide(request, reply)
        return reply

    @handler
    def Reward(self, request: Any, context: Any) -> Any:
        self.calls.reward(request)
        return agent_pb2.AgentRewardReply()

    @handler
    def OnMessage(self, request: Any, context: Any) -> Any:
        self.calls.on_message(request)
        return agent_pb2.AgentOnMessageReply()

    @handler
    def End(self, request: Any, context: Any) -> Any:
        self.calls.end(request)
        return agent_pb2.AgentEndReply()


# --------------------------------------------------------------------------- environments


class EnvironmentServicer(_Servicer, environment_pb2_grpc.EnvironmentServicer):
    """Serves one `cogment.Environment` subclass, one instance per trial (0.5 unary calls);
    `calls` does the work (shared with the stream servicer, when there is one)."""

    def __init__(
        self,
        env_type: type[Environment],
        settings: Settings,
        calls: Optional[EnvironmentCalls] = None,
        versions: Optional[dict[str, str]] = None,
    ) -> None:
        super().__init__(env_type, settings, versions)
        self.calls = calls or EnvironmentCalls(env_type, settings)

    def end_idle_sessions(self, limit: float) -> int:
        """Ends the sessions not called for `limit` seconds; returns how many."""
        return self.calls.end_idle_sessions(limit)

    @property
    def session_count(self) -> int:
        """The sessions being served."""
        return self.calls.session_count

    @handler
    def Start(self, request: Any, context: Any) -> Any:
        reply = environment_pb2.EnvStartReply()
        self.calls.start(request, reply)
        return reply

    @handler
    def Update(self, request: Any, context: Any) -> Any:
        reply = environment_pb2.EnvUpdateReply()
        self.calls.update(request, reply)
        return reply

    @handler
    def OnMessage(self, request: Any, context: Any) -> Any:
        self.calls.on_message(request)
        return environment_pb2.EnvOnMessageReply()

    @handler
    def End(self, request: Any, context: Any) -> Any:
        self.calls.end(request)
        return environment_pb2.EnvEndReply()


# --------------------------------------------------------------------------- hooks


class TrialHooksServicer(_Servicer, hooks_pb2_grpc.TrialHooksServicer):
    """Serves one `cogment.TrialHooks` subclass: one instance, whose `pre_trial` runs for
    several trials at once (one call per trial)."""

    def __init__(self, hooks_type: type[TrialHooks], settings: Settings) -> None:
        super().__init__(hooks_type, settings)
        self._hooks = hooks_type()

    @handler
    def PreTrial(self, request: Any, context: Any) -> Any:
        trial_id = request.trial_id
        params = params_from_proto(request.params, self._settings)
        result = user_call(
            self._name,
            "pre_trial",
            trial_id,
            self._hooks.pre_trial,
            trial_id,
            request.user_id,
            params,
        )
        if not _wanted(context):
            _LOG.info(
                "%s.pre_trial of trial %s finished after the orchestrator gave up on it; "
                "its result is discarded",
                self._name,
                trial_id,
            )
        try:
            encoded = params_to_proto(params if result is None else result, self._settings)
        except StatusError as error:
            raise check_result(self._name, "pre_trial", trial_id, error) from None
        return hooks_pb2.TrialContext(params=encoded, trial_id=trial_id, user_id=request.user_id)


# --------------------------------------------------------------------------- choosing one


def _check_agent_type(agent_type: type[Agent], actor_classes: ActorClassList) -> None:
    name = agent_type.__name__
    actor_class = getattr(agent_type, "actor_class", None)
    if not isinstance(actor_class, ActorClass):
        what = "is not set" if actor_class is None else f"is {actor_class!r}, not an ActorClass"
        raise ConfigurationError(
            f"{name}.actor_class {what}: set it to cog_settings.actor_classes.<id> "
            f"(one of: {', '.join(actor_classes.ids)})"
        )
    if actor_classes.get(actor_class.id) is None:
        raise ConfigurationError(
            f"{name}.actor_class {actor_class.id!r} is not an actor class of the project "
            f"(expected one of: {', '.join(actor_classes.ids)})"
        )


def _adder(module: Any, service: str) -> Callable[[Any, Any], None]:
    """What adds a servicer of `service` (of the proto `module`) to a grpc server."""
    descriptor = module.DESCRIPTOR.services_by_name[service]
    return lambda servicer, server: add_service(server, descriptor, servicer)


def _with_stream(
    unary: Callable[[Any, Any], None], service: str, stream_servicer: Any
) -> Callable[[Any, Any], None]:
    """What adds a unary servicer (with `unary`) and the stream servicer of `service`."""
    add_stream = _adder(stream_pb2, service)

    def add(servicer: Any, server: Any) -> None:
        unary(servicer, server)
        add_stream(stream_servicer, server)

    return add


def make_servicer(
    service_type: Any, settings: Any, streams: Optional[StreamSlots] = None
) -> tuple[Any, Callable[[Any, Any], None]]:
    """The servicer for a user class, and the function that adds it to a grpc server (with
    `streams`, an agent or environment is also served on cogment-py's streams, at most
    `streams.limit` at once)."""
    if not isinstance(getattr(settings, "actor_classes", None), ActorClassList):
        raise ConfigurationError(
            "GrpcServer: settings must be the project's generated cog_settings module "
            f"(with actor_classes, trial and environment), got {settings!r}"
        )
    bases = "cogment.Agent, cogment.Environment, cogment.TrialHooks or cogment.LogExporter"
    if not isinstance(service_type, type):
        raise ConfigurationError(
            f"GrpcServer: expected a class (a subclass of {bases}), got {service_type!r}"
        )
    name = service_type.__name__
    if inspect.isabstract(service_type):
        missing = ", ".join(sorted(getattr(service_type, "__abstractmethods__", ())))
        raise ConfigurationError(
            f"GrpcServer: {name} cannot be served: it does not implement {missing}"
        )
    if issubclass(service_type, Agent):
        _check_agent_type(service_type, settings.actor_classes)
        agent_calls = AgentCalls(service_type, settings)
        add_agent = _adder(agent_pb2, "Agent")
        if streams is None:
            return AgentServicer(service_type, settings, agent_calls), add_agent
        versions = stream_version_entry("AgentStream")
        agent_stream = AgentStreamServicer(agent_calls, streams, versions)
        return (
            AgentServicer(service_type, settings, agent_calls, versions),
            _with_stream(add_agent, "AgentStream", agent_stream),
        )
    if issubclass(service_type, Environment):
        env_calls = EnvironmentCalls(service_type, settings)
        add_env = _adder(environment_pb2, "Environment")
        if streams is None:
            return EnvironmentServicer(service_type, settings, env_calls), add_env
        versions = stream_version_entry("EnvironmentStream")
        env_stream = EnvironmentStreamServicer(env_calls, streams, versions)
        return (
            EnvironmentServicer(service_type, settings, env_calls, versions),
            _with_stream(add_env, "EnvironmentStream", env_stream),
        )
    if issubclass(service_type, TrialHooks):
        return (
            TrialHooksServicer(service_type, settings),
            _adder(hooks_pb2, "TrialHooks"),
        )
    if issubclass(service_type, LogExporter):
        from cogment.log_servicer import LogExporterServicer, add_log_exporter

        return LogExporterServicer(service_type, settings, user_call), add_log_exporter
    raise ConfigurationError(f"GrpcServer: {name} is not a subclass of {bases}")
