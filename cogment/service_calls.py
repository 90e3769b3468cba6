"""What each call to an agent or environment service does, whatever carries it.

`AgentCalls` and `EnvironmentCalls` hold a service's sessions (one user instance per agent
actor, or per environment trial) and do one call each: find the session, unpack the request
with `cogment.protocol`, call the user method under the session's lock (so one instance never
runs two methods at once), and fill the reply. They raise `cogment.errors.StatusError` where a
call goes wrong: NOT_FOUND for an unknown trial/actor, INVALID_ARGUMENT for a malformed
request, FAILED_PRECONDITION for an update after the trial ended, INTERNAL for a user
exception or an unusable user result (logged with its traceback on the "cogment" logger).

Two transports use them: the 0.5 unary servicers (`cogment.servicers`), where the status ends
the call, and cogment-py's streams (`cogment.stream_servicers`), where it is the reply.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable

import grpc

from cogment.agent import Agent
from cogment.api import agent_pb2
from cogment.delta import actions_table_type
from cogment.environment import Environment
from cogment.errors import StatusError
from cogment.protocol import (
    SnapshotKeeper,
    actor_class_list,
    check_actor_counts,
    class_of_actor,
    decode_config,
    pack_observations,
    parse_actions,
    unpack_observation,
)
from cogment.sessions import Sessions
from cogment.settings import ActorClass, Settings
from cogment.trial import ServiceTrial

_LOG = logging.getLogger("cogment")

IDLE_SESSION = (
    "{owner}: trial {trial_id}{actor} was not called for {limit:g} s (its orchestrator is gone?): "
    "ending it"
)


def user_call(owner: str, method: str, trial_id: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Calls user code; an exception becomes INTERNAL naming class, method and trial."""
    try:
        return fn(*args)
    except Exception as error:
        text = f"{owner}.{method} failed in trial {trial_id}: {type(error).__name__}: {error}"
        _LOG.error(text, exc_info=True)
        raise StatusError(grpc.StatusCode.INTERNAL, text) from error


def _trial_config(settings: Settings, request: Any) -> Any:
    """The decoded trial config of a Start request (None when absent)."""
    what = f"trial {request.trial_id}: trial_config"
    return decode_config(settings.trial.config_type, request, "trial_config", what)


def check_result(owner: str, method: str, trial_id: str, error: StatusError) -> StatusError:
    """A StatusError about what a user method returned, naming that method."""
    return StatusError(error.code, f"{owner}.{method} in trial {trial_id}: {error.message}")


class _Calls:
    """What the calls of a service share: the user class, its name (in messages), the
    project's settings, and the sessions (`_sessions`, set by the subclass)."""

    _sessions: Sessions[Any, Any]

    def __init__(self, user_type: type[Any], settings: Settings) -> None:
        self.user_type = user_type
        self.name = user_type.__name__
        self._settings = settings

    def end_idle_sessions(self, limit: float) -> int:
        """Ends (with the user's `end()`) the sessions not called for `limit` seconds;
        returns how many."""
        idle = self._sessions.pop_idle(limit)
        for key, session in idle:
            trial_id, actor = (key[0], f" actor {key[1]}") if isinstance(key, tuple) else (key, "")
            _LOG.warning(
                IDLE_SESSION.format(owner=self.name, trial_id=trial_id, actor=actor, limit=limit)
            )
            self._end_session(session, trial_id)
        return len(idle)

    def end_abandoned(self, key: Any) -> None:
        """Ends the session of `key`, if it still has one, as `End` would: its stream closed
        without `End` (the orchestrator went away). Never raises."""
        try:
            session = self._sessions.pop(key)
        except StatusError:
            return  # ended already (End, or idle)
        trial_id = key[0] if isinstance(key, tuple) else key
        _LOG.info("%s: the stream of trial %s closed without End: ending it", self.name, key)
        self._end_session(session, trial_id)

    def _end_session(self, session: Any, trial_id: str) -> None:
        with session.lock, contextlib.suppress(StatusError):  # (logged by user_call)
            session.ended = True
            user_call(self.name, "end", trial_id, session.user.end)

    @property
    def session_count(self) -> int:
        """The sessions being served."""
        return len(self._sessions)


# --------------------------------------------------------------------------- agents


class _AgentSession:
    __slots__ = ("actor_class", "agent", "ended", "lock", "observation", "trial")

    @property
    def user(self) -> Agent:
        return self.agent

    def __init__(self, agent: Agent, trial: ServiceTrial, actor_class: ActorClass) -> None:
        self.agent = agent
        self.trial = trial
        self.actor_class = actor_class
        self.lock = threading.Lock()
        self.observation: Any = None
        self.ended = False


