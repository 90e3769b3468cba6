"""One trial's life: start, the tick loop, the end. Read `Trial.run` top to bottom.

A trial is one asyncio task on the orchestrator's event loop (no thread of its own). Each
tick t:

1. the agents' `Decide(t)` calls are already running: they were issued as soon as
   observation t was known, while the humans' replies carrying it were being sent;
2. wait for every human slot's action for tick t (unary `Action` or `ActionStream`);
3. collect the agents' actions (and the feedback and messages their replies carry);
4. one `Environment.Update` with every action, by actor id; it returns observation t+1;
5. rewards of tick t, messages routed; every agent's next step is issued at once:
   `Reward(t)` if it got feedback, `OnMessage` if it got messages, then `Decide(t+1)`;
6. the humans get observation t+1 with their reward of tick t and their messages;
7. one datalog sample for tick t (the next tick waits only when the datalog's queue is full).

Each agent actor and the environment are called through a transport (transport.py): the 0.5
unary calls, or one of cogment-py's streams per actor, as each service's endpoint decided.
Observation bytes are forwarded as the environment sent them (snapshot or delta), never
parsed. Any service failure ends the trial with a reason naming the service. How the trial
ended is `TrialEnd`'s alone (see ending.py); after every end, the trial delivers what is
left, calls `End` on the environment and on every agent once, then tells the waiting
clients (told at once when a service failed); its datalog records the end without delaying it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

import grpc

from cogment.api import agent_pb2, common_pb2, environment_pb2, orchestrator_pb2
from cogment.constants import ENVIRONMENT_ID, HUMAN_ENDPOINT, NO_ACTOR_ID
from cogment.errors import StatusError

from . import params as trial_params
from . import wire
from .actors import Actor
from .calls import discard, end_services, spawn, uncancel
from .checks import check_feedbacks, check_messages
from .datalog import TrialRecording
from .ending import ENDED_BY_ENV, MAX_STEPS_REACHED, SHUTDOWN, TrialEnd, service_failure
from .humans import Humans, make_snapshot
from .rewards import FeedbackBook
from .runtime import Runtime
from .transport import EnvironmentTransport, agent_transport, environment_transport

log = logging.getLogger("cogment.orchestrator")

Routed = Optional[dict[int, list[common_pb2.Message]]]  # messages by receiver id


class Trial:
    """One trial; `run` is its task. The other methods serve client calls (event loop only).

    Args:
        runtime: what every trial shares.
        trial_id, user_id: the trial's id, and the user id its starting client gave.
        config: the trial config the starting client gave (None: the default one).
        session_id: the starting client's session.
        on_over: called once with (trial id, reason, failed) when the trial is over.
    """

    def __init__(
        self,
        runtime: Runtime,
        trial_id: str,
        user_id: str,
        config: Optional[common_pb2.TrialConfig],
        session_id: str,
        on_over: Callable[[str, str, bool], None],
    ) -> None:
        self.id = trial_id
        self.user_id = user_id
        self._rt = runtime
        self._loop = asyncio.get_running_loop()
        self._start_config = config
        self._session_id = session_id
        self.params = common_pb2.TrialParams()
        self.actor_counts: list[int] = []
        self.actors: list[Actor] = []
        self._agents: list[Actor] = []
        self.humans = Humans(trial_id, self.actors)
        self._env: Optional[EnvironmentTransport] = None
        self._env_where = ""
        self._env_started = False
        # the current tick: its observations, and what is in flight
        self._tick = 0
        self._obs_set = wire.EnvReply()  # the reply that carried the current observations
        self._obs_index: list[int] = []
        self._book = FeedbackBook((), keep_late=False)
        self._outbox: list[common_pb2.Message] = []
        self._steps: list[Any] = []  # the agents' running next steps, aligned with _agents
        self._env_messages: Optional[asyncio.Task[None]] = None
        self._final: list[Any] = []  # deliveries to agents after the last tick
        self._recording: Optional[TrialRecording] = None
        self._task: Optional[asyncio.Task[None]] = None
        self.end = TrialEnd(trial_id, self.humans, on_over, self._interrupt)
        """How the trial ended, and who is told: the only writer of its end."""

    # ------------------------------------------------------------------ the trial's task

    def launch(self) -> asyncio.Task[None]:
        """Starts the trial's task (once) and returns it."""
        if self._task is None:
            self._task = self._loop.create_task(self.run(), name=f"trial {self.id}")
        return self._task

    async def wait_closed(self, timeout: float) -> None:
        """Waits (at most `timeout` s) until the trial's task has closed it: its services got
        their End and its clients were told."""
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=timeout)

    def _interrupt(self) -> None:
        """Stops the task of a trial ended from outside it."""
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    def _fail(self, reason: str) -> None:
        """Ends the trial as failed from outside its task: its datalog failed."""
        self.end.end(reason, failed=True)

    async def run(self) -> None:
        """The whole life of the trial."""
        try:
            await self._start()
            await self._tick_loop()
        except asyncio.CancelledError:  # ended from outside (its reason is recorded already)
            uncancel()
            self.end.finish(SHUTDOWN)
        except Exception as error:  # a failing service, a refused start, a bug of ours
            self.end.finish_by(error)
        finally:
            try:
                await self._close()
            finally:
                self._rt.replicas.release(self.id)  # its services got their End

    async def _start(self) -> None:
        rt = self._rt
        timeout = rt.response_timeout
        params = await trial_params.resolve(rt, self.id, self.user_id, self._start_config)
        self._setup(params)
        log.debug(
            "trial %s: starting (user %r, session %r, %d actors)",
            self.id,
            self.user_id,
            self._session_id,
            len(self.actors),
        )
        if rt.recorder is not None:
            self._recording = rt.recorder.trial(self.id, self.user_id, params, self._fail)
        env = await self._connect(params)

        self._env_started = True
        # a config is on the wire only when the parameters have one (0.5 services decode any
        # config present with their config type)
        trial_config = params.trial_config if params.HasField("trial_config") else None
        request = environment_pb2.EnvStartRequest(
            trial_id=self.id,
            config=params.environment.config if params.environment.HasField("config") else None,
            actor_counts=self.actor_counts,
            trial_config=trial_config,
        )
        try:
            raw = await env.start(request)
        except Exception as error:
            raise service_failure(self._env_where, "Start", error, timeout) from None
        self._set_observations(self._read_env_reply("Start", raw))

        calls = []
        for agent in self._agents:
            agent.started = True
            agent_request = agent_pb2.AgentStartRequest(
                trial_id=self.id,
                actor_id=agent.id,
                config=agent.config,
                actor_counts=self.actor_counts,
                trial_config=trial_config,
            )
            calls.append(agent.link.start(agent_request))
        results = await asyncio.gather(*calls, return_exceptions=True)
        for agent, result in zip(self._agents, results):
            if isinstance(result, BaseException):
                raise service_failure(agent.describe(), "Start", result, timeout)

        self._steps = self._next_steps(self._observations(), {}, None)  # Decide(0) at once
        answer = orchestrator_pb2.TrialStartReply(
            trial_id=self.id, actor_id=NO_ACTOR_ID, actor_counts=self.actor_counts
        )
        if self.humans:
            slot = self.humans.slots[0]  # the starting client holds the first human slot
            self.humans.hold(slot, self._session_id)
            answer.actor_id = slot.actor.id
            if slot.actor.config is not None:
                answer.human_config.CopyFrom(slot.actor.config)
            answer.observation.CopyFrom(self._current_observation(slot.actor))
            if params.max_inactivity:
                self.end.watch_inactivity(float(params.max_inactivity), self.humans.idle_for)
        log.info("trial %s started", self.id)
        self.end.started_with(answer)

    async def _tick_loop(self) -> None:
        assert self._env is not None
        env = self._env
        timeout = self._rt.response_timeout
        max_steps = self.params.max_steps
        agents = self._agents
        humans = self.humans
        actions: list[bytes] = [b""] * len(self.actors)
        while True:
            tick = self._tick

            # the humans' actions for tick t (the agents' Decide(t) calls are running)
            if humans:
                await humans.ready
                humans.actions_into(actions)

            # the agents' actions, with the feedback and messages their replies carry
            steps, self._steps = self._steps, []
            for agent, step in zip(agents, steps):
                try:
                    decided = await step
                except Exception as error:
                    raise service_failure(agent.describe(), "Decide", error, timeout) from None
                actions[agent.id] = decided.action.content
                if decided.feedbacks:
                    self._file_feedback(decided.feedbacks, tick, agent.describe())
                if decided.messages:
                    self._collect(decided.messages, agent.id)

            # messages for the environment sent at the end of the previous tick
            if self._env_messages is not None:
                delivery, self._env_messages = self._env_messages, None
                await delivery

            # one Update: tick t's actions in, observation t+1 out
            request = environment_pb2.EnvUpdateRequest(
                trial_id=self.id, action_set=environment_pb2.ActionSet(actions=actions)
            )
            try:
                raw = await env.update(request)
            except Exception as error:
                raise service_failure(self._env_where, "Update", error, timeout) from None
            update = self._read_env_reply("Update", raw)
            if update.feedbacks:
                self._file_feedback(update.feedbacks, tick, self._env_where)
            if update.messages:
                self._collect(update.messages, ENVIRONMENT_ID)
            previous = self._obs_set
            self._set_observations(update)
            rewards = self._book.close_tick()
            self._tick = tick + 1
            ending = None
            if update.end_trial:
                ending = ENDED_BY_ENV
            elif max_steps and tick + 1 >= max_steps:
                ending = MAX_STEPS_REACHED.format(max_steps=max_steps)

            # rewards and messages out; the agents' next Decide goes out at once
            routed = self._route()
            observations = self._observations()
            if ending is None:
                self._steps = self._next_steps(observations, rewards, routed)
            else:
                self._final = self._next_steps(None, rewards, routed)
            env_messages = routed.get(ENVIRONMENT_ID) if routed else None
            if env_messages:
                self._env_messages = spawn(self._env_on_message(env_messages))
            if humans:
                humans.answer(observations, rewards, routed, last=ending is not None)
            if self._recording is not None:
                late = self._book.take_late()
                full = self._recording.tick(tick, previous, actions, rewards, routed, late)
                if full and ending is None:
                    await self._recording.room()  # the datalog's queue is full
            if ending is not None:
                self.end.finish(ending)
                return

    async def _close(self) -> None:
        """After the end: the datalog told (it drains on its own), last deliveries, then
        End on every service, each at most once."""
        steps, self._steps = self._steps, []
        final, self._final = self._final, []
        if self._env_messages is not None:
            final.append(self._env_messages)
            self._env_messages = None
        failed = self.end.failed
        if failed:
            steps += final
            final = []
        for step in steps:
            discard(step)
        # what was given after the last tick (a client's end()): delivered unless it failed
        by_tick = [] if failed else self._book.close_all()
        routed = None if failed else self._route()
        if self._recording is not None:
            last_rewards = dict(by_tick).get(self._tick, {})
            observed = self._obs_set if self._obs_index else None
            self._recording.end(self._tick, observed, last_rewards, routed, self.end.reason, failed)
        await self._deliver(final)
        if not failed:
            await self._deliver(self._leftovers(by_tick, routed))
        ending = [(agent.link, agent.describe()) for agent in self._agents if agent.started]
        if self._env_started and self._env is not None:
            ending.append((self._env, self._env_where))
        await end_services(self.id, ending)
        self.end.tell_clients()

    async def _deliver(self, deliveries: list[Any]) -> None:
        """Awaits the last deliveries to services; their failures are only logged."""
        if not deliveries:
            return
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.debug("trial %s: a last delivery failed: %s", self.id, result)

    def _leftovers(
        self, by_tick: list[tuple[int, dict[int, agent_pb2.Reward]]], routed: Routed
    ) -> list[Any]:
        """Deliveries of the feedback and messages no tick delivered (a client's last ones,
        sent with its `end()`: `by_tick`, the rewards of the ticks still open, and `routed`):
        every agent's rewards and messages, the environment's messages; each before the
        services' End."""
        deliveries: list[Any] = []
        for agent in self._agents:
            if not agent.started:
                continue
            rewards = [(tick, r[agent.id]) for tick, r in by_tick if agent.id in r]
            messages = routed.get(agent.id) if routed else None
            if rewards or messages:
                deliveries.append(spawn(self._last_step(agent, rewards, messages)))
        env_messages = routed.get(ENVIRONMENT_ID) if routed else None
        if env_messages and self._env_started:
            deliveries.append(spawn(self._env_on_message(env_messages)))
        return deliveries

    async def _last_step(
        self,
        agent: Actor,
        rewards: list[tuple[int, agent_pb2.Reward]],
        messages: Optional[list[common_pb2.Message]],
    ) -> None:
        """An agent's rewards (in tick order) and messages after the trial's last tick."""
        for tick, reward in rewards:
            await self._agent_step(agent, reward, None, None, tick)
        if messages:
            await self._agent_step(agent, None, messages, None, self._tick)

    # ------------------------------------------------------------------ tick helpers

    def _setup(self, params: common_pb2.TrialParams) -> None:
        """Builds the actors of the (checked, sorted) parameters."""
        rt = self._rt
        classes = rt.settings.actor_classes
        self.params = params
        self.actor_counts = trial_params.actor_counts(params, rt.settings)
        seen = [0] * len(classes)
        for actor_id, p in enumerate(params.actors):
            class_index = classes.index_of(p.actor_class)
            human = p.endpoint == HUMAN_ENDPOINT
            actor = Actor(actor_id, classes[class_index], seen[class_index], p)
            seen[class_index] += 1
            self.actors.append(actor)
            if human:
                self.humans.add(actor)
            else:
                self._agents.append(actor)
        self._env_where = f"environment at {params.environment.endpoint}"
        self._book = FeedbackBook(
            [a.index_in_class for a in self.actors], keep_late=rt.recorder is not None
        )

    async def _connect(self, params: common_pb2.TrialParams) -> EnvironmentTransport:
        """The transports to the environment and every agent (each endpoint's transport is
        decided once, at its first trial)."""
        rt = self._rt
        timeout, end_timeout = rt.response_timeout, rt.end_timeout
        env_link = environment_transport(
            rt.endpoints, params.environment.endpoint, self.id, timeout, end_timeout
        )
        agent_links = [
            agent_transport(rt.endpoints, a.endpoint, self.id, a.id, timeout, end_timeout)
            for a in self._agents
        ]
        env, links = await asyncio.gather(env_link, asyncio.gather(*agent_links))
        for agent, link in zip(self._agents, links):
            agent.link = link
        self._env = env
        return env

    def _read_env_reply(self, method: str, raw: wire.Bytes) -> wire.EnvReply:
        try:
            return wire.read_env_reply(raw)
        except ValueError as error:
            raise StatusError(
                grpc.StatusCode.ABORTED, f"{self._env_where}: malformed {method} reply: {error}"
            ) from None

    def _set_observations(self, obs_set: wire.EnvReply) -> None:
        """Takes the environment's ObservationSet as the current one, after checking it."""
        n_obs = len(obs_set.observations)
        n_actors = len(self.actors)
        index = list(obs_set.actors_map)
        if not index and n_obs == 1:
            index = [0] * n_actors  # one observation for everyone
        if len(index) != n_actors or (index and (max(index) >= n_obs or min(index) < 0)):
            raise StatusError(
                grpc.StatusCode.ABORTED,
                f"{self._env_where}: its ObservationSet has {n_obs} observations and "
                f"actors_map {list(obs_set.actors_map)} for {n_actors} actors",
            )
        if not obs_set.timestamp:
            obs_set.timestamp = time.time_ns()
        self._obs_set = obs_set
        self._obs_index = index
        self.humans.record(obs_set.observations, index)

    def _observations(self) -> list[wire.EncodedObservation]:
        """The current tick's observations by actor id, each distinct one encoded once."""
        obs_set = self._obs_set
        tick, timestamp = self._tick, obs_set.timestamp
        distinct = [wire.EncodedObservation(tick, timestamp, d) for d in obs_set.observations]
        return [distinct[i] for i in self._obs_index]

    def _current_observation(self, actor: Actor) -> common_pb2.Observation:
        obs_set = self._obs_set
        return common_pb2.Observation(
            tick_id=self._tick,
            timestamp=obs_set.timestamp,
            data=obs_set.observation_data(self._obs_index[actor.id]),
        )

    def _next_steps(
        self,
        observations: Optional[list[wire.EncodedObservation]],
        rewards: dict[int, agent_pb2.Reward],
        routed: Routed,
    ) -> list[Any]:
        """Every agent's next step: a bare Decide call, or a task sequencing Reward and
        OnMessage before it (and before nothing after the last tick: no observations)."""
        steps: list[Any] = []
        for agent in self._agents:
            observation = observations[agent.id] if observations is not None else None
            reward = rewards.get(agent.id)
            messages = routed.get(agent.id) if routed else None
            if reward is None and not messages:
                if observation is not None:
                    steps.append(agent.link.decide(observation))
            else:
                step = self._agent_step(agent, reward, messages, observation, self._tick - 1)
                steps.append(spawn(step))
        return steps

    async def _agent_step(
        self,
        agent: Actor,
        reward: Optional[agent_pb2.Reward],
        messages: Optional[list[common_pb2.Message]],
        observation: Optional[wire.EncodedObservation],
        reward_tick: int,
    ) -> Optional[agent_pb2.AgentDecideReply]:
        link = agent.link
        method = "Reward"
        try:
            if reward is not None:
                await link.reward(
                    agent_pb2.AgentRewardRequest(
                        trial_id=self.id, actor_id=agent.id, reward=reward, tick_id=reward_tick
                    )
                )
            method = "OnMessage"
            if messages:
                await link.message(
                    agent_pb2.AgentOnMessageRequest(
                        trial_id=self.id, actor_id=agent.id, messages=messages
                    )
                )
            method = "Decide"
            if observation is None:
                return None
            return await link.decide(observation)
        except Exception as error:
            raise service_failure(
                agent.describe(), method, error, self._rt.response_timeout
            ) from None

    async def _env_on_message(self, messages: list[common_pb2.Message]) -> None:
        request = environment_pb2.EnvOnMessageRequest(
            trial_id=self.id, actor_id=ENVIRONMENT_ID, messages=messages
        )
        timeout = self._rt.response_timeout
        assert self._env is not None
        try:
            await self._env.message(request)
        except Exception as error:
            raise service_failure(self._env_where, "OnMessage", error, timeout) from None

    def _file_feedback(self, feedbacks: Any, tick: int, source: str) -> None:
        """Files a service's feedback; what cannot count is dropped and logged."""
        dropped = self._book.add(feedbacks, tick)
        if dropped:
            log.warning(
                "trial %s: %d feedbacks from %s dropped (an unknown actor, or a value or "
                "confidence that is not a finite number)",
                self.id,
                dropped,
                source,
            )

    def _collect(self, messages: Any, sender: int) -> None:
        for message in messages:
            message.sender_id = sender
        self._outbox.extend(messages)

    def _route(self) -> Routed:
        """This tick's messages by receiver id (-1: the environment)."""
        if not self._outbox:
            return None
        outbox, self._outbox = self._outbox, []
        n_actors = len(self.actors)
        routed: dict[int, list[common_pb2.Message]] = {}
        for message in outbox:
            receiver = message.receiver_id
            if -1 <= receiver < n_actors:
                routed.setdefault(receiver, []).append(message)
            else:
                log.warning(
                    "trial %s: a message from %d to unknown receiver %d dropped",
                    self.id,
                    message.sender_id,
                    receiver,
                )
        return routed

    # ------------------------------------------------------------------ client calls

    def join(
        self, actor_id: int, session_id: str, actor_class: str = ""
    ) -> orchestrator_pb2.TrialStartReply:
        """Gives the human slot `actor_id` to another client, with a full observation; a
        client that says which class it plays (`actor_class`) gets a slot of that class only.

        The slot's current observation is the one of the tick the trial waits on. When the
        environment sent it as a delta, the full observation is rebuilt with the class's
        delta-apply function from the slot's last snapshot and the deltas since (a slot is
        joined again by the session that holds it, mid-trial), else from the class's empty
        observation.
        """
        slot = self.humans.join(actor_id, session_id, actor_class)
        observation = self._current_observation(slot.actor)
        if not observation.data.snapshot:
            make_snapshot(slot, observation.data)
        return orchestrator_pb2.TrialStartReply(
            trial_id=self.id,
            actor_id=actor_id,
            human_config=slot.actor.config,
            observation=observation,
            actor_counts=self.actor_counts,
        )

    def give_feedback(self, feedbacks: Any) -> None:
        """Client feedback; tick_id -1 means the tick the clients' next actions are for.

        Raises:
            StatusError: INVALID_ARGUMENT naming a feedback that cannot count (nothing filed).
        """
        check_feedbacks(self.id, feedbacks, len(self.actors))
        self._book.add(feedbacks, self._tick)

    def send_messages(self, messages: Any, session_id: str) -> None:
        """Client messages, routed at the end of the current tick.

        Raises:
            StatusError: INVALID_ARGUMENT naming a message without receiver (nothing sent).
        """
        check_messages(self.id, messages, len(self.actors))
        for message in messages:
            message.sender_id = self.humans.sender(message.sender_id, session_id)
        self._outbox.extend(messages)
