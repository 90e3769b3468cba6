"""How one repetition of a measurement runs: start its processes, measure a window, reap.

A measurement window: after `warmup` seconds, read the counting service's counter (env
Updates = ticks, or agent Decides = calls), the wire bytes of every hop (`ss`) and the CPU
time of every process; `duration` seconds later read them again. Rates use the counting
process's own monotonic clock.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from typing import Any, Callable, Optional

import grpc

from benchmarks import sysinfo
from benchmarks.procs import Worker, WorkerError, free_port
from benchmarks.project import BenchProject

READY_TIMEOUT = 60.0
Sample = dict[str, Any]


@dataclasses.dataclass
class RunConfig:
    quick: bool
    reps: int
    warmup: float
    duration: float
    profile_role: Optional[str] = None
    profile_path: Optional[str] = None


class Run:
    """What every repetition shares: the settings, the generated bench project and, in a
    quick run, one SDK agent and one SDK env process that every cogment scenario uses (a
    full run starts fresh ones for each repetition)."""

    def __init__(self, config: RunConfig, project: BenchProject) -> None:
        self.config = config
        self.project = project
        self._shared: Optional[tuple[Worker, Worker, int, int]] = None

    def shared_services(self) -> Optional[tuple[Worker, Worker, int, int]]:
        """(agent, env, agent port, env port) kept for the whole quick run, or None."""
        if not self.config.quick or self.config.profile_role in ("agent", "env"):
            return None
        if self._shared is not None and all(w.proc.poll() is None for w in self._shared[:2]):
            return self._shared
        self.close()
        settings = self.project.settings()
        agent_port, env_port = free_port(), free_port()
        agent = Worker(
            "sdk-agent", ["--settings", settings, "--port", str(agent_port)], deadline=900
        )
        env = Worker("sdk-env", ["--settings", settings, "--port", str(env_port)], deadline=900)
        try:
            _ready(agent, env)
        except WorkerError:
            agent.reap()
            env.reap()
            raise
        self._shared = (agent, env, agent_port, env_port)
        return self._shared

    def close(self) -> None:
        if self._shared is not None:
            for worker in self._shared[:2]:
                worker.stop(timeout=10.0)
            self._shared = None


class Setup:
    """The processes of one repetition; stops clients first, then services, then reaps."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.clients: list[Worker] = []
        self.services: list[Worker] = []
        self.orchestrators: list[tuple[Worker, int]] = []  # (worker, port), in start order

    def spawn(
        self, role: str, args: list[str], *, profile_as: str = "", client: bool = False
    ) -> Worker:
        config = self.run.config
        deadline = 180.0 + config.warmup + config.duration
        profile = None
        if config.profile_role and profile_as == config.profile_role:
            profile = config.profile_path
        worker = Worker(role, args, deadline=deadline, profile_path=profile)
        (self.clients if client else self.services).append(worker)
        return worker

    def __enter__(self) -> Setup:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        problems: list[str] = []
        try:
            for worker in self.clients:
                result = worker.stop(timeout=30.0)
                if result is None:
                    problems.append(f"{worker.role} sent no result{worker.tail()}")
                elif result.get("errors"):
                    problems.append(f"{worker.role}: {result['errors'][:3]}")
            for worker in reversed(self.services):
                result = worker.stop(timeout=20.0)
                if result and result.get("errors"):
                    problems.append(f"{worker.role}: {result['errors'][:3]}")
        finally:
            for worker in self.clients + self.services:
                worker.reap(timeout=2.0)
        if problems and exc_type is None:
            raise WorkerError("; ".join(problems))


