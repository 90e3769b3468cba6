"""`TabSession`: one browser tab, relayed to the orchestrator by one `cogment.client.Connection`.

A tab is a client like any other: its `Connection` (with the tab's session id) starts or
joins a trial, acts with the blocking `do_action` over an action stream, and sends feedback
and messages. The blocking calls run on the bridge's thread pool, never on its event loop.
A tab plays at most one trial at a time and has at most one action under way.

The session holds no trial state of its own: the trial lives in the orchestrator. When the
tab goes away, its Connection closes (heartbeats stop; the trial's `max_inactivity` applies),
and a tab that comes back with the same session id can join its slot again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable
from concurrent.futures import Executor
from typing import Any, Callable, Optional, Union

import grpc

from cogment.client import DEFAULT_HEARTBEAT_INTERVAL, ActionResult, ClientTrial, Connection
from cogment.errors import (
    CogmentError,
    CogmentRpcError,
    ConfigurationError,
    TrialEndedError,
    TrialError,
    is_trial_failure,
    trial_end_reason,
)
from cogment.web import convert
from cogment.web import protocol as p
from cogment.web.protocol import ProtocolError, RequestId

log = logging.getLogger("cogment.web")

# a frame to send: a dict, or one already serialized (by a worker thread)
Frame = Union[dict[str, Any], str]
Send = Callable[[Frame], Awaitable[None]]

ENVIRONMENT = "environment"  # the name of receiver -1 in a message's "to"
CLOSE_WAIT = 10.0  # seconds a closing tab waits for its action under way


def dumps(frame: dict[str, Any]) -> str:
    """A frame as JSON text (compact; non-ASCII text kept as is)."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


