"""The pedestrians: agents that cross the streets, carefully.

    python pedestrian.py [--port 9001]

One service plays every pedestrian of every trial (the SDK makes one `Pedestrian` per actor).
A pedestrian walks to the other side of its street and back, waits at the curb while the car
is close (unless, now and then, it steps out without looking), tells the driver when it steps
onto the road, and thanks a driver who waited for it.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from typing import Any, Optional

import cog_settings
from city_pb2 import Chat, Direction, Observation, PedestrianAction, PedestrianConfig, Position
from world import distance, is_road, step, toward

import cogment

log = logging.getLogger("city.pedestrian")

CAUTION = 2  # waits at the curb while the car is this close to its next cell
REST = 6  # ticks spent on the sidewalk after a crossing (more for later pedestrians)
DISTRACTED = 0.2  # the chance, at the curb, of stepping onto the road without looking


class Pedestrian(cogment.Agent):
    VERSIONS = {"pedestrian": "1.0.0"}
    actor_class = cog_settings.actor_classes.pedestrian

    def __init__(self, trial: Any, actor: Any, config: Optional[PedestrianConfig]) -> None:
        super().__init__(trial, actor, config)
        self.name = config.name if config and config.name else f"pedestrian-{self.id_in_class}"
        self.car_before: Optional[Position] = None
        self.was_on_road = False
        self.crossings = 0
        self.resting = 0
        seed = self.trial.trial_config.seed if self.trial.trial_config else 0
        self.rng = random.Random(f"{seed}-{self.id_in_class}")  # the same trial, the same walk
        self.total = 0.0
        self.rewards = 0
        self.messages = 0

    def say(self, text: str) -> None:
        log.info(f"{self.name} ({self.trial.id[:8]}) tick {self.trial.tick_id}: {text}")

    def decide(self, observation: Observation) -> PedestrianAction:
        me = observation.pedestrians[self.id_in_class]
        car, driver = observation.car, self.trial.actors.driver[0]
        on_road = is_road(observation, me.position)
        if self.was_on_road and self.car_before == car:
            driver.add_feedback(value=1.0, confidence=0.5)  # the car waited for me: thanks
            self.say("the car waited for me: +1 to the driver")
        self.car_before, self.was_on_road = Position(x=car.x, y=car.y), on_road
        if me.crossings > self.crossings:  # across: rest a little before crossing back
            self.crossings, self.resting = me.crossings, REST + 2 * self.id_in_class
        if self.resting > 0:
            self.resting -= 1
            return PedestrianAction(direction=Direction.STAY)

        direction = toward(me.position, me.target)
        ahead = step(me.position, direction)
        if not on_road and is_road(observation, ahead):
            if self.rng.random() < DISTRACTED:
                self.say("steps onto the road without looking!")
            elif distance(car, ahead) <= CAUTION:
                return PedestrianAction(direction=Direction.STAY)  # wait at the curb
            driver.send_message(Chat(text=f"{self.name}: crossing at ({ahead.x},{ahead.y})"))
            self.say(f"crossing at ({ahead.x},{ahead.y}), told the driver")
        return PedestrianAction(direction=direction)

    def reward(self, reward: Any) -> None:
        self.rewards += 1
        self.total += reward.value
        self.say(f"reward {reward.value:+.2f} from {len(reward.feedbacks)} feedback(s)")

    def on_message(self, messages: Any) -> None:
        for message in messages.messages:
            chat = Chat()
            if message.payload.Unpack(chat):
                self.messages += 1
                self.say(f'message from actor {message.sender_id}: "{chat.text}"')

    def end(self) -> None:
        self.say(
            f"trial over: {self.rewards} rewards (total {self.total:+.2f}), "
            f"{self.messages} messages"
        )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    parser = argparse.ArgumentParser(description="The pedestrian agent service.")
    parser.add_argument("--port", type=int, default=9001)
    port = parser.parse_args().port
    cogment.GrpcServer(Pedestrian, cog_settings, port=port).serve()  # until Ctrl-C / SIGTERM


if __name__ == "__main__":
    main()
