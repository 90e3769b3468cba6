"""The measurements of issues 6, 11 (the datalog), 14 (`cogment web`), 15 (streams) and 16
(several orchestrators: scenario 12; streams: 13) and the order they run in.

Measurements are grouped with the floor they are compared to; within a group the
repetitions are interleaved (rep 1 of every member, then rep 2, ...) so a burst of load on
the machine hits all of them alike. The value of a measurement is the median of its
repetitions; its ratio is to the best median among its floor measurements.

The `cogment.*` rows call the services with the 0.5 unary calls (as before streams existed);
the `streamed.*` rows stream every hop (the services on cogment-py's streams, the client on
`begin_actions_stream()`), and are compared to the unary floor of the same shape (their
target) and to the raw streamed floor (`floor.stream.*`: the same chain over bidirectional
streams, no SDK; `stream_ratio`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Callable, Optional

from benchmarks import runners
from benchmarks.runners import Run, Sample

KIB = 1024
MIB = 1024 * 1024


@dataclasses.dataclass
class Measure:
    id: str
    scenario: int
    label: str
    run: Callable[[Run], Sample]
    unit: str = "ticks/s"
    floor: tuple[str, ...] = ()
    target: Optional[float] = None
    quick: bool = False
    reps: Optional[int] = None  # fixed repetitions (e.g. 1 for a "does it work" check)
    higher_is_better: bool = True
    stream_floor: Optional[str] = None  # the raw streamed floor it is also compared to
    stream_target: Optional[float] = None  # its target against that floor


def _floors(key: str, quick_modes: tuple[str, ...], **kwargs: object) -> list[Measure]:
    out = []
    for mode in ("sync", "aio"):
        out.append(
            Measure(
                f"floor.{mode}.{key}",
                1,
                f"floor {mode} {key}",
                runners.floor_chain(mode, **kwargs),  # type: ignore[arg-type]
                quick=mode in quick_modes,
            )
        )
    return out


def _stream_floor(
    key: str, quick: bool = False, reps: Optional[int] = None, **kwargs: object
) -> Measure:
    """The raw streamed floor of a configuration (benchmarks.stream_middle)."""
    return Measure(
        f"floor.stream.{key}",
        13,
        f"floor streamed {key}",
        runners.floor_chain("stream", **kwargs),  # type: ignore[arg-type]
        quick=quick,
        reps=reps,
    )


def _floor_ids(key: str) -> tuple[str, ...]:
    return (f"floor.sync.{key}", f"floor.aio.{key}")


def _streamed(
    key: str,
    label: str,
    target: Optional[float] = None,
    stream_target: Optional[float] = None,
    quick: bool = False,
    reps: Optional[int] = None,
    name: str = "",
    **kwargs: object,
) -> Measure:
    """The scenario `key` (named `name`, by default `key`) with every hop streamed (see the
    module doc)."""
    agent_only = bool(kwargs.get("agent_only"))
    return Measure(
        f"streamed.{name or key}",
        13,
        f"{label}, streamed",
        runners.cogment_chain(stream=not agent_only, transport="stream", **kwargs),  # type: ignore[arg-type]
        floor=_floor_ids(key),
        target=target,
        quick=quick,
        reps=reps,
        stream_floor=f"floor.stream.{key}",
        stream_target=stream_target,
    )


def _recorded(key: str, label: str, concurrency: int) -> list[Measure]:
    """The same trials recorded: into SQLite by the orchestrator (target: at most 10 % of
    ticks/s lost), and through a `cogment datalog serve` process; their floor is the
    unrecorded run of the group."""
    return [
        Measure(
            f"cogment.{key}.sqlite",
            10,
            f"{label}, recorded (sqlite)",
            runners.cogment_chain(concurrency=concurrency, datalog="sqlite"),
            floor=(f"cogment.{key}",),
            target=0.90,
        ),
        Measure(
            f"cogment.{key}.serve",
            10,
            f"{label}, recorded (datalog serve)",
            runners.cogment_chain(concurrency=concurrency, datalog="serve"),
            floor=(f"cogment.{key}",),
        ),
    ]


def _two_orchestrators(concurrency: int) -> list[Measure]:
    """The same trials spread by the client over two orchestrator processes (issue 16)."""
    return [
        Measure(
            f"cogment.c{concurrency}.o2",
            12,
            f"{concurrency} trials, 2 orchestrators",
            runners.cogment_chain(concurrency=concurrency, orchestrators=2),
            floor=_floor_ids(f"c{concurrency}"),
        )
    ]


def groups() -> list[list[Measure]]:
    """Every measurement, in running order."""
    g: list[list[Measure]] = []
    g.append(
        [
            *_floors("c1", ("sync", "aio"), concurrency=1),
            Measure(
                "cogment.c1",
                2,
                "one trial, do_action",
                runners.cogment_chain(),
                floor=_floor_ids("c1"),
                target=0.80,
                quick=True,
            ),
            Measure(
                "cogment.c1.stream",
                2,
                "one trial, actions stream",
                runners.cogment_chain(stream=True),
                floor=_floor_ids("c1"),
                quick=True,
            ),
            # the same scripted client through `cogment web` (a WebSocket, JSON), against
            # the client on cogment.client with the action stream the bridge itself uses
            Measure(
                "web.c1",
                9,
                "one trial through cogment web",
                runners.web_chain(),
                floor=("cogment.c1.stream",),
                target=0.80,
                quick=False,  # its own smoke test (the quick run is long enough already)
            ),
            *_recorded("c1", "one trial", 1),
            _stream_floor("c1", quick=True, concurrency=1),
            _streamed("c1", "one trial, actions stream", target=1.5, quick=True),
        ]
    )
    g.append(
        [
            *_floors("agent_only", ("aio",), concurrency=1, agent_only=True),
            _stream_floor("agent_only", concurrency=1, agent_only=True),
            Measure(
                "cogment.agent_only",
                3,
                "agent-only trial",
                runners.cogment_chain(agent_only=True),
                floor=_floor_ids("agent_only"),
                quick=True,
            ),
            _streamed(
                "agent_only", "agent-only trial", target=1.5, stream_target=0.8, agent_only=True
            ),
        ]
    )
    for c in (8, 32, 128):
        g.append(
            [
                *_floors(f"c{c}", (), concurrency=c),
                Measure(
                    f"cogment.c{c}",
                    4,
                    f"{c} trials at once",
                    runners.cogment_chain(concurrency=c),
                    floor=_floor_ids(f"c{c}"),
                    target=0.80 if c == 32 else None,
                    quick=c == 8,
                ),
                *(_recorded(f"c{c}", f"{c} trials", c) if c == 32 else ()),
                *(_two_orchestrators(c) if c in (32, 128) else ()),
                *(
                    (
                        _stream_floor(f"c{c}", concurrency=c),
                        _streamed(f"c{c}", f"{c} trials", target=1.2, concurrency=c),
                    )
                    if c == 32
                    else ()
                ),
            ]
        )
    for c in (1, 8):
        g.append(
            [
                Measure(
                    f"cogment.fwd.c{c}.direct",
                    12,
                    f"{c} trial(s), 0.5 client, each action to the owner",
                    runners.forwarded_chain(forwarded=False, concurrency=c),
                ),
                Measure(
                    f"cogment.fwd.c{c}.forwarded",
                    12,
                    f"{c} trial(s), 0.5 client, each action forwarded",
                    runners.forwarded_chain(forwarded=True, concurrency=c),
                    floor=(f"cogment.fwd.c{c}.direct",),
                ),
            ]
        )
    g.append(
        [
            *_floors("fanout", (), agents=8),
            Measure(
                "cogment.fanout",
                5,
                "1 human + 8 agents",
                runners.cogment_chain(agents=8),
                floor=_floor_ids("fanout"),
                quick=True,
            ),
            _stream_floor("fanout", agents=8),
            _streamed("fanout", "1 human + 8 agents", target=1.3, agents=8),
        ]
    )
    for size, name in ((64 * KIB, "64k"), (4 * MIB, "4m")):
        g.append(
            [
                *_floors(f"p{name}", (), payload=size),
                Measure(
                    f"cogment.p{name}.snapshot",
                    6,
                    f"{name.upper()}iB obs, snapshot",
                    runners.cogment_chain(payload=size),
                    floor=_floor_ids(f"p{name}"),
                    quick=name == "64k",
                ),
                Measure(
                    f"cogment.p{name}.delta",
                    6,
                    f"{name.upper()}iB obs, delta 1 %",
                    runners.cogment_chain(payload=size, delta=True),
                    floor=_floor_ids(f"p{name}"),
                    quick=name == "64k",
                ),
                _stream_floor(f"p{name}", payload=size),
                _streamed(
                    f"p{name}",
                    f"{name.upper()}iB obs, snapshot",
                    target=0.80 if name == "64k" else None,
                    payload=size,
                    name=f"p{name}.snapshot",
                ),
            ]
        )
    g.append(
        [
            *_floors("p16m", (), payload=16 * MIB),
            Measure(
                "cogment.p16m.snapshot",
                6,
                "16MiB obs, snapshot",
                runners.cogment_chain(payload=16 * MIB),
                floor=_floor_ids("p16m"),
                target=0.80,
            ),
            _stream_floor("p16m", payload=16 * MIB),
            _streamed(
                "p16m", "16MiB obs, snapshot", target=0.80, payload=16 * MIB, name="p16m.snapshot"
            ),
        ]
    )
    for streams in (1, 8):
        g.append(
            [
                Measure(
                    f"datalog.bare.s{streams}",
                    11,
                    f"bare LogExporter, {streams} stream(s)",
                    runners.datalog_load("bare", streams, 256),
                    unit="samples/s",
                ),
                Measure(
                    f"datalog.serve.s{streams}",
                    11,
                    f"datalog serve, {streams} stream(s)",
                    runners.datalog_load("serve", streams, 256),
                    unit="samples/s",
                    floor=(f"datalog.bare.s{streams}",),
                ),
            ]
        )
    for c in (1, 8):
        g.append(
            [
                Measure(
                    f"dispatch.sync.c{c}",
                    8,
                    f"bare sync servicer, {c} caller(s)",
                    runners.dispatch("sync", c),
                    unit="calls/s",
                    quick=c == 1,
                ),
                Measure(
                    f"dispatch.aio.c{c}",
                    8,
                    f"bare aio servicer, {c} caller(s)",
                    runners.dispatch("aio", c),
                    unit="calls/s",
                    floor=(f"dispatch.sync.c{c}",),
                    quick=False,
                ),
                Measure(
                    f"dispatch.sdk.c{c}",
                    8,
                    f"GrpcServer Decide, {c} caller(s)",
                    runners.dispatch("sdk", c),
                    unit="calls/s",
                    floor=(f"dispatch.sync.c{c}",),
                    target=0.85,
                    quick=c == 1,
                ),
            ]
        )
    g.append(
        [
            Measure(
                "floor.sync.gym",
                9,
                "floor sync gym (CartPole)",
                runners.gym_floor("sync"),
                unit="steps/s",
            ),
            Measure(
                "floor.aio.gym",
                9,
                "floor aio gym (CartPole)",
                runners.gym_floor("aio"),
                unit="steps/s",
            ),
            Measure(
                "gym.trialenv",
                9,
                "CartPole: TrialEnv + cogment gym serve",
                runners.gym_cogment(),
                unit="steps/s",
                floor=_floor_ids("gym"),
                target=0.80,
            ),
            Measure(
                "gym.inprocess",
                9,
                "CartPole in-process (no network)",
                runners.gym_inprocess(),
                unit="steps/s",
                floor=_floor_ids("gym"),
            ),
        ]
    )
    g.append(
        [
            Measure(
                "held.full",
                7,
                "idle trials held: 1, 100, 1000",
                runners.held_trials([1, 100, 1000]),
                unit="KiB/trial",
                reps=1,
                target=100.0,
                higher_is_better=False,
            ),
            Measure(
                "held.quick",
                7,
                "idle trials held: 1, 20",
                runners.held_trials([1, 20]),
                unit="KiB/trial",
                reps=1,
                quick=True,
                target=100.0,
                higher_is_better=False,
            ),
        ]
    )
    return g


def select(quick: bool, only: Optional[str]) -> list[list[Measure]]:
    """The groups to run: the quick subset or all, narrowed by `--only` patterns.

    A measurement picked by `--only` brings its floor measurements along.
    """
    chosen: list[list[Measure]] = []
    for group in groups():
        members = [m for m in group if (m.quick if quick else m.id != "held.quick")]
        if only:
            patterns = [p.strip() for p in only.split(",") if p.strip()]
            picked = {m.id for m in members if any(fnmatch.fnmatch(m.id, p) for p in patterns)}
            for m in members:
                if m.id in picked:
                    picked.update(m.floor)
            members = [m for m in group if m.id in picked]
        if members:
            chosen.append(members)
    return chosen


def all_ids() -> list[str]:
    return [m.id for group in groups() for m in group]
