"""The servicers that adapt user classes to the wire protocol (served by `cogment.GrpcServer`).

The servicers are thin: they find the user instance of a call, unpack the request with
`cogment.protocol`, call the user method under the instance's lock (so one instance never
runs two methods at once), and pack the reply. Every failure ends the call with an explicit
status: NOT_FOUND for an unknown trial/actor, INVALID_ARGUMENT for a malformed request,
FAILED_PRECONDITION for an update after the trial ended, INTERNAL for a user exception or
an unusable user result (logged with its traceback on the "cogment" logger).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import time
from typing import Any, Callable

import grpc

from cogment.agent import Agent
from cogment.api import (
    agent_pb2,
    agent_pb2_grpc,
    environment_pb2,
    environment_pb2_grpc,
    hooks_pb2,
    hooks_pb2_grpc,
)
from cogment.boundary import add_service, handler
from cogment.delta import actions_table_type
from cogment.environment import Environment
from cogment.errors import ConfigurationError, StatusError
from cogment.exporter import LogExporter
from cogment.hooks import TrialHooks
from cogment.protocol import (
    SnapshotKeeper,
    actor_class_list,
    check_actor_counts,
    class_of_actor,
    decode_config,
    pack_observations,
    params_from_proto,
    params_to_proto,
    parse_actions,
    unpack_observation,
    version_info,
)
from cogment.sessions import Sessions
from cogment.settings import ActorClass, ActorClassList, Settings
from cogment.trial import ServiceTrial

_LOG = logging.getLogger("cogment")


def _user_call(owner: str, method: str, trial_id: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Calls user code; an exception becomes INTERNAL naming class, method and trial."""
    try:
        return fn(*args)
    except Exception as error:
        text = f"{owner}.{method} failed in trial {trial_id}: {type(error).__name__}: {error}"
        _LOG.error(text, exc_info=True)
        raise StatusError(grpc.StatusCode.INTERNAL, text) from error


IDLE_SESSION = (
    "{owner}: trial {trial_id}{actor} was not called for {limit:g} s (its orchestrator is gone?): "
    "ending it"
)


def _end_idle(owner: str, sessions: Sessions[Any, Any], limit: float) -> int:
    """Ends (with the user's `end()`) the sessions not called for `limit` seconds; returns
    how many."""
    idle = sessions.pop_idle(limit)
    for key, session in idle:
        trial_id, actor = (key[0], f" actor {key[1]}") if isinstance(key, tuple) else (key, "")
        _LOG.warning(IDLE_SESSION.format(owner=owner, trial_id=trial_id, actor=actor, limit=limit))
        with session.lock, contextlib.suppress(StatusError):  # (logged by _user_call)
            _user_call(owner, "end", trial_id, session.user.end)
    return len(idle)


def _wanted(context: Any) -> bool:
    """False once the caller gave up on the call (deadline passed, cancelled). (A call given
    up on while it waited for a thread is not run at all: grpc drops it.)"""
    is_active = getattr(context, "is_active", None)
    return is_active is None or bool(is_active())


def _trial_config(settings: Settings, request: Any) -> Any:
    """The decoded trial config of a Start request (None when absent)."""
    what = f"trial {request.trial_id}: trial_config"
    return decode_config(settings.trial.config_type, request, "trial_config", what)


def _check_result(owner: str, method: str, trial_id: str, error: StatusError) -> StatusError:
    return StatusError(error.code, f"{owner}.{method} in trial {trial_id}: {error.message}")


# --------------------------------------------------------------------------- agents


class _Servicer:
    """What every servicer of a user class shares: the class, its name (in messages), the
    project's settings, and the Version RPC."""

    def __init__(self, user_type: type[Any], settings: Settings) -> None:
        self._type = user_type
        self._name = user_type.__name__
        self._settings = settings

    @handler
    def Version(self, request: Any, context: Any) -> Any:
        return version_info(self._type.VERSIONS)


class _SessionServicer(_Servicer):
    """A servicer holding one session per trial (or per trial and actor) in `_sessions`."""

    _sessions: Sessions[Any, Any]

    def end_idle_sessions(self, limit: float) -> int:
        """Ends the sessions not called for `limit` seconds; returns how many."""
        return _end_idle(self._name, self._sessions, limit)

    @property
    def session_count(self) -> int:
        """The sessions being served."""
        return len(self._sessions)


class _AgentSession:
    __slots__ = ("actor_class", "agent", "lock", "observation", "trial")

    @property
    def user(self) -> Agent:
        return self.agent

    def __init__(self, agent: Agent, trial: ServiceTrial, actor_class: ActorClass) -> None:
        self.agent = agent
        self.trial = trial
        self.actor_class = actor_class
        self.lock = threading.Lock()
        self.observation: Any = None


