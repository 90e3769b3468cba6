"""Trial parameter checks (what a pre-trial hook may return) and actor ordering."""

from __future__ import annotations

from typing import Any

import pytest

from cogment.api import common_pb2
from cogment.errors import StatusError
from cogment.orchestrator import params


def valid(cog_settings: Any) -> common_pb2.TrialParams:
    result = common_pb2.TrialParams()
    result.CopyFrom(cog_settings.default_trial_params)
    return result


def test_the_project_defaults_are_valid(cog_settings: Any) -> None:
    assert params.problems(valid(cog_settings), cog_settings) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p.actors[1].__setattr__("actor_class", "ghost"), "unknown actor class 'ghost'"),
        (lambda p: p.actors[1].__setattr__("endpoint", "tcp://x:1"), "actors[1].endpoint"),
        (lambda p: p.environment.__setattr__("endpoint", "human"), "environment.endpoint"),
        (lambda p: p.environment.__setattr__("endpoint", ""), "environment.endpoint is missing"),
        (
            lambda p: p.environment.config.__setattr__("content", b"\xff\xff"),
            "testproject.EnvConfig",
        ),
        (lambda p: p.trial_config.__setattr__("content", b"\x0a"), "testproject.TrialConfig"),
        (lambda p: p.actors[1].config.__setattr__("content", b"\x08"), "testproject.PlayerConfig"),
        (lambda p: p.ClearField("actors"), "actors is empty"),
    ],
)
def test_problems_name_the_field(cog_settings: Any, change: Any, expected: str) -> None:
    p = valid(cog_settings)
    change(p)
    found = params.problems(p, cog_settings)
    assert len(found) == 1 and expected in found[0], found


def test_check_raises_invalid_argument_naming_the_source(cog_settings: Any) -> None:
    p = valid(cog_settings)
    p.actors[0].actor_class = "ghost"
    with pytest.raises(StatusError) as caught:
        params.check(p, cog_settings, "pre-trial hook grpc://127.0.0.1:1")
    assert caught.value.code.name == "INVALID_ARGUMENT"
    assert "pre-trial hook grpc://127.0.0.1:1" in caught.value.message
    assert "ghost" in caught.value.message


def test_sort_actors_is_stable_by_class_order(cog_settings: Any) -> None:
    p = common_pb2.TrialParams()
    for actor_class, name in [
        ("watcher", "w0"),
        ("player", "p0"),
        ("watcher", "w1"),
        ("player", "p1"),
    ]:
        p.actors.add(actor_class=actor_class, endpoint=f"grpc://{name}:1")
    params.sort_actors(p, cog_settings)
    assert [a.endpoint for a in p.actors] == [
        "grpc://p0:1",
        "grpc://p1:1",
        "grpc://w0:1",
        "grpc://w1:1",
    ]
    assert params.actor_counts(p, cog_settings) == [2, 2]
