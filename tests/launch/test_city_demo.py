"""The README's demo, run for real: `cogment launch examples/city/launch.yaml`, then
`cogment datalog show examples/city/trials.db`.

Everything of the example runs (three services, the in-process orchestrator, the scripted
driver); the checks read each side's prefixed output. `--free-ports` keeps the run clear of
anything else on the machine; the launch file and the commands are the demo's own, run on a
copy of the example (its datalog lands next to the copy).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.launch.conftest import REPO, assert_gone, city_copy, run_launch

# seed 1 (the project's default), 2 pedestrians: the scripted driver reaches its goal on
# tick 17, after waiting once for bob, who crosses the side street in front of the car
EXPECTED_TICKS = 17

TICK = re.compile(
    r"^tick (?P<tick>\d+): (?P<move>[A-Z]+), car at \((?P<x>\d+),(?P<y>\d+)\), "
    r"reward (?P<reward>[-+]\d+\.\d\d) from (?P<feedbacks>\d+) feedbacks, (?P<messages>\d+) messages$"
)
FINAL = re.compile(
    r"^final score (?P<score>[-+]\d+\.\d\d) after (?P<ticks>\d+) ticks \((?P<outcome>[^)]*)\): "
    r"(?P<rewards>\d+) rewards, (?P<received>\d+) messages received, (?P<sent>\d+) sent, "
    r"(?P<given>\d+) feedbacks given$"
)
PEDESTRIAN_END = re.compile(
    r"^(?P<name>\w+) \(\w+\) tick \d+: trial over: (?P<rewards>\d+) rewards "
    r"\(total (?P<total>[-+]\d+\.\d\d)\), (?P<messages>\d+) messages$"
)


def test_the_demo_plays_a_whole_trial_and_every_side_sees_it(tmp_path: Path) -> None:
    city_launch = city_copy(tmp_path)
    run = run_launch(str(city_launch), "--free-ports", "--timeout", "60", timeout=90)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert "Traceback" not in run.stdout + run.stderr

    # the driver: one line per tick 1..N, then the final score
    driver = run.lines("driver")
    ticks = [m for m in map(TICK.match, driver) if m]
    assert [int(m["tick"]) for m in ticks] == list(range(1, EXPECTED_TICKS + 1))
    final = [m for m in map(FINAL.match, driver) if m]
    assert len(final) == 1, driver
    summary = final[0]
    assert int(summary["ticks"]) == EXPECTED_TICKS
    assert summary["outcome"] == "the car reached its goal"
    assert (int(ticks[-1]["x"]), int(ticks[-1]["y"])) == (12, 8)
    # the environment rewards every tick; the score is the sum of the rewards received
    assert int(summary["rewards"]) == EXPECTED_TICKS
    assert all(int(m["feedbacks"]) >= 1 for m in ticks)
    assert abs(sum(float(m["reward"]) for m in ticks) - float(summary["score"])) < 0.011
    assert float(ticks[-1]["reward"]) == 11.0  # the last move (+1) and the arrival (+10)
    # it waited once for bob (-0.2), and bob's thanks (an agent's feedback) came with env's
    assert [m["move"] for m in ticks].count("STAY") == 1
    assert any(int(m["feedbacks"]) == 2 for m in ticks)
    # messages: from the pedestrians to the driver
    received = [line for line in driver if line.startswith("  message from actor ")]
    assert len(received) == int(summary["received"]) >= 2
    assert sum(int(m["messages"]) for m in ticks) == int(summary["received"])
    assert any('"bob: crossing at (12,5)"' in line for line in received)

    # the environment: the same number of ticks and the same end; the driver's message
    environment = run.lines("environment")
    assert any(
        re.search(rf"over after {EXPECTED_TICKS} ticks: the car reached its goal", line)
        for line in environment
    ), environment
    assert any(
        'message from actor 0: "driver here, starting the engine"' in line for line in environment
    )

    # the pre-trial hook configured the trial
    assert any("2 pedestrians, seed 1" in line for line in run.lines("hooks"))

    # the pedestrians: rewards (env + the driver's feedback) and the driver's replies
    pedestrian = run.lines("pedestrian")
    ends = {m["name"]: m for m in map(PEDESTRIAN_END.match, pedestrian) if m}
    assert set(ends) == {"alice", "bob"}, pedestrian
    for name, end in ends.items():
        reward_lines = [
            line for line in pedestrian if line.startswith(f"{name} ") and ": reward " in line
        ]
        assert int(end["rewards"]) == len(reward_lines) >= 1
        message_lines = [
            line
            for line in pedestrian
            if line.startswith(f"{name} ") and "message from actor 0" in line
        ]
        assert int(end["messages"]) == len(message_lines)
    assert sum(int(end["messages"]) for end in ends.values()) == int(summary["sent"]) >= 1
    assert any("the car waited for me" in line for line in pedestrian)
    # every feedback a pedestrian got arrived: one from the environment per crossing, one
    # from the driver per "+1 to pedestrian i" (alice is pedestrian 0, bob pedestrian 1)
    crossings = re.search(r"crossings \[(\d+), (\d+)\]", "\n".join(environment))
    assert crossings is not None, environment
    given = [line.strip() for line in driver if line.strip().startswith("+1 to pedestrian")]
    assert len(given) == int(summary["given"]) >= 1
    for index, name in enumerate(("alice", "bob")):
        feedbacks = sum(
            int(m.group(1))
            for line in pedestrian
            if line.startswith(f"{name} ")
            and (m := re.search(r": reward [-+]\d+\.\d\d from (\d+) feedback", line))
        )
        from_driver = given.count(f"+1 to pedestrian {index} for crossing safely")
        assert feedbacks == int(crossings.group(index + 1)) + from_driver, (name, pedestrian)

    assert run.lines("launch")[-1] == "driver exited with status 0"
    assert set(run.pids) == {"environment", "pedestrian", "hooks", "driver"}
    assert_gone(run.pids.values())

    # the README's last command: the trial just played, from the datalog
    show = subprocess.run(
        [
            sys.executable,
            "-m",
            "cogment.cli",
            "datalog",
            "show",
            str(city_launch.parent / "trials.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    assert f"{EXPECTED_TICKS} ticks, ended" in lines[1]
    assert lines[1].endswith(": the environment ended the trial")
    recorded = [line for line in lines if line.startswith("tick ")]
    assert len(recorded) == EXPECTED_TICKS + 1 and recorded[-1].endswith("the end")
    assert any('"bob: crossing at (12,5)"' in line for line in lines)
