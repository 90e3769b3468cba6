"""The rules of the city every part shares: the streets, moves, distances, and a text map.

The city is a grid; its roads are one row (the main street) and one column (the side
street). The car stays on the roads; pedestrians walk anywhere and cross the streets.
"""

from __future__ import annotations

from typing import TypeVar

from city_pb2 import Direction, Observation, Position
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

STEPS = {
    Direction.STAY: (0, 0),
    Direction.UP: (0, -1),
    Direction.DOWN: (0, 1),
    Direction.LEFT: (-1, 0),
    Direction.RIGHT: (1, 0),
}


def copy_of(message: M) -> M:
    """A copy of a protobuf message (to keep a value, or to hand one over and go on changing
    the original)."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def step(position: Position, direction: int) -> Position:
    """The cell one move away from `position` (it may lie outside the city)."""
    dx, dy = STEPS.get(direction, (0, 0))
    return Position(x=position.x + dx, y=position.y + dy)


def inside(city: Observation, position: Position) -> bool:
    return 0 <= position.x < city.width and 0 <= position.y < city.height


def is_road(city: Observation, position: Position) -> bool:
    return inside(city, position) and (
        position.y == city.main_street_y or position.x == city.side_street_x
    )


def distance(a: Position, b: Position) -> int:
    """Manhattan distance, in moves."""
    return abs(a.x - b.x) + abs(a.y - b.y)


def toward(start: Position, target: Position) -> int:
    """The direction of one move from `start` toward `target` (STAY when there)."""
    if target.x != start.x:
        return Direction.RIGHT if target.x > start.x else Direction.LEFT
    if target.y != start.y:
        return Direction.DOWN if target.y > start.y else Direction.UP
    return Direction.STAY


def draw(city: Observation) -> list[str]:
    """The city as text: `#` blocks, `.` road, `G` the goal, `C` the car, `0`-`9` pedestrians."""
    rows = [
        ["." if is_road(city, Position(x=x, y=y)) else "#" for x in range(city.width)]
        for y in range(city.height)
    ]
    rows[city.goal.y][city.goal.x] = "G"
    for pedestrian in city.pedestrians:
        if inside(city, pedestrian.position):
            rows[pedestrian.position.y][pedestrian.position.x] = str(pedestrian.index % 10)
    rows[city.car.y][city.car.x] = "C"
    return ["".join(row) for row in rows]
