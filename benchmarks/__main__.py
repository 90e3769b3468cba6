"""`python -m benchmarks [--quick] [--only IDS] [--profile ROLE]`: cogment vs the gRPC floor.

Every figure is measured in this run, side by side with its floor (a raw gRPC chain with
the same messages and no SDK), as the median of --reps repetitions. Prints a table, ratio
to the floor first, and writes benchmarks/results.json. Exits 1 when a measurement failed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
import traceback
from typing import Any, Optional

from benchmarks import report, scenarios, sysinfo
from benchmarks.procs import install_cleanup, reap_all
from benchmarks.project import BenchProject
from benchmarks.runners import Run, RunConfig

PROFILE_ROLES = ("orchestrator", "agent", "env", "client", "middle", "bridge")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (< 60 s)")
    parser.add_argument("--only", help="comma-separated measurement ids or globs (see --list)")
    parser.add_argument("--list", action="store_true", help="list the measurement ids")
    parser.add_argument("--reps", type=int, help="repetitions per figure (default 3; quick 1)")
    parser.add_argument("--duration", type=float, help="seconds measured per repetition")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each window")
    parser.add_argument("--json", default=report.RESULTS_PATH, help="where to write the results")
    parser.add_argument(
        "--profile",
        choices=PROFILE_ROLES,
        help="run one measurement with that process under cProfile and print the top entries",
    )
    parser.add_argument(
        "--profile-on",
        help="the measurement to profile (default: dispatch.sdk.c1 for agent, else cogment.c1)",
    )
    return parser


def _config(args: argparse.Namespace) -> RunConfig:
    quick = bool(args.quick)
    config = RunConfig(
        quick=quick,
        reps=args.reps or (1 if quick else 3),
        warmup=args.warmup if args.warmup is not None else (0.25 if quick else 1.0),
        duration=args.duration if args.duration is not None else (0.6 if quick else 2.5),
    )
    if args.profile:
        config.reps = 1
        config.profile_role = args.profile
        config.profile_path = os.path.join(tempfile.mkdtemp(prefix="bench-prof-"), "stats.prof")
        if args.duration is None:
            config.duration = 5.0
    return config


def _profile_target(args: argparse.Namespace) -> str:
    if args.profile_on:
        return str(args.profile_on)
    if args.profile == "agent":
        return "dispatch.sdk.c1"
    if args.profile == "middle":
        return "floor.aio.c1"
    if args.profile == "bridge":
        return "web.c1"
    return "cogment.c1"


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.profile:
        target = _profile_target(args)
        found = [m for g in scenarios.groups() for m in g if m.id == target]
        if not found:
            print(f"error: no measurement {target!r} (see --list)", file=sys.stderr)
            return 2
        groups = [found]
    else:
        groups = scenarios.select(config.quick, args.only)
        if not groups:
            print(
                f"error: --only {args.only!r} matches no measurement (see --list)", file=sys.stderr
            )
            return 2

    started = time.monotonic()
    load = sysinfo.LoadMeter()
    load_before = sysinfo.loadavg()
    project = BenchProject()
    samples: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    bench = Run(config, project)
    try:
        for group in groups:
            for rep in range(config.reps):
                for measure in group:
                    if measure.id in errors or (measure.reps is not None and rep >= measure.reps):
                        continue
                    t0 = time.monotonic()
                    try:
                        sample = measure.run(bench)
                    except Exception as error:
                        errors[measure.id] = f"{type(error).__name__}: {error}"
                        print(
                            f"  {measure.id}: FAILED {errors[measure.id].splitlines()[0]}",
                            flush=True,
                        )
                        if os.environ.get("BENCH_DEBUG"):
                            traceback.print_exc()
                        bench.close()
                        reap_all()
                        continue
                    samples.setdefault(measure.id, []).append(sample)
                    print(
                        f"  {measure.id} rep {rep + 1}: {sample['rate']:,.1f} {measure.unit}"
                        f" ({time.monotonic() - t0:.1f} s)",
                        flush=True,
                    )
    finally:
        bench.close()
        reap_all()
        project.cleanup()

    measures = [m for g in groups for m in g]
    rows = report.summarize(measures, samples, errors)
    machine_load = load.stop()
    info = sysinfo.machine()
    document = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "quick": config.quick,
        "reps": config.reps,
        "warmup_s": config.warmup,
        "duration_s": config.duration,
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": info,
        "load": {
            "loadavg_before": load_before,
            "loadavg_after": sysinfo.loadavg(),
            **(machine_load or {}),
        },
        "results": rows,
    }
    print()
    print(report.table(rows))
    print(
        f"\n{info['nproc']} cpus ({info['cpu']}), python {info['python']}, "
        f"grpcio {info['grpcio']}, protobuf {info['protobuf']} ({info['protobuf_impl']}); "
        f"{document['elapsed_s']} s"
    )
    if machine_load:
        print(
            f"other load during the run: {machine_load['foreign_share']:.0%} of the machine "
            f"(this run: {machine_load['ours_share']:.0%})"
        )
    if args.profile and config.profile_path:
        _print_profile(config.profile_path, args.profile, groups[0][0].id)
    elif args.json:
        report.write(args.json, document)
        print(f"results written to {args.json}")
    return 1 if errors else 0


def _print_profile(path: str, role: str, target: str) -> None:
    from benchmarks.profiling import summary

    print(f"\nprofile of the {role} process during {target}:")
    if not os.path.exists(path):
        print("  (no profile was written: the process did not exit cleanly)")
        return
    print(summary(path))


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for measure_id in scenarios.all_ids():
            print(measure_id)
        return 0
    install_cleanup()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
