"""The documented API, word for word, over real gRPC: the end listener, `ClientTrial` as a
`cogment.Trial`, defaults of `send_message`/`multi_cast`, `actor_counts` lists,
`cog_settings.ObservationTable`, `start_trial` plugins, what a client sends at its end,
configs present only when given, and observations kept across ticks.

The probe services below record what user code sees, in order, per trial.
"""

from __future__ import annotations

import dataclasses
import threading
import types
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

import cogment
from cogment.api import common_pb2
from cogment.client import ClientTrial, Connection
from cogment.settings import ActorClassList
from tests.conftest import LOCALHOST, endpoint

TIMEOUT = 10.0


class Journal:
    """What the probe services saw, in order, per trial (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[tuple[str, str, Any]]] = {}

    def record(self, trial_id: str, who: str, event: str, detail: Any = None) -> None:
        with self._lock:
            self._events.setdefault(trial_id, []).append((who, event, detail))

    def events(self, trial_id: str, who: Optional[str] = None) -> list[tuple[str, str, Any]]:
        with self._lock:
            return [e for e in self._events.get(trial_id, ()) if who is None or e[0] == who]


PROBES = Journal()


def _payloads(messages: Any) -> list[tuple[int, Optional[str]]]:
    """(sender, Chat text or None for a message without payload) of a MessageCollection."""
    from data_pb2 import Chat

    out: list[tuple[int, Optional[str]]] = []
    for message in messages.messages:
        if not message.HasField("payload"):
            out.append((message.sender_id, None))
            continue
        chat = Chat()
        assert message.payload.Unpack(chat)
        out.append((message.sender_id, chat.text))
    return out


def _config(config: Any) -> Any:
    return None if config is None else str(config).strip()


class ProbeEnv(cogment.Environment):
    """One Board for all; records what it sees; messages from user code on request."""

    def start(self, config: Any) -> Any:
        from data_pb2 import Board

        trial = self.trial
        PROBES.record(trial.id, "env", "start", (_config(config), _config(trial.trial_config)))
        PROBES.record(trial.id, "env", "actor_counts", trial.actor_counts)
        table = trial.new_observation_table()
        PROBES.record(trial.id, "env", "table", isinstance(table, trial.settings.ObservationTable))
        for slot_index in range(len(table.all)):
            table.all[slot_index].snapshot = Board(cells=[0, 0], turn=0)
        return table

    def update(self, actions: Any) -> Any:
        from data_pb2 import Board

        return Board(cells=[0, 0], turn=self.trial.tick_id + 1)

    def on_message(self, messages: Any) -> None:
        PROBES.record(self.trial.id, "env", "on_message", _payloads(messages))

    def end(self) -> None:
        PROBES.record(self.trial.id, "env", "end")


class ProbeAgent(cogment.Agent):
    """A player agent recording its config, rewards and messages; at tick 1 it sends the
    human (actor 0) a message without payload, with the documented default."""

    def __init__(self, trial: Any, actor: Any, config: Any) -> None:
        super().__init__(trial, actor, config)
        PROBES.record(trial.id, "agent", "init", (_config(config), _config(trial.trial_config)))
        PROBES.record(trial.id, "agent", "actor_counts", trial.actor_counts)

    def decide(self, observation: Any) -> Any:
        from data_pb2 import Move

        PROBES.record(self.trial.id, "agent", "decide", self.trial.tick_id)
        if self.trial.tick_id == 1:
            self.trial.actors.player[0].send_message()
        return Move(cell=0)

    def reward(self, reward: Any) -> None:
        PROBES.record(self.trial.id, "agent", "reward", (reward.feedbacks[0].tick_id, reward.value))

    def on_message(self, messages: Any) -> None:
        PROBES.record(self.trial.id, "agent", "on_message", _payloads(messages))

    def end(self) -> None:
        PROBES.record(self.trial.id, "agent", "end")


@dataclasses.dataclass
class Probes:
    settings: Any
    env: str
    agent: str

    def params(
        self,
        *,
        max_steps: int = 0,
        trial_config: Optional[Any] = None,
        env_config: Optional[Any] = None,
        agent_config: Optional[Any] = None,
    ) -> common_pb2.TrialParams:
        """One human player and one probe player; configs only where given."""
        params = common_pb2.TrialParams(max_steps=max_steps)
        params.environment.endpoint = self.env
        if trial_config is not None:
            params.trial_config.SetInParent()
            params.trial_config.content = trial_config.SerializeToString()
        if env_config is not None:
            params.environment.config.SetInParent()
            params.environment.config.content = env_config.SerializeToString()
        params.actors.add(actor_class="player", endpoint="human")
        agent = params.actors.add(actor_class="player", endpoint=self.agent)
        if agent_config is not None:
            agent.config.SetInParent()
            agent.config.content = agent_config.SerializeToString()
        return params


@pytest.fixture
def probes(cog_settings: types.ModuleType, start_server: Callable[..., Any]) -> Probes:
    ProbeAgent.actor_class = cog_settings.actor_classes.player
    return Probes(
        cog_settings, endpoint(start_server(ProbeEnv)), endpoint(start_server(ProbeAgent))
    )


@pytest.fixture
def run(
    cog_settings: types.ModuleType,
) -> Iterator[Callable[..., tuple[cogment.Orchestrator, Connection]]]:
    """`run(params, settings=None)`: an orchestrator with these default trial parameters,
    and a Connection to it (with `settings` as the client's cog_settings)."""
    opened: list[Any] = []

    def start(
        params: common_pb2.TrialParams, settings: Any = None
    ) -> tuple[cogment.Orchestrator, Connection]:
        orch = cogment.Orchestrator(
            cog_settings, port=0, host=LOCALHOST, response_timeout=TIMEOUT,
            default_trial_params=params, pre_hooks=[], datalog_endpoint="",
        )  # fmt: skip
        opened.append(orch.start())
        conn = Connection(settings or cog_settings, orch.endpoint, timeout=TIMEOUT)
        opened.append(conn)
        return orch, conn

    yield start
    for item in reversed(opened):
        item.close() if isinstance(item, Connection) else item.stop()


def test_the_end_listener_takes_no_parameters(probes: Probes, run: Any, data: Any) -> None:
    _, conn = run(probes.params(max_steps=2))
    trial = conn.start_trial(probes.settings.actor_classes.player)
    done = threading.Event()
    trial.set_on_trial_end_event_listener(lambda: done.set())
    trial.do_action(data.Move(cell=0))
    trial.do_action(data.Move(cell=0))
    assert done.wait(TIMEOUT), "the end listener was not called"
    assert trial.end_reason == "max_steps (2) reached"


def test_a_client_trial_is_a_trial(probes: Probes, run: Any, data: Any) -> None:
    settings = probes.settings
    _, conn = run(probes.params())
    trial: ClientTrial = conn.start_trial(
        settings.actor_classes.player, trial_cfg=data.TrialConfig(rounds=7)
    )
    assert isinstance(trial, cogment.Trial) and issubclass(ClientTrial, cogment.Trial)
    assert trial.id and trial.settings is settings
    assert trial.actor_counts == [2, 0] and type(trial.actor_counts) is list
    assert [a.actor_id for a in trial.actors.all] == [0, 1]
    assert trial.actors.player[1].actor_class is settings.actor_classes.player
    assert trial.actors.watcher == []
    assert trial.tick_id == 0
    assert trial.trial_config == data.TrialConfig(rounds=7)
    table = trial.new_observation_table()
    assert isinstance(table, settings.ObservationTable) and len(table.all) == 2
    trial.end()

    without = conn.start_trial(settings.actor_classes.player)
    assert without.trial_config is None
    without.end()


def test_actor_counts_are_lists_and_tables_are_observation_tables(
    probes: Probes, run: Any, data: Any
) -> None:
    _, conn = run(probes.params())
    trial = conn.start_trial("player")
    trial.end()
    events = PROBES.events(trial.id)
    assert ("env", "actor_counts", [2, 0]) in events
    assert ("agent", "actor_counts", [2, 0]) in events
    assert ("env", "table", True) in events
    assert all(type(e[2]) is list for e in events if e[1] == "actor_counts")


def test_send_message_and_multi_cast_defaults(probes: Probes, run: Any, data: Any) -> None:
    _, conn = run(probes.params())
    trial = conn.start_trial("player")
    agent = trial.actors.player[1]
    agent.send_message()  # no payload
    trial.multi_cast()  # nobody
    trial.multi_cast(user_data=data.Chat(text="to nobody"), send_list=[])
    agent.multi_cast(data.Chat(text="to the env"), [-1])
    trial.do_action(data.Move(cell=0))  # the queued messages go out first: delivered at tick 0
    _, _, messages = trial.do_action(data.Move(cell=0))  # tick 1: the agent's own message
    assert _payloads(messages) == [(1, None)]
    trial.end()
    events = PROBES.events(trial.id)
    assert [e[2] for e in events if e[:2] == ("agent", "on_message")] == [[(0, None)]]
    assert [e[2] for e in events if e[:2] == ("env", "on_message")] == [[(0, "to the env")]]


def test_plugins_hear_of_the_start_and_of_every_end(probes: Probes, run: Any, data: Any) -> None:
    @dataclasses.dataclass
    class Plugin:
        started: list[ClientTrial] = dataclasses.field(default_factory=list)
        ends: list[str] = dataclasses.field(default_factory=list)
        ended: threading.Event = dataclasses.field(default_factory=threading.Event)

        def start_trial(self, trial: ClientTrial) -> Plugin:
            assert trial.tick_id == 0 and not trial.is_over
            self.started.append(trial)
            return self

        def trial_ended(self) -> None:
            self.ends.append(self.started[-1].end_reason)
            self.ended.set()

    class Silent:
        def start_trial(self, trial: ClientTrial) -> None:  # returns nothing: only started
            pass

    _, conn = run(probes.params(max_steps=1))
    plugin = Plugin()
    trial = conn.start_trial("player", plugins=[plugin, Silent()])
    assert plugin.started == [trial]
    trial.end()  # by the client: told before end() returns
    assert plugin.ends == ["ended by this client"]

    remote = Plugin()
    trial = conn.start_trial("player", plugins=[remote])
    trial.do_action(data.Move(cell=0))
    assert remote.ended.wait(TIMEOUT)
    trial.end()
    assert remote.ends == ["max_steps (1) reached"]  # once only


def test_what_a_client_sends_with_its_end_is_delivered(probes: Probes, run: Any, data: Any) -> None:
    _, conn = run(probes.params())
    trial = conn.start_trial("player")
    trial.do_action(data.Move(cell=0))
    agent = trial.actors.player[1]
    agent.add_feedback(value=3.0, confidence=1.0)  # for tick 1, the one the trial waits on
    agent.send_message(data.Chat(text="bye"))
    trial.multi_cast(data.Chat(text="bye env"), [-1])
    trial.end()  # flushes the feedback and messages first
    agent_events = [e[1:] for e in PROBES.events(trial.id, "agent") if e[1] != "decide"]
    assert agent_events[-3:] == [
        ("reward", (1, 3.0)),
        ("on_message", [(0, "bye")]),
        ("end", None),
    ]
    env_events = [e[1:] for e in PROBES.events(trial.id, "env")][-2:]
    assert env_events == [("on_message", [(0, "bye env")]), ("end", None)]


def test_configs_are_none_when_absent_and_decoded_when_present(
    probes: Probes, run: Any, data: Any
) -> None:
    _, conn = run(probes.params())
    bare = conn.start_trial("player")
    assert bare.config is None
    bare.end()
    assert ("env", "start", (None, None)) in PROBES.events(bare.id)
    assert ("agent", "init", (None, None)) in PROBES.events(bare.id)

    # present, even with every field at its default
    _, conn = run(
        probes.params(
            trial_config=data.TrialConfig(),
            env_config=data.EnvConfig(),
            agent_config=data.PlayerConfig(),
        )
    )
    given = conn.start_trial("player")
    given.end()
    assert ("env", "start", ("", "")) in PROBES.events(given.id)
    assert ("agent", "init", ("", "")) in PROBES.events(given.id)


def test_observations_from_an_in_place_delta_apply_fn_are_one_object(
    probes: Probes, run: Any, data: Any, start_server: Callable[..., Any]
) -> None:
    """Documented: with a delta_apply_fn that updates its first argument in place, the
    observation `do_action` returns is the same object every tick (copy it to keep it);
    with one that returns a new message, each tick has its own."""

    class DeltaEnv(ProbeEnv):
        def update(self, actions: Any) -> Any:
            return data.BoardDelta(
                cell=1, value=self.trial.tick_id + 1, turn=self.trial.tick_id + 1
            )

    def in_place(previous: Any, delta: Any) -> None:
        previous.cells[delta.cell] = delta.value
        previous.turn = delta.turn

    settings = probes.settings
    player = dataclasses.replace(settings.actor_classes.player, observation_delta_apply_fn=in_place)
    client_settings = types.SimpleNamespace(
        actor_classes=ActorClassList(player, settings.actor_classes.watcher),
        trial=settings.trial,
        environment=settings.environment,
    )
    probes = dataclasses.replace(probes, env=endpoint(start_server(DeltaEnv)))
    _, conn = run(probes.params(), client_settings)
    trial = conn.start_trial("player")
    first, _, _ = trial.do_action(data.Move(cell=0))
    second, _, _ = trial.do_action(data.Move(cell=0))
    assert first is second and first.turn == 2  # changed under the caller
    trial.end()

    _, conn = run(probes.params())  # the project's delta.apply_board_delta makes a new Board
    trial = conn.start_trial("player")
    first, _, _ = trial.do_action(data.Move(cell=0))
    second, _, _ = trial.do_action(data.Move(cell=0))
    assert first is not second and (first.turn, second.turn) == (1, 2)
    trial.end()