class TabSession:
    """One tab's client: its requests in, its trial's events out.

    Args:
        settings: the project's cog_settings.
        orchestrator: the orchestrator's `host:port`.
        session_id: the tab's session id (its Connection's).
        executor: the bridge's thread pool, where blocking client calls run.
        send: sends a frame to the tab (a coroutine function; never raises).
        project: the project description sent in `welcome` (`convert.describe_project`).
        heartbeat_interval: seconds between the heartbeats of the tab's idle trial.
        tls_ca: for an orchestrator at `grpcs://`, the PEM file its certificate is checked
            against (None: the system's roots).
    """

    def __init__(
        self,
        settings: Any,
        orchestrator: str,
        session_id: str,
        executor: Executor,
        send: Send,
        project: dict[str, Any],
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        tls_ca: Optional[str] = None,
    ) -> None:
        self._settings = settings
        self._executor = executor
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._connection = Connection(
            settings,
            orchestrator,
            session_id=session_id,
            heartbeat_interval=heartbeat_interval,
            tls_ca=tls_ca,
        )
        self._project = project
        self._trial: Optional[ClientTrial] = None
        self._acting: Optional[asyncio.Task[None]] = None
        self._ended: set[str] = set()  # trials whose `end` frame went out
        self._tasks: set[asyncio.Future[None]] = set()  # end frames on their way
        self._closed = False
        self.session_id = session_id

    @property
    def trial(self) -> Optional[ClientTrial]:
        """The trial this tab plays (or played last), if any."""
        return self._trial

    def welcome(self, max_frame: int) -> dict[str, Any]:
        """The first frame a tab gets."""
        return {
            "type": p.WELCOME,
            "protocol": p.PROTOCOL_VERSION,
            "session_id": self.session_id,
            "project": self._project,
            "max_frame": max_frame,
        }

    # ------------------------------------------------------------------ requests

    async def handle(self, frame: Any) -> None:
        """Handles one request frame (a parsed JSON value); answers it or sends an error.

        `act` is answered later (its tick comes when every actor has acted): this returns
        as soon as the action is under way, so the tab can still end the trial meanwhile.
        """
        kind: Optional[str] = None
        rid: RequestId = None
        try:
            kind = p.request_type(frame)
            rid = p.request_id(frame)
            handler = self._handlers[kind]
            await handler(self, frame, rid)
        except ProtocolError as problem:
            await self._send(p.error(problem.code, problem.message, rid, kind))
        except Exception as failure:
            await self._send(self._error_of(failure, rid, kind))

    async def _start(self, frame: dict[str, Any], rid: RequestId) -> None:
        self._check_free()
        actor_class = self._class_named(
            p.field(frame, "actor_class", str, required=False) or self._default_class()
        )
        config = None
        raw_config = p.field(frame, "config", dict, required=False)
        if raw_config is not None:
            config_type = getattr(self._settings.trial, "config_type", None)
            if config_type is None:
                raise ProtocolError(
                    p.BAD_REQUEST,
                    "start: 'config' given but the project declares no trial config type",
                )
            config = convert.from_json(raw_config, config_type, "start: config")
        user_id = p.field(frame, "user_id", str, required=False, default="")
        kwargs: dict[str, Any] = {"trial_cfg": config}
        if user_id:
            kwargs["user_id"] = user_id
        trial = await self._blocking(self._connection.start_trial, actor_class, **kwargs)
        await self._adopt(trial, rid)

    async def _join(self, frame: dict[str, Any], rid: RequestId) -> None:
        self._check_free()
        trial_id = p.field(frame, "trial_id", str)
        actor_id = p.field(frame, "actor_id", int)
        named = p.field(frame, "actor_class", str, required=False)
        actor_class = self._class_named(named) if named else self._default_class(actor_id)
        trial = await self._blocking(self._connection.join_trial, actor_class, trial_id, actor_id)
        await self._adopt(trial, rid)

    async def _act(self, frame: dict[str, Any], rid: RequestId) -> None:
        trial = self._playing(p.ACT)
        if self._acting is not None:
            raise ProtocolError(
                p.ACTION_PENDING,
                f"act: the action for tick {trial.tick_id} is still waiting for its tick "
                "(one action at a time: wait for its `tick`)",
            )
        assert trial.actor_class is not None
        action = convert.from_json(
            p.field(frame, "action", dict), trial.actor_class.action_space, "act: action"
        )
        self._acting = asyncio.ensure_future(self._run_act(trial, action, rid))

    async def _run_act(self, trial: ClientTrial, action: Any, rid: RequestId) -> None:
        try:
            frame = await self._blocking(self._act_blocking, trial, action, rid)
        except Exception as failure:
            frame = self._error_of(failure, rid, p.ACT)
        finally:
            self._acting = None
        await self._send(frame)
        await self._send_end(trial)

    def _act_blocking(self, trial: ClientTrial, action: Any, rid: RequestId) -> Frame:
        """(worker thread) The action, then its tick frame, serialized."""
        tick_before = trial.tick_id
        result = trial.do_action(action)
        if trial.is_over and trial.tick_id == tick_before:  # no new tick: ended meanwhile
            raise TrialEndedError(f"trial {trial.id} is over ({trial.end_reason})")
        return dumps(p.answer(tick_frame(trial, result), rid))

    async def _feedback(self, frame: dict[str, Any], rid: RequestId) -> None:
        trial = self._playing(p.FEEDBACK)
        receivers = self._receivers(trial, frame, environment=False)
        value = p.field(frame, "value", (int, float))
        confidence = p.field(frame, "confidence", (int, float), required=False, default=1.0)
        tick_id = p.field(frame, "tick_id", int, required=False, default=-1)
        raw = p.field(frame, "user_data", dict, required=False)
        user_data = convert.payload_from_json(raw, "feedback: user_data") if raw else None
        try:
            for actor_id in receivers:
                trial.actors[actor_id].add_feedback(
                    value=float(value),
                    confidence=float(confidence),
                    tick_id=tick_id,
                    user_data=user_data,
                )
        except ValueError as problem:
            raise ProtocolError(p.BAD_REQUEST, f"feedback: {problem}") from None
        await self._blocking(trial.flush_feedback)
        await self._send(p.answer({"type": p.SENT, "count": len(receivers)}, rid))

    async def _message(self, frame: dict[str, Any], rid: RequestId) -> None:
        trial = self._playing(p.MESSAGE)
        receivers = self._receivers(trial, frame, environment=True)
        payload = convert.payload_from_json(p.field(frame, "payload", dict), "message: payload")
        try:
            trial.multi_cast(payload, receivers)
        except (TypeError, ValueError) as problem:
            raise ProtocolError(p.BAD_REQUEST, f"message: {problem}") from None
        await self._blocking(trial.flush_message)
        await self._send(p.answer({"type": p.SENT, "count": len(receivers)}, rid))

    async def _end(self, frame: dict[str, Any], rid: RequestId) -> None:
        trial = self._trial
        if trial is None:
            raise ProtocolError(p.NO_TRIAL, "end: this tab has not started or joined a trial")
        if not trial.is_over:
            await self._blocking(trial.end)
        self._ended.add(trial.id)
        await self._send(p.answer(end_frame(trial), rid))

    _handlers: dict[str, Callable[[TabSession, dict[str, Any], RequestId], Awaitable[None]]] = {
        p.START: _start,
        p.JOIN: _join,
        p.ACT: _act,
        p.FEEDBACK: _feedback,
        p.MESSAGE: _message,
        p.END: _end,
    }

    # ------------------------------------------------------------------ the trial

    async def _adopt(self, trial: ClientTrial, rid: RequestId) -> None:
        """Makes `trial` this tab's and answers with `joined`."""
        self._trial = trial
        if trial.actor_class is not None and not trial.is_over:
            await self._blocking(trial.begin_actions_stream)  # hears the end while idle, too
        loop = self._loop

        def on_end(*_: Any) -> None:  # (a background thread)
            with contextlib.suppress(RuntimeError):  # the bridge is stopping: loop closed
                loop.call_soon_threadsafe(self._remote_end, trial)

        trial.set_on_trial_end_event_listener(on_end)
        await self._send(p.answer(joined_frame(trial), rid))
        await self._send_end(trial)  # over already (it may end before its first tick)

    def _remote_end(self, trial: ClientTrial) -> None:
        """(event loop) The trial ended by other means than this tab's `end`."""
        if self._acting is None and not self._closed:  # else the action's answer tells it
            task = asyncio.ensure_future(self._send_end(trial))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_end(self, trial: ClientTrial) -> None:
        if trial.is_over and trial.id not in self._ended:
            self._ended.add(trial.id)
            await self._send(end_frame(trial))

    def _check_free(self) -> None:
        trial = self._trial
        if trial is not None and not trial.is_over:
            raise ProtocolError(
                p.IN_TRIAL,
                f"this tab plays trial {trial.id} (actor {trial.actor_id}) until it ends: "
                "end it first, or open another tab",
            )

    def _playing(self, kind: str) -> ClientTrial:
        trial = self._trial
        if trial is None:
            raise ProtocolError(p.NO_TRIAL, f"{kind}: this tab has not started or joined a trial")
        if trial.is_over:
            raise ProtocolError(
                p.TRIAL_FAILED if trial.error is not None else p.TRIAL_OVER,
                f"{kind}: trial {trial.id} is over ({trial.end_reason})",
            )
        if trial.actor_class is None:
            raise ProtocolError(
                p.BAD_REQUEST,
                f"{kind}: this tab has no slot in trial {trial.id} (it has no human actor): "
                "it can only watch it or end it",
            )
        return trial

    def _default_class(self, actor_id: Optional[int] = None) -> str:
        """The class of a human slot of the default trial (of `actor_id`, when given), else
        the first class (the orchestrator then says what is wrong with the slot)."""
        for slot in self._project["human_slots"]:
            if actor_id is None or slot["actor_id"] == actor_id:
                return str(slot["actor_class"])
        return str(self._project["actor_classes"][0]["id"])

    def _class_named(self, name: str) -> str:
        ids = [c["id"] for c in self._project["actor_classes"]]
        if name not in ids:
            raise ProtocolError(
                p.BAD_REQUEST, f"unknown actor class {name!r} (the project's: {', '.join(ids)})"
            )
        return name

    def _receivers(self, trial: ClientTrial, frame: dict[str, Any], environment: bool) -> list[int]:
        """The actor ids a feedback or message goes `to`: an actor id, a class name (all of
        its actors), "environment" (-1, messages only), or a list of those."""
        kind = frame.get("type")
        to = p.field(frame, "to", (int, str, list))
        count = len(trial.actors)
        receivers: list[int] = []
        for entry in to if isinstance(to, list) else [to]:
            if isinstance(entry, bool) or not isinstance(entry, (int, str)):
                raise ProtocolError(
                    p.BAD_REQUEST, f"{kind}: 'to' holds {entry!r}: actor ids or class names only"
                )
            if isinstance(entry, str):
                if entry == ENVIRONMENT and environment:
                    receivers.append(-1)
                    continue
                members = getattr(trial.actors, entry, None) if entry in self._class_ids() else None
                if members is None:
                    targets = ", ".join(
                        self._class_ids() + ([f"{ENVIRONMENT!r}"] if environment else [])
                    )
                    raise ProtocolError(
                        p.BAD_REQUEST,
                        f"{kind}: unknown receiver {entry!r} (actor ids, or {targets})",
                    )
                receivers += [a.actor_id for a in members]
            elif entry == -1 and environment:
                receivers.append(-1)
            elif not 0 <= entry < count:
                extra = ", -1 for the environment" if environment else ""
                raise ProtocolError(
                    p.BAD_REQUEST,
                    f"{kind}: no actor {entry} in trial {trial.id} (actor ids are 0..{count - 1}{extra})",
                )
            else:
                receivers.append(entry)
        if not receivers:
            raise ProtocolError(p.BAD_REQUEST, f"{kind}: 'to' names no receiver")
        return receivers

    def _class_ids(self) -> list[str]:
        return [c["id"] for c in self._project["actor_classes"]]

    # ------------------------------------------------------------------ plumbing

    async def _blocking(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Runs a blocking client call on the bridge's thread pool."""
        return await self._loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    def _error_of(self, failure: BaseException, rid: RequestId, kind: Optional[str]) -> Frame:
        """The error frame telling the tab why a request failed."""
        if isinstance(failure, ProtocolError):
            return p.error(failure.code, failure.message, rid, kind)
        prefix = f"{kind}: " if kind else ""
        if isinstance(failure, CogmentError):
            code, message = error_code(failure), _message_of(failure)
            return p.error(code, prefix + message, rid, kind)
        log.exception("session %s: %s failed", self.session_id[:8], kind)
        return p.error(p.INTERNAL, f"{prefix}{type(failure).__name__}: {failure}", rid, kind)

    async def close(self) -> None:
        """The tab is gone: closes its Connection (its heartbeats stop, its trial stays)."""
        if self._closed:
            return
        self._closed = True
        await self._blocking(self._connection.close)  # unblocks an action under way
        acting = self._acting
        if acting is not None:
            await asyncio.wait({acting}, timeout=CLOSE_WAIT)


def error_code(failure: CogmentError) -> str:
    """The protocol's error code for what the client raised."""
    if isinstance(failure, TrialError):
        return p.TRIAL_FAILED
    if isinstance(failure, TrialEndedError):
        return p.TRIAL_OVER
    if isinstance(failure, ConfigurationError):
        return p.BAD_REQUEST
    if not isinstance(failure, CogmentRpcError):
        return p.INTERNAL
    code, message = failure.code, failure.message
    if code is grpc.StatusCode.UNAVAILABLE:
        return p.UNAVAILABLE
    if code is grpc.StatusCode.NOT_FOUND:
        if trial_end_reason(message) != message:  # "trial X has ended: ..." / "... failed: ..."
            return p.TRIAL_FAILED if is_trial_failure(code, message) else p.TRIAL_OVER
        return p.NOT_FOUND
    if code is grpc.StatusCode.INVALID_ARGUMENT and "is of class" in message:
        return p.BAD_REQUEST  # a join naming another class than the slot's
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        if "already joined" in message:
            return p.SLOT_TAKEN
        if "not a human slot" in message:
            return p.NOT_FOUND
        if "action pending" in message:
            return p.ACTION_PENDING
    return p.REFUSED


def _message_of(failure: CogmentError) -> str:
    return failure.message if isinstance(failure, CogmentRpcError) else str(failure)


# ---------------------------------------------------------------- frames about a trial


def joined_frame(trial: ClientTrial) -> dict[str, Any]:
    """The `joined` frame: the trial, this tab's slot, the actors, the first observation."""
    actor_class = trial.actor_class
    config = trial.config
    return {
        "type": p.JOINED,
        "trial_id": trial.id,
        "actor_id": trial.actor_id,
        "actor_class": actor_class.id if actor_class is not None else None,
        "actor_counts": list(trial.actor_counts),
        "actors": [
            {"actor_id": a.actor_id, "actor_class": a.actor_class.id, "id_in_class": a.id_in_class}
            for a in trial.actors
        ],
        "config": convert.to_json(config) if config is not None else None,
        "tick_id": trial.tick_id,
        "observation": (
            convert.to_json(trial.observation) if trial.observation is not None else None
        ),
    }


def tick_frame(trial: ClientTrial, result: ActionResult) -> dict[str, Any]:
    """The `tick` frame answering an action."""
    reward = result.reward
    return {
        "type": p.TICK,
        "tick_id": trial.tick_id,
        "observation": convert.to_json(result.observation)
        if result.observation is not None
        else None,
        "reward": convert.to_json(reward) if reward.feedbacks else None,
        "messages": [
            {
                "sender_id": m.sender_id,
                "receiver_id": m.receiver_id,
                "payload": convert.payload_to_json(m.payload),
            }
            for m in result.messages.messages
        ],
        "last": trial.is_over,
    }


def end_frame(trial: ClientTrial) -> dict[str, Any]:
    """The `end` frame: why the trial is over, and whether a failure ended it."""
    return {
        "type": p.ENDED,
        "trial_id": trial.id,
        "reason": trial.end_reason,
        "failed": trial.error is not None,
    }
