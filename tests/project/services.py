"""The test project's user services: deterministic, reusable by every test suite.

Import this module only after `cog_settings` is importable (the `cog_settings` fixture of
tests/conftest.py does it; the `project_services` fixture returns this module).

The game: a board of `EnvConfig.size` cells (4 when unset), all 0 at tick 0.

* `BoardEnv` (Environment)
    - `start(config)` returns one `Board(cells=[0]*size, turn=0)` for every actor (a single
      message: one ObservationData on the wire, every actors_map entry 0).
    - `update(actions)` consuming tick t: only the player `t % n_players` (its index in
      the class) moves: `cells[move.cell % size] += mover.actor_id + 1`; it gets feedback
      `value=<new cell value>, confidence=1` for tick t. `turn` becomes t+1. Observations:
      watchers get the full Board; players get one shared `BoardDelta(cell, value,
      turn=t+1)`, except when (t+1) % 3 == 0, where they get the same Board object as the
      watchers (so the whole set is one ObservationData). With no players, everyone gets
      the Board.
    - Each message received (`on_message`) from an actor is answered in the next update
      with `Chat(text="env got: <text>")` to its sender.
    - Ends the trial (`end_trial`) after the update consuming tick `rounds - 1` when
      `TrialConfig.rounds` > 0.
* `PlayerAgent` (actor class `player`)
    - `__init__`: name = `PlayerConfig.name` or "player<i>"; queues
      `Chat(text="hello from <name>")` to the environment (sent with the first Decide).
    - `decide(board)`: `Move(cell=(board.turn + id_in_class) % len(board.cells))`; gives every
      watcher feedback `value=board.turn, confidence=1` (tick filled with the decide's tick).
    - `reward(r)`: queues `Chat(text="<name> rewarded <r.value:g>")` to the environment.
* `WatcherAgent` (actor class `watcher`)
    - `decide(board)`: `Nothing()`; gives every player feedback `value=sum(board.cells),
      confidence=0.5` and sends every player `Chat(text="turn <board.turn>")`.
* `Hooks` (TrialHooks)
    - sets `environment.config.label = "hooked:<user_id>"`, and `environment.config.size =
      trial_config.env_size` when env_size > 0;
    - `Hooks.pointing_to(environment=..., agents=...)` makes a subclass that also rewrites the
      environment endpoint and the non-human actor endpoints of each class
      (`agents={"player": "grpc://127.0.0.1:<port>", ...}`, for services on port 0).

Every service records what it saw in `JOURNAL` (`JOURNAL.events(trial_id)`): tuples
`(who, event, detail)`, e.g. `("player1", "decide", (turn, cells))`, `("env", "end", None)`.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Optional

import cog_settings
from data_pb2 import Board, BoardDelta, Chat, Move, Nothing

import cogment


class Journal:
    """A thread-safe record of what the services saw, per trial."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[tuple[str, str, Any]]] = {}

    def record(self, trial_id: str, who: str, event: str, detail: Any = None) -> None:
        with self._lock:
            self._events.setdefault(trial_id, []).append((who, event, detail))

    def events(self, trial_id: str, who: Optional[str] = None) -> list[tuple[str, str, Any]]:
        with self._lock:
            events = list(self._events.get(trial_id, ()))
        return [e for e in events if who is None or e[0] == who]


JOURNAL = Journal()


def _texts(messages: Any) -> list[tuple[int, str]]:
    out = []
    for message in messages.messages:
        chat = Chat()
        message.payload.Unpack(chat)
        out.append((message.sender_id, chat.text))
    return out


class BoardEnv(cogment.Environment):
    """See the module docstring."""

    VERSIONS = {"board-env": "1.0.0"}

    def start(self, config: Any) -> Any:
        self.size = (config.size if config is not None else 0) or 4
        self.board = Board(cells=[0] * self.size, turn=0)
        self.inbox: list[tuple[int, str]] = []
        JOURNAL.record(self.trial.id, "env", "start", (self.size, config.label if config else ""))
        return self.board

    def update(self, actions: Any) -> Any:
        trial = self.trial
        tick = trial.tick_id
        JOURNAL.record(trial.id, "env", "update", (tick, [str(a).strip() for a in actions.all]))
        players = trial.actors.player
        delta = None
        if players:
            mover = players[tick % len(players)]
            cell = actions.player[mover.id_in_class].cell % self.size
            self.board.cells[cell] += mover.actor_id + 1
            mover.add_feedback(value=self.board.cells[cell], confidence=1.0)
            delta = BoardDelta(cell=cell, value=self.board.cells[cell], turn=tick + 1)
        self.board.turn = tick + 1
        snapshot = Board()
        snapshot.CopyFrom(self.board)
        table = trial.new_observation_table()
        for i in range(len(trial.actors.watcher)):
            table.watcher[i] = snapshot
        for i in range(len(players)):
            table.player[i] = snapshot if delta is None or (tick + 1) % 3 == 0 else delta
        for sender, text in self.inbox:
            if sender >= 0:
                trial.actors.all[sender].send_message(Chat(text=f"env got: {text}"))
        self.inbox = []
        rounds = trial.trial_config.rounds if trial.trial_config is not None else 0
        if rounds and tick + 1 >= rounds:
            self.end_trial = True
        return table

    def on_message(self, messages: Any) -> None:
        texts = _texts(messages)
        JOURNAL.record(self.trial.id, "env", "on_message", texts)
        self.inbox.extend(texts)

    def end(self) -> None:
        JOURNAL.record(self.trial.id, "env", "end", None)