class AgentServicer(_SessionServicer, agent_pb2_grpc.AgentServicer):
    """Serves one `cogment.Agent` subclass for every actor of its actor class."""

    def __init__(self, agent_type: type[Agent], settings: Settings) -> None:
        super().__init__(agent_type, settings)
        self._class_id = agent_type.actor_class.id
        self._sessions: Sessions[tuple[str, int], _AgentSession] = Sessions(
            unknown=lambda key: f"trial {key[0]}: no actor {key[1]} on this agent service",
            duplicate=lambda key: f"trial {key[0]}: actor {key[1]} was already started",
        )

    @handler
    def Start(self, request: Any, context: Any) -> Any:
        trial_id, actor_id = request.trial_id, request.actor_id
        settings = self._settings
        actor_class, _ = class_of_actor(
            settings.actor_classes, request.actor_counts, actor_id, trial_id
        )
        if actor_class.id != self._class_id:
            raise StatusError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"trial {trial_id}: actor {actor_id} is of class {actor_class.id!r}, "
                f"but {self._name} serves class {self._class_id!r}",
            )
        self._sessions.check_new((trial_id, actor_id))
        what = f"trial {trial_id}: actor {actor_id}"
        config = decode_config(actor_class.config_type, request, "config", f"{what}: config")
        trial_config = _trial_config(settings, request)
        trial = ServiceTrial(
            trial_id, settings, request.actor_counts, trial_config, sender_id=actor_id
        )
        actor = trial.actors.all[actor_id]
        agent = _user_call(self._name, "__init__", trial_id, self._type, trial, actor, config)
        if not hasattr(agent, "trial"):  # an __init__ override that forgot super().__init__
            Agent.__init__(agent, trial, actor, config)
        self._sessions.add((trial_id, actor_id), _AgentSession(agent, trial, actor_class))
        return agent_pb2.AgentStartReply()

    @handler
    def Decide(self, request: Any, context: Any) -> Any:
        trial_id = request.trial_id
        with self._sessions.use((trial_id, request.actor_id)) as session, session.lock:
            trial, actor_class = session.trial, session.actor_class
            observation = request.observation
            full = unpack_observation(
                actor_class,
                observation.data,
                session.observation,
                f"trial {trial_id}: observation of actor {request.actor_id}",
            )
            session.observation = full
            mark = trial.begin_tick(observation.tick_id)
            action = _user_call(self._name, "decide", trial_id, session.agent.decide, full)
            if not isinstance(action, actor_class.action_space):
                raise StatusError(
                    grpc.StatusCode.INTERNAL,
                    f"{self._name}.decide in trial {trial_id} returned "
                    f"{type(action).__name__}, expected {actor_class.action_space.__name__} "
                    f"(the action space of {actor_class.id!r})",
                )
            reply = agent_pb2.AgentDecideReply()
            reply.action.content = action.SerializeToString()
            feedbacks, messages = trial.take_outgoing(mark)
            if feedbacks:
                reply.feedbacks.extend(feedbacks)
            if messages:
                reply.messages.extend(messages)
            return reply

    @handler
    def Reward(self, request: Any, context: Any) -> Any:
        with self._sessions.use((request.trial_id, request.actor_id)) as session, session.lock:
            _user_call(self._name, "reward", request.trial_id, session.agent.reward, request.reward)
        return agent_pb2.AgentRewardReply()

    @handler
    def OnMessage(self, request: Any, context: Any) -> Any:
        messages = agent_pb2.MessageCollection(messages=request.messages)
        with self._sessions.use((request.trial_id, request.actor_id)) as session, session.lock:
            _user_call(
                self._name, "on_message", request.trial_id, session.agent.on_message, messages
            )
        return agent_pb2.AgentOnMessageReply()

    @handler
    def End(self, request: Any, context: Any) -> Any:
        trial_id = request.trial_id
        session = self._sessions.pop((trial_id, request.actor_id))
        with session.lock:
            _user_call(self._name, "end", trial_id, session.agent.end)
        return agent_pb2.AgentEndReply()


# --------------------------------------------------------------------------- environments


class _EnvSession:
    __slots__ = ("classes", "ended", "env", "keeper", "lock", "trial")

    @property
    def user(self) -> Environment:
        return self.env

    def __init__(self, env: Environment, trial: ServiceTrial, classes: list[ActorClass]) -> None:
        self.env = env
        self.trial = trial
        self.classes = classes
        self.keeper = SnapshotKeeper(classes)
        self.lock = threading.Lock()
        self.ended = False