def _cpu_seconds(pid: int) -> Optional[float]:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def window(run: Run, counter: Worker, ports: list[int], pids: dict[str, int]) -> Sample:
    """Measures the rate of `counter`'s count over one window (see the module doc)."""
    time.sleep(run.config.warmup)
    s1 = counter.stats()
    b1 = sysinfo.busy_seconds()
    w1 = sysinfo.wire_bytes(ports)
    c1 = {role: _cpu_seconds(pid) for role, pid in pids.items()}
    time.sleep(run.config.duration)
    s2 = counter.stats()
    b2 = sysinfo.busy_seconds()
    w2 = sysinfo.wire_bytes(ports)
    c2 = {role: _cpu_seconds(pid) for role, pid in pids.items()}
    count = int(s2["count"]) - int(s1["count"])
    seconds = float(s2["time"]) - float(s1["time"])
    if count <= 0 or seconds <= 0:
        raise WorkerError(f"no progress in a {run.config.duration:.1f} s window")
    cpu: dict[str, float] = {}
    ours = 0.0
    for role in pids:
        a, b = c1.get(role), c2.get(role)
        if a is not None and b is not None:
            cpu[role] = round((b - a) / count * 1e6, 1)
            ours += b - a
    foreign = None
    if b1 is not None and b2 is not None:
        # the machine's busy time not spent by the measured processes (other work: noise)
        foreign = round(max(0.0, (b2 - b1 - ours) / (seconds * (os.cpu_count() or 1))), 3)
    return {
        "rate": count / seconds,
        "count": count,
        "foreign_load": foreign,
        "wire_per_tick": (w2 - w1) / count if w1 is not None and w2 is not None else None,
        "cpu_us": cpu,
    }


def _ready(*workers: Worker) -> None:
    for worker in workers:
        worker.expect("ready", READY_TIMEOUT)


def _pool(concurrency: int, agents: int) -> int:
    return max(16, concurrency * (agents + 1) + 8)


def _addr(port: int) -> str:
    return f"127.0.0.1:{port}"


def floor_chain(
    mode: str,
    concurrency: int = 1,
    agents: int = 1,
    payload: int = 16,
    agent_only: bool = False,
    leaves: str = "",
    client_mode: str = "",
) -> Callable[[Run], Sample]:
    """The raw gRPC chain (see benchmarks.floor) with a sync or an aio middle, or over
    streams (`mode="stream"`: benchmarks.stream_middle, and a client on ActionStream).

    The agent and env servers are sync grpcio servers (thread pool, as `GrpcServer`) and the
    client uses blocking calls from one thread per trial (as `Connection`), whatever the
    middle: on this machine that is the cheaper choice for both (an aio server spends ~4x
    the CPU of a sync one sending a 4 MiB observation).
    """
    leaves = leaves or "sync"
    client_mode = client_mode or ("stream" if mode == "stream" else "sync")
    role = "floor-stream-middle" if mode == "stream" else "floor-middle"

    def run_once(run: Run) -> Sample:
        pool = str(_pool(concurrency, agents))
        agent_port, env_port, middle_port = free_port(), free_port(), free_port()
        with Setup(run) as setup:
            # every process at once; each waits for the servers it calls
            agent = setup.spawn(
                "floor-agent", ["--mode", leaves, "--workers", pool, "--port", str(agent_port)]
            )
            env = setup.spawn(
                "floor-env",
                [
                    *("--mode", leaves, "--workers", pool),
                    *("--port", str(env_port)),
                    "--payload",
                    str(payload),
                ],
            )
            args = ["--agent", _addr(agent_port), "--env", _addr(env_port)]
            args += ["--agents", str(agents), "--port", str(middle_port)]
            args += ["--wait-for", _addr(agent_port), "--wait-for", _addr(env_port)]
            if mode != "stream":
                args += ["--mode", mode, "--workers", pool]
            if agent_only:
                args += ["--drive", str(concurrency)]
            middle = setup.spawn(role, args, profile_as="middle")
            ports = [agent_port, env_port]
            pids = {"hub": middle.pid, "agent": agent.pid, "env": env.pid}
            workers = [agent, env, middle]
            if not agent_only:
                ports.append(middle_port)
                client = setup.spawn(
                    "floor-client",
                    [
                        *("--mode", client_mode, "--target", _addr(middle_port)),
                        *("--concurrency", str(concurrency), "--wait-for", _addr(middle_port)),
                    ],
                    client=True,
                )
                pids["client"] = client.pid
                workers.append(client)
            _ready(*workers)
            return window(run, env, ports, pids)

    return run_once


