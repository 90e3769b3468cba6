"""`cogment.delta.apply_delta`: what a project's delta-apply function may return."""

from __future__ import annotations

import dataclasses
import types

import pytest

from cogment.delta import apply_delta


def test_the_function_may_return_a_new_observation_or_update_in_place(
    cog_settings: types.ModuleType,
) -> None:
    player = cog_settings.actor_classes.player
    board = player.observation_space(cells=[0, 0])
    delta = player.observation_delta(cell=1, value=7, turn=2)
    rebuilt = apply_delta(player, board, delta)  # the project's function copies
    assert list(rebuilt.cells) == [0, 7] and list(board.cells) == [0, 0]  # type: ignore[attr-defined]

    def in_place(previous, delta):  # type: ignore[no-untyped-def]
        previous.cells[delta.cell] = delta.value  # and forgets to return it

    in_place_class = dataclasses.replace(player, observation_delta_apply_fn=in_place)
    assert apply_delta(in_place_class, board, delta) is board
    assert list(board.cells) == [0, 7]


def test_a_function_returning_another_type_is_named(cog_settings: types.ModuleType) -> None:
    player = cog_settings.actor_classes.player

    def returns_the_delta(previous, delta):  # type: ignore[no-untyped-def]
        return delta

    wrong = dataclasses.replace(player, observation_delta_apply_fn=returns_the_delta)
    with pytest.raises(TypeError) as error:
        apply_delta(wrong, player.observation_space(), player.observation_delta())
    assert str(error.value) == (
        "the delta_apply_fn test_a_function_returning_another_type_is_named.<locals>."
        "returns_the_delta of actor class 'player' returned BoardDelta, expected testproject.Board"
    )


def test_a_delta_type_without_a_function_is_refused(cog_settings: types.ModuleType) -> None:
    player = dataclasses.replace(cog_settings.actor_classes.player, observation_delta_apply_fn=None)
    with pytest.raises(TypeError, match="declares a delta type but no delta_apply_fn"):
        apply_delta(player, player.observation_space(), player.observation_delta())