class PlayerAgent(cogment.Agent):
    """See the module docstring."""

    VERSIONS = {"player-agent": "1.0.0"}
    actor_class = cog_settings.actor_classes.player

    def __init__(self, trial: Any, actor: Any, config: Any) -> None:
        super().__init__(trial, actor, config)
        self.name = (config.name if config is not None else "") or f"player{self.id_in_class}"
        self.who = f"player{actor.actor_id}"
        trial.multi_cast(Chat(text=f"hello from {self.name}"), [-1])
        JOURNAL.record(trial.id, self.who, "init", self.name)

    def decide(self, observation: Any) -> Any:
        board = observation
        JOURNAL.record(self.trial.id, self.who, "decide", (board.turn, list(board.cells)))
        for watcher in self.trial.actors.watcher:
            watcher.add_feedback(value=float(board.turn), confidence=1.0)
        return Move(cell=(board.turn + self.id_in_class) % max(len(board.cells), 1))

    def reward(self, reward: Any) -> None:
        JOURNAL.record(self.trial.id, self.who, "reward", (reward.value, reward.confidence))
        self.trial.multi_cast(Chat(text=f"{self.name} rewarded {reward.value:g}"), [-1])

    def on_message(self, messages: Any) -> None:
        JOURNAL.record(self.trial.id, self.who, "on_message", _texts(messages))

    def end(self) -> None:
        JOURNAL.record(self.trial.id, self.who, "end", None)


class WatcherAgent(cogment.Agent):
    """See the module docstring."""

    VERSIONS = {"watcher-agent": "1.0.0"}
    actor_class = cog_settings.actor_classes.watcher

    def decide(self, observation: Any) -> Any:
        board = observation
        who = f"watcher{self.actor.actor_id}"
        JOURNAL.record(self.trial.id, who, "decide", (board.turn, list(board.cells)))
        players = self.trial.actors.player
        for player in players:
            player.add_feedback(value=float(sum(board.cells)), confidence=0.5)
        if players:
            self.trial.multi_cast(Chat(text=f"turn {board.turn}"), players)
        return Nothing()

    def on_message(self, messages: Any) -> None:
        JOURNAL.record(
            self.trial.id, f"watcher{self.actor.actor_id}", "on_message", _texts(messages)
        )

    def end(self) -> None:
        JOURNAL.record(self.trial.id, f"watcher{self.actor.actor_id}", "end", None)


class Hooks(cogment.TrialHooks):
    """See the module docstring."""

    VERSIONS = {"hooks": "1.0.0"}
    environment_endpoint: ClassVar[Optional[str]] = None
    agent_endpoints: ClassVar[dict[str, str]] = {}

    @classmethod
    def pointing_to(
        cls, environment: Optional[str] = None, agents: Optional[dict[str, str]] = None
    ) -> type[Hooks]:
        """A Hooks subclass that also sends the environment to `environment` and the
        non-human actors of each class to `agents[class id]` (grpc://host:port)."""
        return type(
            "Hooks", (cls,), {"environment_endpoint": environment, "agent_endpoints": agents or {}}
        )

    def pre_trial(self, trial_id: str, user_id: str, trial_params: Any) -> Any:
        JOURNAL.record(trial_id, "hooks", "pre_trial", user_id)
        trial_config = trial_params.trial_config
        env_config = trial_params.environment.config
        if trial_config is not None and trial_config.env_size > 0:
            env_config.size = trial_config.env_size
        env_config.label = f"hooked:{user_id}"
        if self.environment_endpoint:
            trial_params.environment.endpoint = self.environment_endpoint
        for actor in trial_params.actors:
            if actor.endpoint != "human" and actor.actor_class in self.agent_endpoints:
                actor.endpoint = self.agent_endpoints[actor.actor_class]
        return trial_params