def _cogment_setup(
    run: Run,
    setup: Setup,
    *,
    agents: int,
    human: bool,
    payload: int = 16,
    delta: bool = False,
    datalog: str = "",
    orchestrators: int = 1,
    transport: str = "unary",
) -> tuple[Worker, Worker, Worker, list[int]]:
    """SDK agent and env, and the orchestrator on a yaml pointing at them (recording into
    a new SQLite store with `datalog="sqlite"`, through a `cogment datalog serve` process
    with "serve"), calling them with `transport` ("unary": the 0.5 calls; "stream"),
    started at once and ready; returns them and their ports (orchestrator, agent, env).
    With `orchestrators` > 1, as many orchestrator processes on that yaml (all in
    `setup.orchestrators`)."""
    settings = run.project.settings()
    shared = run.shared_services()
    if shared is not None:
        agent, env, agent_port, env_port = shared
    else:
        agent_port, env_port = free_port(), free_port()
        agent = setup.spawn(
            "sdk-agent", ["--settings", settings, "--port", str(agent_port)], profile_as="agent"
        )
        env = setup.spawn(
            "sdk-env", ["--settings", settings, "--port", str(env_port)], profile_as="env"
        )
    port = free_port()
    section: Optional[dict[str, Any]] = None
    if datalog == "sqlite":
        section = {"type": "sqlite", "path": run.project.new_store()}
    elif datalog == "serve":
        serve_port = free_port()
        serve = setup.spawn(
            "datalog-serve", ["--db", run.project.new_store(), "--port", str(serve_port)]
        )
        _ready(serve)
        section = {"type": "grpc", "url": f"grpc://127.0.0.1:{serve_port}"}
    yaml_path = run.project.write_yaml(
        env_port=env_port,
        agent_port=agent_port,
        agents=agents,
        human=human,
        payload=payload,
        delta=delta,
        datalog=section,
    )
    for i in range(orchestrators):
        at = port if i == 0 else free_port()
        worker = setup.spawn(
            "orchestrator",
            ["--file", yaml_path, "--port", str(at), "--transport", transport],
            profile_as="orchestrator" if i == 0 else "",
        )
        setup.orchestrators.append((worker, at))
    orch = setup.orchestrators[0][0]
    hubs = [worker for worker, _ in setup.orchestrators]
    _ready(*(hubs if shared else [agent, env, *hubs]))
    return agent, env, orch, [port, agent_port, env_port]


def _hub_pids(setup: Setup) -> dict[str, int]:
    """The orchestrators' pids, as roles: `hub`, then `hub2`, ..."""
    return {
        "hub" if i == 0 else f"hub{i + 1}": worker.pid
        for i, (worker, _) in enumerate(setup.orchestrators)
    }


def cogment_chain(
    concurrency: int = 1,
    agents: int = 1,
    payload: int = 16,
    delta: bool = False,
    stream: bool = False,
    agent_only: bool = False,
    datalog: str = "",
    orchestrators: int = 1,
    transport: str = "unary",
) -> Callable[[Run], Sample]:
    """`cogment orchestrator` + SDK agent and env `GrpcServer`s + a `Connection` client;
    `datalog`: "" (no recording), "sqlite" or "serve" (see `_cogment_setup`); with
    `orchestrators` > 1, that many orchestrator processes, the client's Connection given
    them all (it spreads the trials over them); `transport`: how the orchestrator calls
    the services, "unary" (the 0.5 calls) or "stream"."""

    def run_once(run: Run) -> Sample:
        with Setup(run) as setup:
            agent, env, _orch, ports = _cogment_setup(
                run,
                setup,
                agents=agents,
                human=not agent_only,
                payload=payload,
                delta=delta,
                datalog=datalog,
                orchestrators=orchestrators,
                transport=transport,
            )
            targets = ",".join(_addr(at) for _, at in setup.orchestrators)
            args = ["--settings", run.project.settings(), "--target", targets]
            args += ["--concurrency", str(concurrency)]
            args += ["--wait-for", _addr(ports[1]), "--wait-for", _addr(ports[2])]
            args += ["--stream"] if stream else []
            args += ["--agent-only"] if agent_only else []
            client = setup.spawn("cogment-client", args, profile_as="client", client=True)
            _ready(client)
            pids = {**_hub_pids(setup), "agent": agent.pid, "env": env.pid, "client": client.pid}
            hub_ports = [at for _, at in setup.orchestrators[1:]]
            return window(run, env, ports + hub_ports, pids)

    return run_once


