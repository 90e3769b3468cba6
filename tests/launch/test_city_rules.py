"""The city example's parts, one at a time, through `cogment.testing` (no network).

The example's modules (cog_settings, city_pb2, environment, ...) are imported from
examples/city for this module only, then removed, so that they do not clash with the test
project's modules of the same names.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

import cogment
from cogment.testing import AgentHarness, EnvironmentHarness, check_environment
from tests.launch.conftest import CITY

MODULES = ("cog_settings", "city_pb2", "delta", "world", "environment", "pedestrian", "hooks")


@pytest.fixture(scope="module")
def city() -> Iterator[Any]:
    from cogment.generate import generate
    from cogment.launch_config import is_stale

    if is_stale(str(CITY / "cogment.yaml"), str(CITY)):
        generate(str(CITY / "cogment.yaml"), str(CITY))
    saved = {name: sys.modules.pop(name) for name in MODULES if name in sys.modules}
    sys.path.insert(0, str(CITY))
    try:
        yield types.SimpleNamespace(**{name: importlib.import_module(name) for name in MODULES})
    finally:
        sys.path.remove(str(CITY))
        for name in MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def test_the_driver_sees_deltas_that_rebuild_the_snapshots(city: Any) -> None:
    config = city.city_pb2.EnvConfig(seed=1, max_collisions=3)
    steps = check_environment(
        city.environment.CityEnv, city.cog_settings, [1, 2], ticks=30, config=config
    )
    # default actions: everyone stays, the trial goes on, the driver loses time
    assert len(steps) == 30 and not steps[-1].end_trial
    assert {(f.actor_id, round(f.value, 3)) for s in steps for f in s.feedbacks} == {(0, -0.2)}


def test_collisions_are_punished_and_end_the_trial(city: Any) -> None:
    pb = city.city_pb2
    env = EnvironmentHarness(
        city.environment.CityEnv,
        city.cog_settings,
        [1, 2],
        config=pb.EnvConfig(seed=1, max_collisions=2),
    )
    driver, alice, bob = env.start()
    assert driver == alice == bob  # tick 0: one shared observation
    walker = alice.pedestrians[0]
    assert walker.position.x == 4 and walker.position.y in (3, 5)  # seed 1: alice at x=4
    onto_road = pb.Direction.DOWN if walker.position.y == 3 else pb.Direction.UP

    def tick(car: int, pedestrian: int = pb.Direction.STAY) -> Any:
        return env.update(
            [
                pb.DriverAction(direction=car),
                pb.PedestrianAction(direction=pedestrian),
                pb.PedestrianAction(direction=pb.Direction.STAY),
            ]
        )

    step = tick(pb.Direction.RIGHT, onto_road)  # alice waits on the road at (4,4)
    assert not step.end_trial
    for _ in range(2):
        step = tick(pb.Direction.RIGHT)
    assert (step.observations[0].car.x, step.observations[0].car.y) == (3, 4)
    assert [f.value for f in step.feedbacks] == [1.0]  # progress, to the driver (actor 0)

    step = tick(pb.Direction.RIGHT)  # into alice: the car goes back
    driver_obs = step.observations[0]
    assert (driver_obs.car.x, driver_obs.car.y, driver_obs.collisions) == (3, 4, 1)
    assert driver_obs == step.observations[1]  # the driver's delta rebuilt the same city
    by_target = sorted((f.actor_id, round(f.value, 3)) for f in step.feedbacks)
    assert by_target == [(0, -5.0), (0, -0.2), (1, -5.0)]
    assert not step.end_trial

    step = tick(pb.Direction.RIGHT)  # again: the second collision ends the trial
    assert step.end_trial
    assert step.observations[0].collisions == 2
    env.end()


def test_the_goal_ends_the_trial_with_a_bonus(city: Any) -> None:
    pb = city.city_pb2
    env = EnvironmentHarness(
        city.environment.CityEnv, city.cog_settings, [1, 1], config=pb.EnvConfig(seed=3)
    )
    env.start()
    moves = [pb.Direction.RIGHT] * 12 + [pb.Direction.DOWN] * 4
    for i, move in enumerate(moves):
        step = env.update([pb.DriverAction(direction=move), pb.PedestrianAction()])
        if step.observations[0].collisions:
            pytest.fail("the standing pedestrian was hit")
        assert step.end_trial == (i == len(moves) - 1)
    assert [f.value for f in step.feedbacks if f.actor_id == 0] == [11.0]
    env.end()


def test_a_pedestrian_tells_the_driver_and_thanks_it(city: Any) -> None:
    pb = city.city_pb2
    agent = AgentHarness(
        city.pedestrian.Pedestrian,
        city.cog_settings,
        [1, 1],
        actor_id=1,
        config=pb.PedestrianConfig(name="zoe"),
    )
    world = pb.Observation(width=16, height=9, main_street_y=4, side_street_x=12)
    world.car.x, world.car.y = 0, 4
    world.goal.x, world.goal.y = 12, 8
    me = world.pedestrians.add(index=0)
    me.position.x, me.position.y, me.target.x, me.target.y = 6, 3, 6, 5

    step = agent.decide(world, tick_id=0)  # the car is far: it steps onto the road
    assert step.action.direction == pb.Direction.DOWN
    chats = [m for m in step.messages if m.receiver_id == 0]
    assert len(chats) == 1
    text = pb.Chat()
    assert chats[0].payload.Unpack(text) and text.text == "zoe: crossing at (6,4)"

    me.position.y = 4  # on the road: it goes on
    step = agent.decide(world, tick_id=1)
    assert (step.action.direction, step.feedbacks, step.messages) == (pb.Direction.DOWN, [], [])
    me.position.y = 5  # across, and the car waited all along: thanks, then a rest
    step = agent.decide(world, tick_id=2)
    assert [(f.actor_id, f.value, f.confidence) for f in step.feedbacks] == [(0, 1.0, 0.5)]
    agent.end()


def test_the_hook_configures_the_trial(city: Any) -> None:
    pb = city.city_pb2
    params = cogment.TrialParameters(
        trial_config=pb.TrialConfig(pedestrians=4, seed=7),
        environment=cogment.EnvironmentParameters(
            "grpc://localhost:9002", pb.EnvConfig(pedestrians=2, seed=1, max_collisions=3)
        ),
        actors=[
            cogment.ActorParameters("driver", "human"),
            cogment.ActorParameters(
                "pedestrian", "grpc://localhost:9001", pb.PedestrianConfig(name="alice")
            ),
            cogment.ActorParameters(
                "pedestrian", "grpc://localhost:9001", pb.PedestrianConfig(name="bob")
            ),
        ],
    )
    result = city.hooks.CityHooks().pre_trial("trial-1", "user", params)
    assert result.environment.config == pb.EnvConfig(pedestrians=4, seed=7, max_collisions=3)
    assert result.trial_config == pb.TrialConfig(pedestrians=4, seed=7, max_collisions=3)
    assert [(a.actor_class, a.config.name if a.config else None) for a in result.actors] == [
        ("driver", None),
        ("pedestrian", "alice"),
        ("pedestrian", "bob"),
        ("pedestrian", "carol"),
        ("pedestrian", "dave"),
    ]
    assert {a.endpoint for a in result.actors[1:]} == {"grpc://localhost:9001"}

    params.trial_config = pb.TrialConfig(pedestrians=1)
    result = city.hooks.CityHooks().pre_trial("trial-2", "", params)
    assert [a.actor_class for a in result.actors] == ["driver", "pedestrian"]


def test_apply_delta_patches_a_copy(city: Any) -> None:
    pb = city.city_pb2
    before = pb.Observation(tick=3, width=16)
    before.pedestrians.add(index=0).crossings = 1
    before.pedestrians.add(index=1).crossings = 0
    delta = pb.ObservationDelta(tick=4, collisions=1)
    delta.car.x = 5
    delta.moved.add(index=1, crossings=2)
    after = city.delta.apply_delta(before, delta)
    assert (after.tick, after.width, after.car.x, after.collisions) == (4, 16, 5, 1)
    assert [p.crossings for p in after.pedestrians] == [1, 2]
    assert before.tick == 3 and before.pedestrians[1].crossings == 0
