"""A scripted stand-in for the orchestrator's `cogment.Trial` service, for client unit tests.

It speaks the protocol of design.md with a trivial game on the test project: one human
player slot (actor 0) of 3 actors [2 players, 1 watcher]; tick 0 is the snapshot
Board(cells=[0, 0, 0, 0]); each action Move(cell=c) on tick t answers tick t+1 with the delta
BoardDelta(cell=c, value=t+1, turn=t+1), the Reward summed from the client feedback targeted
at actor 0 for tick t, and the messages the client sent to itself. Tests end trials
remotely (`end_remotely`) or make the next call of a method fail (`fail_next`). Every call is
recorded with its metadata and its deadline. The real orchestrator is exercised in tests/e2e.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any, Optional

import grpc

from cogment.api import agent_pb2, common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment.errors import TRIAL_ABORTED, TRIAL_ENDED, TRIAL_FAILED
from tests.conftest import UNLIMITED

ACTOR_COUNTS = [2, 1]
NO_DEADLINE = 1e9  # seconds left: more than that means the call has no deadline


class FakeTrial:
    def __init__(self, trial_id: str, human: bool) -> None:
        self.id = trial_id
        self.human = human
        self.tick = 0
        self.over = False
        self.reason = ""
        self.failed = False
        self.pending = False
        self.feedbacks: list[common_pb2.Feedback] = []
        self.messages: list[common_pb2.Message] = []
        self.waiters: list[queue.SimpleQueue[Any]] = []  # streams and Action calls waiting


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeOrchestrator(orchestrator_pb2_grpc.TrialServicer):
    def __init__(self, *, human: bool = True, hold_actions: bool = False) -> None:
        self.human = human
        self.hold_actions = hold_actions  # Action waits until released (or the trial ends)
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.trials: dict[str, FakeTrial] = {}
        self.calls: list[tuple[str, Any, dict[str, str]]] = []
        self.deadlines: list[tuple[str, Optional[float]]] = []  # seconds left (None: no limit)
        self.failures: dict[str, tuple[grpc.StatusCode, str]] = {}
        self.observation_size = 0  # extra cells (5 bytes each on the wire) at tick 0
        self.human_config: Optional[bytes] = None  # sent as the slot's config when set
        self._ids = itertools.count(1)

    # -------------------------------------------------------------- test controls

    def fail_next(self, method: str, code: grpc.StatusCode, details: str) -> None:
        with self.lock:
            self.failures[method] = (code, details)

    def end_remotely(self, trial_id: str, reason: str, failed: bool = False) -> None:
        with self.lock:
            trial = self.trials[trial_id]
            trial.over, trial.reason, trial.failed = True, reason, failed
            waiters, trial.waiters = trial.waiters, []
        for waiter in waiters:
            waiter.put(("end", trial))

    def methods(self) -> list[str]:
        with self.lock:
            return [name for name, _, _ in self.calls]

    def heartbeats(self, trial_id: str) -> int:
        """How many Heartbeat calls about `trial_id` arrived."""
        with self.lock:
            return sum(1 for n, r, _ in self.calls if n == "Heartbeat" and r.trial_id == trial_id)

    # -------------------------------------------------------------- helpers

    def _record(self, name: str, request: Any, context: grpc.ServicerContext) -> None:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        left = context.time_remaining()  # gRPC's "infinite future" for a call without deadline
        with self.lock:
            self.calls.append((name, request, metadata))
            self.deadlines.append((name, left if left is not None and left < NO_DEADLINE else None))
            failure = self.failures.pop(name, None)
        if failure is not None:
            context.abort(*failure)

    def _trial(self, trial_id: str, context: grpc.ServicerContext) -> FakeTrial:
        with self.lock:
            trial = self.trials.get(trial_id)
        if trial is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"trial {trial_id} not found")
        assert trial is not None
        if trial.over:
            self._abort_over(trial, context)
        return trial

    @staticmethod
    def _abort_over(trial: FakeTrial, context: grpc.ServicerContext) -> None:
        wording = TRIAL_FAILED if trial.failed else TRIAL_ENDED
        context.abort(
            grpc.StatusCode.NOT_FOUND, wording.format(trial_id=trial.id, reason=trial.reason)
        )

    @staticmethod
    def _over_reply() -> orchestrator_pb2.TrialActionReply:
        return orchestrator_pb2.TrialActionReply(trial_is_over=True)

    def _act(
        self, trial: FakeTrial, request: orchestrator_pb2.TrialActionRequest, context: Any
    ) -> Optional[orchestrator_pb2.TrialActionReply]:
        """The reply to one action; None when the trial ended meanwhile (a failure aborts)."""
        from data_pb2 import BoardDelta, Move  # the test project's protos

        if request.actor_id != 0:
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"trial {trial.id}: no actor {request.actor_id}"
            )
        move = Move.FromString(request.action.content)
        waiter: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with self.lock:
            if trial.pending:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"trial {trial.id}: actor 0 already has an action pending",
                )
            trial.pending = True
            trial.waiters.append(waiter)
        if self.hold_actions:
            while not self.release.wait(0.01):
                if trial.over:
                    break
        with self.lock:
            trial.pending = False
            if waiter in trial.waiters:
                trial.waiters.remove(waiter)
            if trial.over:
                if trial.failed:
                    context.abort(
                        grpc.StatusCode.ABORTED,
                        TRIAL_ABORTED.format(trial_id=trial.id, reason=trial.reason),
                    )
                return None
            tick = trial.tick
            trial.tick += 1
            mine = [f for f in trial.feedbacks if f.actor_id == 0 and f.tick_id == tick]
            trial.feedbacks = [f for f in trial.feedbacks if f not in mine]
            messages, trial.messages = trial.messages, []
        reply = orchestrator_pb2.TrialActionReply()
        reply.observation.tick_id = tick + 1
        reply.observation.data.snapshot = False
        reply.observation.data.content = BoardDelta(
            cell=move.cell, value=tick + 1, turn=tick + 1
        ).SerializeToString()
        weighted = sum(f.value * f.confidence for f in mine if f.confidence > 0)
        total = sum(f.confidence for f in mine if f.confidence > 0)
        if mine:
            reply.reward.CopyFrom(
                agent_pb2.Reward(
                    value=weighted / total if total else 0.0, confidence=total, feedbacks=mine
                )
            )
        for message in messages:
            if message.receiver_id == 0:
                reply.messages.messages.add().CopyFrom(message)
        return reply

    # -------------------------------------------------------------- the service

    def GetTrialParams(self, request: Any, context: Any) -> Any:
        self._record("GetTrialParams", request, context)
        reply = orchestrator_pb2.GetTrialParamsReply()
        reply.params.max_steps = 7
        return reply

    def Version(self, request: Any, context: Any) -> Any:
        self._record("Version", request, context)
        return common_pb2.VersionInfo(
            versions=[common_pb2.VersionInfo.Version(name="cogment-api", version="v0.5")]
        )

    def Start(self, request: Any, context: Any) -> Any:
        from data_pb2 import Board

        self._record("Start", request, context)
        trial = FakeTrial(f"fake-{next(self._ids)}", self.human)
        with self.lock:
            self.trials[trial.id] = trial
        reply = orchestrator_pb2.TrialStartReply(
            trial_id=trial.id, actor_id=0 if self.human else -1, actor_counts=ACTOR_COUNTS
        )
        if self.human:
            reply.observation.tick_id = 0
            reply.observation.data.snapshot = True
            board = Board(cells=[0, 0, 0, 0] + [1 << 30] * self.observation_size)
            reply.observation.data.content = board.SerializeToString()
            if self.human_config is not None:
                reply.human_config.content = self.human_config
        return reply

    def Join(self, request: Any, context: Any) -> Any:
        from data_pb2 import Board

        self._record("Join", request, context)
        trial = self._trial(request.trial_id, context)
        reply = orchestrator_pb2.TrialStartReply(
            trial_id=trial.id, actor_id=request.actor_id, actor_counts=ACTOR_COUNTS
        )
        reply.observation.tick_id = trial.tick
        reply.observation.data.snapshot = True
        reply.observation.data.content = Board(cells=[0, 0, 0, 0]).SerializeToString()
        if self.human_config is not None:
            reply.human_config.content = self.human_config
        return reply

    def End(self, request: Any, context: Any) -> Any:
        self._record("End", request, context)
        trial = self._trial(request.trial_id, context)
        self.end_remotely(trial.id, "ended by a client")
        return orchestrator_pb2.TrialEndReply()

    def Heartbeat(self, request: Any, context: Any) -> Any:
        self._record("Heartbeat", request, context)
        self._trial(request.trial_id, context)
        return orchestrator_pb2.TrialHeartbeatReply()

    def GiveFeedback(self, request: Any, context: Any) -> Any:
        self._record("GiveFeedback", request, context)
        trial = self._trial(request.trial_id, context)
        with self.lock:
            trial.feedbacks.extend(request.feedbacks)
        return orchestrator_pb2.TrialFeedbackReply()

    def SendMessage(self, request: Any, context: Any) -> Any:
        self._record("SendMessage", request, context)
        trial = self._trial(request.trial_id, context)
        with self.lock:
            for message in request.messages:
                routed = common_pb2.Message()
                routed.CopyFrom(message)
                routed.sender_id = 0
                trial.messages.append(routed)
        return orchestrator_pb2.TrialMessageReply()

    def Action(self, request: Any, context: Any) -> Any:
        self._record("Action", request, context)
        trial = self._trial(request.trial_id, context)
        reply = self._act(trial, request, context)
        return reply if reply is not None else self._over_reply()

    def ActionStream(self, request_iterator: Iterator[Any], context: Any) -> Iterator[Any]:
        self._record("ActionStream", None, context)
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def read() -> None:
            try:
                for request in request_iterator:
                    inbox.put(("request", request))
            except Exception:
                pass
            inbox.put(("eof", None))

        threading.Thread(target=read, daemon=True).start()
        watched: Optional[FakeTrial] = None
        while context.is_active():
            try:
                kind, item = inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            if kind == "eof":
                return
            if kind == "end":  # the trial ended while the client was idle (or watching)
                if item.failed:
                    context.abort(
                        grpc.StatusCode.ABORTED,
                        TRIAL_ABORTED.format(trial_id=item.id, reason=item.reason),
                    )
                yield self._over_reply()
                return
            trial = self._trial(item.trial_id, context)
            if watched is None:
                watched = trial
                with self.lock:
                    trial.waiters.append(inbox)
            if item.actor_id == -1:
                continue
            reply = self._act(trial, item, context)
            if reply is None:
                yield self._over_reply()
                return
            yield reply


class FakeServer:
    """The fake served over real gRPC on a free loopback port."""

    def __init__(self, fake: FakeOrchestrator) -> None:
        self.fake = fake
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16),
            options=UNLIMITED,
        )
        orchestrator_pb2_grpc.add_TrialServicer_to_server(fake, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(None)