def forwarded_chain(forwarded: bool, concurrency: int = 1) -> Callable[[Run], Sample]:
    """Two orchestrators; a 0.5-style client (raw stubs, `raw-client`) starts its trials on
    the first and sends every action to the second (`forwarded`: which forwards each call
    to the owner) or to the first (directly)."""

    def run_once(run: Run) -> Sample:
        with Setup(run) as setup:
            agent, env, _orch, ports = _cogment_setup(
                run, setup, agents=1, human=True, orchestrators=2
            )
            owner, other = (_addr(at) for _, at in setup.orchestrators)
            args = ["--settings", run.project.settings(), "--start", owner]
            args += ["--target", other if forwarded else owner]
            args += ["--concurrency", str(concurrency)]
            client = setup.spawn("raw-client", args, profile_as="client", client=True)
            _ready(client)
            pids = {**_hub_pids(setup), "agent": agent.pid, "env": env.pid, "client": client.pid}
            return window(run, env, [*ports, setup.orchestrators[1][1]], pids)

    return run_once


def datalog_load(server: str, streams: int, payload: int) -> Callable[[Run], Sample]:
    """Samples/s `streams` concurrent Log streams get stored by one `cogment datalog serve`
    (`server="serve"`), or merely received by a bare grpc.aio LogExporter (`"bare"`, the
    floor); each sample carries a `payload`-byte observation."""

    def run_once(run: Run) -> Sample:
        port = free_port()
        with Setup(run) as setup:
            if server == "serve":
                store = run.project.new_store()
                target = setup.spawn("datalog-serve", ["--db", store, "--port", str(port)])
            else:
                target = setup.spawn("datalog-bare", ["--port", str(port)])
            client = setup.spawn(
                "datalog-load",
                [
                    *("--target", _addr(port), "--streams", str(streams)),
                    *("--payload", str(payload), "--wait-for", _addr(port)),
                ],
                client=True,
            )
            _ready(target, client)
            return window(run, target, [port], {"hub": target.pid, "client": client.pid})

    return run_once


def web_chain() -> Callable[[Run], Sample]:
    """`cogment_chain(stream=True)` with the client's loop run by a scripted WebSocket
    client through a `cogment web` bridge (its own process) instead of on cogment.client."""

    def run_once(run: Run) -> Sample:
        with Setup(run) as setup:
            agent, env, orch, ports = _cogment_setup(run, setup, agents=1, human=True)
            web_port = free_port()
            args = ["--settings", run.project.settings(), "--target", _addr(ports[0])]
            bridge = setup.spawn(
                "web-bridge", [*args, "--port", str(web_port)], profile_as="bridge"
            )
            client = setup.spawn(
                "web-client", ["--url", f"ws://127.0.0.1:{web_port}/ws"], client=True
            )
            _ready(bridge, client)
            pids = {"hub": orch.pid, "agent": agent.pid, "env": env.pid}
            pids.update(bridge=bridge.pid, client=client.pid)
            return window(run, env, [*ports, web_port], pids)

    return run_once


def dispatch(server: str, concurrency: int) -> Callable[[Run], Sample]:
    """Agent.Decide calls/s on one agent service: `sdk` (GrpcServer) or bare `sync`/`aio`
    (the bare sync server gets a pool of 32 threads, as GrpcServer has by default)."""

    def run_once(run: Run) -> Sample:
        port = free_port()
        with Setup(run) as setup:
            if server == "sdk":
                agent = setup.spawn(
                    "sdk-agent",
                    ["--settings", run.project.settings(), "--port", str(port)],
                    profile_as="agent",
                )
            else:
                agent = setup.spawn(
                    "floor-agent", ["--mode", server, "--workers", "32", "--port", str(port)]
                )
            client = setup.spawn(
                "dispatch-client",
                [
                    *("--target", _addr(port), "--concurrency", str(concurrency)),
                    *("--wait-for", _addr(port)),
                ],
                client=True,
            )
            _ready(agent, client)
            return window(run, agent, [port], {"agent": agent.pid, "client": client.pid})

    return run_once