class EnvironmentServicer(_SessionServicer, environment_pb2_grpc.EnvironmentServicer):
    """Serves one `cogment.Environment` subclass, one instance per trial."""

    def __init__(self, env_type: type[Environment], settings: Settings) -> None:
        super().__init__(env_type, settings)
        self._actions_table = getattr(settings, "ActionsTable", None) or actions_table_type(
            settings.actor_classes
        )
        self._sessions: Sessions[str, _EnvSession] = Sessions(
            unknown=lambda trial_id: f"trial {trial_id} not found on this environment service",
            duplicate=lambda trial_id: f"trial {trial_id} was already started",
        )

    def _pack(self, session: _EnvSession, method: str, value: Any, allow_deltas: bool) -> Any:
        try:
            packed = pack_observations(value, session.classes, allow_deltas=allow_deltas)
            session.keeper.record(packed)
        except StatusError as error:
            raise _check_result(self._name, method, session.trial.id, error) from None
        return packed

    @handler
    def Start(self, request: Any, context: Any) -> Any:
        trial_id, settings = request.trial_id, self._settings
        counts = list(request.actor_counts)
        check_actor_counts(settings.actor_classes, counts, trial_id)
        self._sessions.check_new(trial_id)
        config = decode_config(
            settings.environment.config_type,
            request,
            "config",
            f"trial {trial_id}: environment config",
        )
        trial_config = _trial_config(settings, request)
        trial = ServiceTrial(trial_id, settings, counts, trial_config)
        env = _user_call(self._name, "__init__", trial_id, self._type, trial)
        if not hasattr(env, "trial"):  # an __init__ override that forgot super().__init__
            Environment.__init__(env, trial)
        session = _EnvSession(env, trial, actor_class_list(settings.actor_classes, counts))
        with session.lock:
            value = _user_call(self._name, "start", trial_id, env.start, config)
            packed = self._pack(session, "start", value, False)
        self._sessions.add(trial_id, session)
        reply = environment_pb2.EnvStartReply()
        packed.fill(reply.observation_set, 0, time.time_ns())
        return reply

    @handler
    def Update(self, request: Any, context: Any) -> Any:
        trial_id = request.trial_id
        with self._sessions.use(trial_id) as session, session.lock:
            trial, env = session.trial, session.env
            if session.ended:
                raise StatusError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"trial {trial_id} has ended: {self._name} set end_trial at tick "
                    f"{trial.tick_id - 1}; no more updates",
                )
            actions = parse_actions(
                request.action_set,
                session.classes,
                trial.actor_counts,
                self._actions_table,
                trial_id,
            )
            tick_id = trial.tick_id
            mark = trial.begin_tick(tick_id)
            value = _user_call(self._name, "update", trial_id, env.update, actions)
            packed = self._pack(session, "update", value, True)
            if request.reply_with_snapshot:
                packed = session.keeper.snapshots()
            feedbacks, messages = trial.take_outgoing(mark)
            trial.advance()
            reply = environment_pb2.EnvUpdateReply()
            packed.fill(reply.observation_set, tick_id + 1, time.time_ns())
            if feedbacks:
                reply.feedbacks.extend(feedbacks)
            if messages:
                reply.messages.extend(messages)
            if env.end_trial:
                reply.end_trial = session.ended = True
            return reply

    @handler
    def OnMessage(self, request: Any, context: Any) -> Any:
        messages = agent_pb2.MessageCollection(messages=request.messages)
        with self._sessions.use(request.trial_id) as session, session.lock:
            _user_call(self._name, "on_message", request.trial_id, session.env.on_message, messages)
        return environment_pb2.EnvOnMessageReply()

    @handler
    def End(self, request: Any, context: Any) -> Any:
        session = self._sessions.pop(request.trial_id)
        with session.lock:
            session.ended = True
            _user_call(self._name, "end", request.trial_id, session.env.end)
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
        result = _user_call(
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
            raise _check_result(self._name, "pre_trial", trial_id, error) from None
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


def make_servicer(service_type: Any, settings: Any) -> tuple[Any, Callable[[Any, Any], None]]:
    """The servicer for a user class, and the function that adds it to a grpc server."""
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
        return AgentServicer(service_type, settings), _adder(agent_pb2, "Agent")
    if issubclass(service_type, Environment):
        return (
            EnvironmentServicer(service_type, settings),
            _adder(environment_pb2, "Environment"),
        )
    if issubclass(service_type, TrialHooks):
        return (
            TrialHooksServicer(service_type, settings),
            _adder(hooks_pb2, "TrialHooks"),
        )
    if issubclass(service_type, LogExporter):
        from cogment.log_servicer import LogExporterServicer, add_log_exporter

        return LogExporterServicer(service_type, settings, _user_call), add_log_exporter
    raise ConfigurationError(f"GrpcServer: {name} is not a subclass of {bases}")