class AgentCalls(_Calls):
    """The calls of one `cogment.Agent` subclass, for every actor of its actor class."""

    def __init__(self, agent_type: type[Agent], settings: Settings) -> None:
        super().__init__(agent_type, settings)
        self.class_id = agent_type.actor_class.id
        self._sessions: Sessions[tuple[str, int], _AgentSession] = Sessions(
            unknown=lambda key: f"trial {key[0]}: no actor {key[1]} on this agent service",
            duplicate=lambda key: f"trial {key[0]}: actor {key[1]} was already started",
        )

    def start(self, request: agent_pb2.AgentStartRequest) -> tuple[str, int]:
        """Makes the actor's user instance; returns its session's key."""
        trial_id, actor_id = request.trial_id, request.actor_id
        settings = self._settings
        actor_class, _ = class_of_actor(
            settings.actor_classes, request.actor_counts, actor_id, trial_id
        )
        if actor_class.id != self.class_id:
            raise StatusError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"trial {trial_id}: actor {actor_id} is of class {actor_class.id!r}, "
                f"but {self.name} serves class {self.class_id!r}",
            )
        key = (trial_id, actor_id)
        self._sessions.check_new(key)
        what = f"trial {trial_id}: actor {actor_id}"
        config = decode_config(actor_class.config_type, request, "config", f"{what}: config")
        trial_config = _trial_config(settings, request)
        trial = ServiceTrial(
            trial_id, settings, request.actor_counts, trial_config, sender_id=actor_id
        )
        actor = trial.actors.all[actor_id]
        agent = user_call(self.name, "__init__", trial_id, self.user_type, trial, actor, config)
        if not hasattr(agent, "trial"):  # an __init__ override that forgot super().__init__
            Agent.__init__(agent, trial, actor, config)
        self._sessions.add(key, _AgentSession(agent, trial, actor_class))
        return key

    def decide(
        self, request: agent_pb2.AgentDecideRequest, reply: agent_pb2.AgentDecideReply
    ) -> None:
        """Fills `reply` (empty) with the actor's action, feedback and messages."""
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
            action = user_call(self.name, "decide", trial_id, session.agent.decide, full)
            if not isinstance(action, actor_class.action_space):
                raise StatusError(
                    grpc.StatusCode.INTERNAL,
                    f"{self.name}.decide in trial {trial_id} returned "
                    f"{type(action).__name__}, expected {actor_class.action_space.__name__} "
                    f"(the action space of {actor_class.id!r})",
                )
            reply.action.content = action.SerializeToString()
            feedbacks, messages = trial.take_outgoing(mark)
            if feedbacks:
                reply.feedbacks.extend(feedbacks)
            if messages:
                reply.messages.extend(messages)

    def reward(self, request: agent_pb2.AgentRewardRequest) -> None:
        with self._sessions.use((request.trial_id, request.actor_id)) as session, session.lock:
            user_call(self.name, "reward", request.trial_id, session.agent.reward, request.reward)

    def on_message(self, request: agent_pb2.AgentOnMessageRequest) -> None:
        messages = agent_pb2.MessageCollection(messages=request.messages)
        with self._sessions.use((request.trial_id, request.actor_id)) as session, session.lock:
            user_call(self.name, "on_message", request.trial_id, session.agent.on_message, messages)

    def end(self, request: agent_pb2.AgentEndRequest) -> None:
        trial_id = request.trial_id
        session = self._sessions.pop((trial_id, request.actor_id))
        with session.lock:
            session.ended = True
            user_call(self.name, "end", trial_id, session.agent.end)


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


class EnvironmentCalls(_Calls):
    """The calls of one `cogment.Environment` subclass, one instance per trial."""

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
            raise check_result(self.name, method, session.trial.id, error) from None
        return packed

    def start(self, request: Any, reply: Any) -> str:
        """Makes the trial's user instance and fills `reply` (an empty EnvStartReply) with
        its first observations; returns its session's key."""
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
        env = user_call(self.name, "__init__", trial_id, self.user_type, trial)
        if not hasattr(env, "trial"):  # an __init__ override that forgot super().__init__
            Environment.__init__(env, trial)
        session = _EnvSession(env, trial, actor_class_list(settings.actor_classes, counts))
        with session.lock:
            value = user_call(self.name, "start", trial_id, env.start, config)
            packed = self._pack(session, "start", value, False)
        self._sessions.add(trial_id, session)
        packed.fill(reply.observation_set, 0, time.time_ns())
        return trial_id

    def update(self, request: Any, reply: Any) -> None:
        """Fills `reply` (an empty EnvUpdateReply) with the next tick's observations, and
        the feedback, messages and end flag of the update."""
        trial_id = request.trial_id
        with self._sessions.use(trial_id) as session, session.lock:
            trial, env = session.trial, session.env
            if session.ended:
                raise StatusError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"trial {trial_id} has ended: {self.name} set end_trial at tick "
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
            value = user_call(self.name, "update", trial_id, env.update, actions)
            packed = self._pack(session, "update", value, True)
            if request.reply_with_snapshot:
                packed = session.keeper.snapshots()
            feedbacks, messages = trial.take_outgoing(mark)
            trial.advance()
            packed.fill(reply.observation_set, tick_id + 1, time.time_ns())
            if feedbacks:
                reply.feedbacks.extend(feedbacks)
            if messages:
                reply.messages.extend(messages)
            if env.end_trial:
                reply.end_trial = session.ended = True

    def on_message(self, request: Any) -> None:
        messages = agent_pb2.MessageCollection(messages=request.messages)
        with self._sessions.use(request.trial_id) as session, session.lock:
            user_call(self.name, "on_message", request.trial_id, session.env.on_message, messages)

    def end(self, request: Any) -> None:
        session = self._sessions.pop(request.trial_id)
        with session.lock:
            session.ended = True
            user_call(self.name, "end", request.trial_id, session.env.end)