def held_trials(counts: list[int]) -> Callable[[Run], Sample]:
    """RSS and threads of the orchestrator process with that many idle human trials open
    (each with one agent and the environment on streams, as the orchestrator calls the SDK's
    services by default)."""

    def run_once(run: Run) -> Sample:
        from cogment.api import orchestrator_pb2, orchestrator_pb2_grpc

        settle = 0.3 if run.config.quick else 1.0
        with Setup(run) as setup:
            # the orchestrator's default transport: streams to the SDK services (each trial
            # holds two open; past the services' max_streams, unary calls)
            _agent, _env, orch, ports = _cogment_setup(
                run, setup, agents=1, human=True, transport="auto"
            )
            port = ports[0]
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            stub = orchestrator_pb2_grpc.TrialStub(channel)
            metadata = (("session_id", str(uuid.uuid4())),)
            request = orchestrator_pb2.TrialStartRequest(user_id="bench")
            time.sleep(settle)
            rows = [{"trials": 0, **(sysinfo.proc_status(orch.pid) or {})}]
            have = 0
            try:
                for target in counts:
                    while have < target:
                        batch = [
                            stub.Start.future(request, timeout=60.0, metadata=metadata)
                            for _ in range(min(32, target - have))
                        ]
                        for call in batch:
                            call.result()
                        have += len(batch)
                    time.sleep(settle)
                    rows.append({"trials": target, **(sysinfo.proc_status(orch.pid) or {})})
            finally:
                channel.close()
        first, last = rows[1], rows[-1]
        span = last["trials"] - first["trials"]
        per_trial = (last["rss_kib"] - first["rss_kib"]) / span if span > 0 else 0.0
        return {
            "rate": per_trial,
            "rows": rows,
            "threads_growth": last["threads"] - first["threads"],
        }

    return run_once


def gym_floor(mode: str) -> Callable[[Run], Sample]:
    """CartPole through the raw chain: floor client -> floor middle (no agents) -> a bare
    grpcio env stepping CartPole (see benchmarks.gym)."""

    def run_once(run: Run) -> Sample:
        env_port, middle_port = free_port(), free_port()
        with Setup(run) as setup:
            env = setup.spawn("floor-gym-env", ["--port", str(env_port)])
            args = ["--mode", mode, "--agent", _addr(env_port), "--env", _addr(env_port)]
            args += ["--agents", "0", "--port", str(middle_port), "--wait-for", _addr(env_port)]
            middle = setup.spawn("floor-middle", args, profile_as="middle")
            client = setup.spawn(
                "floor-gym-client",
                ["--target", _addr(middle_port), "--wait-for", _addr(middle_port)],
                client=True,
            )
            _ready(env, middle, client)
            pids = {"hub": middle.pid, "env": env.pid, "client": client.pid}
            return window(run, env, [env_port, middle_port], pids)

    return run_once


def gym_cogment() -> Callable[[Run], Sample]:
    """CartPole through cogment: `cogment gym serve`, `cogment orchestrator` on the project
    `cogment gym init` writes, and a TrialEnv client."""

    def run_once(run: Run) -> Sample:
        from benchmarks.gym import write_project

        env_port, port = free_port(), free_port()
        yaml_path = write_project(os.path.join(run.project.root, "gym"), env_port)
        with Setup(run) as setup:
            env = setup.spawn("gym-env", ["--port", str(env_port)], profile_as="env")
            orch = setup.spawn(
                "orchestrator",
                ["--file", yaml_path, "--port", str(port)],
                profile_as="orchestrator",
            )
            _ready(env, orch)
            client = setup.spawn(
                "gym-client",
                ["--target", _addr(port), "--wait-for", _addr(env_port)],
                profile_as="client",
                client=True,
            )
            _ready(client)
            pids = {"hub": orch.pid, "env": env.pid, "client": client.pid}
            return window(run, env, [port, env_port], pids)

    return run_once


def gym_inprocess() -> Callable[[Run], Sample]:
    """CartPole stepped in one process (no network)."""

    def run_once(run: Run) -> Sample:
        with Setup(run) as setup:
            worker = setup.spawn("gym-inprocess", [], client=True)
            _ready(worker)
            return window(run, worker, [], {"env": worker.pid})

    return run_once
