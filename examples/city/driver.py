"""The driver: the city's human front end, a client of the orchestrator.

    python driver.py [--orchestrator localhost:9000]    # you drive, in a terminal
    python driver.py --auto [--delay 0.1]               # a scripted driver plays a trial
    options: --pedestrians N --seed S (the trial config the pre-trial hook applies)

Interactive keys: arrows or WASD move the car, space waits a tick, h honks (a message to
every pedestrian), t thanks the nearest pedestrian (feedback +1), q quits. The car (C)
must reach the goal (G) without running over a pedestrian (0-9).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from typing import Any, Optional

import cog_settings
from city_pb2 import Chat, Direction, DriverAction, Observation, TrialConfig
from world import distance, draw, is_road, step, toward

import cogment
from cogment.client import ClientTrial, Connection

CAUTION = 1  # the scripted driver waits while a pedestrian on the road is this close ahead


def scripted_direction(city: Observation) -> int:
    """Along the main street, then down the side street; waits for pedestrians on the road."""
    direction = toward(city.car, city.goal)  # x first, then y: the streets' L shape
    ahead = step(city.car, direction)
    for pedestrian in city.pedestrians:
        if is_road(city, pedestrian.position) and distance(pedestrian.position, ahead) <= CAUTION:
            return Direction.STAY
    return direction


def chats(messages: Any) -> list[tuple[int, str]]:
    """(sender id, text) of the Chat messages in a MessageCollection."""
    found = []
    for message in messages.messages:
        chat = Chat()
        if message.payload.Unpack(chat):
            found.append((message.sender_id, chat.text))
    return found


def outcome(city: Observation) -> str:
    if city.car == city.goal:
        return "the car reached its goal"
    return f"the car stopped at ({city.car.x},{city.car.y}) after {city.collisions} collisions"


def play_scripted(trial: ClientTrial, delay: float) -> None:
    """Plays the whole trial, one line per tick, then a final score."""
    city = trial.observation
    score, rewards, received, sent, feedback_given = 0.0, 0, 0, 0, 0
    trial.multi_cast(Chat(text="driver here, starting the engine"), [-1])  # to the environment
    while not trial.is_over:
        direction = scripted_direction(city)
        crossings = [p.crossings for p in city.pedestrians]
        city, reward, messages = trial.do_action(DriverAction(direction=direction))
        if reward.feedbacks:
            rewards += 1
            score += reward.value
        print(
            f"tick {city.tick}: {Direction.Name(direction)}, car at ({city.car.x},{city.car.y}), "
            f"reward {reward.value:+.2f} from {len(reward.feedbacks)} feedbacks, "
            f"{len(messages.messages)} messages"
        )
        for sender, text in chats(messages):
            received += 1
            print(f'  message from actor {sender}: "{text}"')
            sender_actor = trial.actors.get(sender)
            if sender_actor is not None and not trial.is_over:
                sender_actor.send_message(Chat(text="go ahead, I'm waiting"))
                sent += 1
        for pedestrian, before in zip(city.pedestrians, crossings):
            if pedestrian.crossings > before and not trial.is_over:
                trial.actors.pedestrian[pedestrian.index].add_feedback(value=1.0, confidence=1.0)
                feedback_given += 1
                print(f"  +1 to pedestrian {pedestrian.index} for crossing safely")
        if delay:
            time.sleep(delay)
    print(
        f"final score {score:+.2f} after {city.tick} ticks ({outcome(city)}): {rewards} rewards, "
        f"{received} messages received, {sent} sent, {feedback_given} feedbacks given"
    )


KEYS = {
    "w": Direction.UP,
    "a": Direction.LEFT,
    "s": Direction.DOWN,
    "d": Direction.RIGHT,
    " ": Direction.STAY,
}


def _act(trial: ClientTrial, key: str, log: list[str]) -> Optional[str]:
    """Handles one key; returns "quit" to stop."""
    city = trial.observation
    if key == "q":
        return "quit"
    if key == "h":
        trial.multi_cast(Chat(text="beep beep!"), [a.actor_id for a in trial.actors.pedestrian])
        log.append("you honk")
        return None
    if key == "t" and city.pedestrians:
        nearest = min(city.pedestrians, key=lambda p: distance(p.position, city.car))
        trial.actors.pedestrian[nearest.index].add_feedback(value=1.0, confidence=1.0)
        log.append(f"you thank pedestrian {nearest.index} (+1)")
        return None
    if key not in KEYS:
        return None
    _, reward, messages = trial.do_action(DriverAction(direction=KEYS[key]))
    if reward.feedbacks:
        log.append(f"reward {reward.value:+.2f} ({len(reward.feedbacks)} feedbacks)")
    log.extend(f'actor {sender}: "{text}"' for sender, text in chats(messages))
    return None


def _screen_text(trial: ClientTrial, log: list[str]) -> list[str]:
    city = trial.observation
    lines = [
        f"tick {city.tick}   collisions {city.collisions}   goal G at ({city.goal.x},{city.goal.y})"
    ]
    lines += ["  " + row for row in draw(city)]
    lines.append("arrows/WASD move, space waits, h honks, t thanks a pedestrian, q quits")
    lines += log[-6:]
    return lines


def play_curses(trial: ClientTrial) -> None:
    import curses

    arrows = {curses.KEY_UP: "w", curses.KEY_LEFT: "a", curses.KEY_DOWN: "s", curses.KEY_RIGHT: "d"}

    def loop(screen: Any) -> None:
        screen.keypad(True)
        screen.timeout(500)  # wake up now and then to notice a trial ended elsewhere
        log: list[str] = []
        while not trial.is_over:
            screen.erase()
            for y, line in enumerate(_screen_text(trial, log)):
                screen.addnstr(y, 0, line, max(1, screen.getmaxyx()[1] - 1))
            screen.refresh()
            code = screen.getch()
            if code == -1:
                continue
            key = arrows.get(code) or (chr(code).lower() if 0 <= code < 256 else "")
            if _act(trial, key, log) == "quit":
                trial.end()

    curses.wrapper(loop)


def play_lines(trial: ClientTrial) -> None:
    """The same game without curses: type a key and Enter."""
    log: list[str] = []
    while not trial.is_over:
        print("\n".join(_screen_text(trial, log)))
        try:
            key = (input("> ") or " ")[0].lower()
        except EOFError:
            key = "q"
        if _act(trial, key, log) == "quit":
            trial.end()


def main() -> int:
    parser = argparse.ArgumentParser(description="Drive the car of the city example.")
    parser.add_argument("--orchestrator", default="localhost:9000", help="host:port")
    parser.add_argument("--auto", action="store_true", help="a scripted driver plays a trial")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds between scripted ticks")
    parser.add_argument("--pedestrians", type=int, default=0, help="how many (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="the city's layout (default: 1)")
    args = parser.parse_args()
    if not args.auto and not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(
            "driver.py: interactive driving needs a terminal (stdin and stdout are not a TTY); "
            "use --auto for the scripted driver",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    config = TrialConfig(pedestrians=args.pedestrians, seed=args.seed)
    with Connection(cog_settings, args.orchestrator, timeout=30) as connection:
        try:
            trial = connection.start_trial(cog_settings.actor_classes.driver, trial_cfg=config)
        except cogment.CogmentError as error:
            print(
                f"driver.py: cannot start a trial at {args.orchestrator}: {error}", file=sys.stderr
            )
            return 1
        print(
            f"trial {trial.id[:8]}: driving actor {trial.actor_id}, {trial.actor_counts} actors per class"
        )
        try:
            if args.auto:
                play_scripted(trial, args.delay)
            else:
                try:
                    import curses  # noqa: F401 - absent on some platforms
                except ImportError:
                    play_lines(trial)
                else:
                    play_curses(trial)
                print(f"trial over ({trial.end_reason}): {outcome(trial.observation)}")
        except cogment.TrialError as error:
            print(f"driver.py: the trial failed: {error.message}", file=sys.stderr)
            return 1
        finally:
            if not trial.is_over:
                with contextlib.suppress(cogment.CogmentError):  # the orchestrator may be gone
                    trial.end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
