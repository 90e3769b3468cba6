"""Delta-apply function of the test project."""

from __future__ import annotations

from typing import Any


def apply_board_delta(previous: Any, delta: Any) -> Any:
    board = type(previous)()
    board.CopyFrom(previous)
    while len(board.cells) <= delta.cell:
        board.cells.append(0)
    board.cells[delta.cell] = delta.value
    board.turn = delta.turn
    return board
