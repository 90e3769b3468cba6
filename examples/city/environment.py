"""The city environment: one car (the driver) and pedestrians crossing its streets.

    python environment.py [--port 9002]

Each tick it moves everyone, rewards progress and punishes collisions, and ends the trial
when the car reaches its goal or after too many collisions. Pedestrians see the whole city
every tick; the driver gets only what changed (an ObservationDelta).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from typing import Any, Optional

import cog_settings
from city_pb2 import Chat, EnvConfig, Observation, ObservationDelta, PedestrianState, Position
from world import copy_of, distance, inside, is_road, step

import cogment

log = logging.getLogger("city.environment")

WIDTH, HEIGHT = 16, 9
MAIN_STREET_Y, SIDE_STREET_X = 4, 12
CAR_START, GOAL = Position(x=0, y=MAIN_STREET_Y), Position(x=SIDE_STREET_X, y=HEIGHT - 1)

PROGRESS, DELAY, COLLISION, ARRIVAL, CROSSED = 1.0, -0.2, -5.0, 10.0, 1.0


def new_pedestrian(index: int, rng: random.Random) -> PedestrianState:
    """Even pedestrians cross the main street, odd ones the side street (below the corner)."""
    side = rng.choice((-1, 1))
    if index % 2 == 0:
        x = rng.randint(3, SIDE_STREET_X - 2)
        start, target = Position(x=x, y=MAIN_STREET_Y + side), Position(x=x, y=MAIN_STREET_Y - side)
    else:
        y = rng.randint(MAIN_STREET_Y + 1, HEIGHT - 2)
        start, target = Position(x=SIDE_STREET_X + side, y=y), Position(x=SIDE_STREET_X - side, y=y)
    return PedestrianState(index=index, position=start, target=target)


class CityEnv(cogment.Environment):
    """The city: `start` lays it out, `update` plays one tick."""

    VERSIONS = {"city": "1.0.0"}

    def start(self, config: Optional[EnvConfig]) -> Observation:
        config = config or EnvConfig()
        self.max_collisions = config.max_collisions or 3
        rng = random.Random(config.seed)
        self.city = Observation(
            tick=0,
            width=WIDTH,
            height=HEIGHT,
            main_street_y=MAIN_STREET_Y,
            side_street_x=SIDE_STREET_X,
            car=CAR_START,
            goal=GOAL,
        )
        for i in range(len(self.trial.actors.pedestrian)):
            self.city.pedestrians.append(new_pedestrian(i, rng))
        self.driver_total = 0.0
        self.ending = "the trial was ended from outside"
        log.info(
            f"trial {self.trial.id[:8]}: a {WIDTH}x{HEIGHT} city, "
            f"{len(self.city.pedestrians)} pedestrians, seed {config.seed}"
        )
        # tick 0: one observation for everyone (a copy: update() goes on changing self.city)
        return copy_of(self.city)

    def update(self, actions: Any) -> cogment.ObservationTable:
        city, driver = self.city, self.trial.actors.driver[0]
        before = [copy_of(p) for p in city.pedestrians]
        car_before = copy_of(city.car)

        wanted = step(city.car, actions.driver[0].direction)
        if is_road(city, wanted):  # the car keeps to the roads
            city.car.CopyFrom(wanted)
        for i, pedestrian in enumerate(city.pedestrians):
            moved = step(pedestrian.position, actions.pedestrian[i].direction)
            if inside(city, moved):
                pedestrian.position.CopyFrom(moved)

        for i, pedestrian in enumerate(city.pedestrians):
            if pedestrian.position == city.car:
                city.collisions += 1
                log.info(f"tick {self.trial.tick_id}: collision with pedestrian {i}!")
                driver.add_feedback(value=COLLISION, confidence=1.0)
                self.trial.actors.pedestrian[i].add_feedback(value=COLLISION, confidence=1.0)
                if city.car != car_before:  # whoever moved into the other goes back
                    city.car.CopyFrom(car_before)
                else:
                    pedestrian.position.CopyFrom(before[i].position)
            elif pedestrian.position == pedestrian.target:  # across: turn around
                pedestrian.crossings += 1
                if i % 2 == 0:
                    pedestrian.target.y = 2 * MAIN_STREET_Y - pedestrian.target.y
                else:
                    pedestrian.target.x = 2 * SIDE_STREET_X - pedestrian.target.x
                self.trial.actors.pedestrian[i].add_feedback(value=CROSSED, confidence=1.0)

        progress = distance(car_before, GOAL) - distance(city.car, GOAL)
        value = PROGRESS * progress if progress else DELAY
        if city.car == GOAL:
            value += ARRIVAL
            self.end_trial, self.ending = True, "the car reached its goal"
        elif city.collisions >= self.max_collisions:
            self.end_trial, self.ending = True, f"{city.collisions} collisions"
        driver.add_feedback(value=value, confidence=1.0)
        self.driver_total += value

        city.tick = self.trial.tick_id + 1
        delta = ObservationDelta(tick=city.tick, car=city.car, collisions=city.collisions)
        delta.moved.extend(p for old, p in zip(before, city.pedestrians) if p != old)
        snapshot = copy_of(city)
        table: Any = self.trial.new_observation_table()  # table.<class>[i]
        table.driver[0] = delta  # an ObservationDelta: sent as a delta
        for i in range(len(city.pedestrians)):
            table.pedestrian[i] = snapshot  # one object: on the wire once
        return table

    def on_message(self, messages: Any) -> None:
        for message in messages.messages:
            chat = Chat()
            if message.payload.Unpack(chat):
                log.info(
                    f'tick {self.trial.tick_id}: message from actor {message.sender_id}: "{chat.text}"'
                )

    def end(self) -> None:
        log.info(
            f"trial {self.trial.id[:8]} over after {self.city.tick} ticks: {self.ending} "
            f"({self.city.collisions} collisions, driver feedback {self.driver_total:+.1f}, "
            f"crossings {[p.crossings for p in self.city.pedestrians]})"
        )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    parser = argparse.ArgumentParser(description="The city environment service.")
    parser.add_argument("--port", type=int, default=9002)
    port = parser.parse_args().port
    cogment.GrpcServer(CityEnv, cog_settings, port=port).serve()  # until Ctrl-C / SIGTERM


if __name__ == "__main__":
    main()
