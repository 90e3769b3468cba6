"""What the test project's services compute (tests/project/services.py), to check trials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BoardModel:
    """The board of `BoardEnv` for a trial whose players have the actor ids `player_ids`."""

    def __init__(self, size: int, player_ids: Sequence[int]) -> None:
        self.cells = [0] * size
        self.turn = 0
        self.player_ids = list(player_ids)
        self.history: list[tuple[int, list[int]]] = [(0, list(self.cells))]

    def agent_move(self, id_in_class: int) -> int:
        """The cell a PlayerAgent picks on the current observation."""
        return (self.turn + id_in_class) % len(self.cells)

    def step(self, moves: Sequence[int]) -> tuple[int, int]:
        """Applies tick `turn` given every player's cell (by index in the class); returns
        (the mover's actor id, the feedback value the environment gives it)."""
        index = self.turn % len(self.player_ids)
        cell = moves[index] % len(self.cells)
        mover = self.player_ids[index]
        self.cells[cell] += mover + 1
        self.turn += 1
        self.history.append((self.turn, list(self.cells)))
        return mover, self.cells[cell]

    def board(self, board_type: Any) -> Any:
        return board_type(cells=self.cells, turn=self.turn)


def weighted(feedbacks: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(value, confidence) of a Reward made of (value, confidence) feedbacks."""
    counted = [(v, c) for v, c in feedbacks if c > 0]
    total = sum(c for _, c in counted)
    return (sum(v * c for v, c in counted) / total if total else 0.0), total


def texts(messages: Any) -> list[tuple[int, str]]:
    """(sender, Chat.text) of each message of a MessageCollection."""
    from data_pb2 import Chat

    out = []
    for message in messages.messages:
        chat = Chat()
        assert message.payload.Unpack(chat), message
        out.append((message.sender_id, chat.text))
    return out
