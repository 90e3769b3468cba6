"""Turns repetitions into the results table and benchmarks/results.json."""

from __future__ import annotations

import json
import os
import statistics
from typing import Any, Optional

from benchmarks.scenarios import Measure

DISTURBED = 0.10  # share of the machine used by others during a window that makes it suspect
RESULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json")


def summarize(
    measures: list[Measure], samples: dict[str, list[dict[str, Any]]], errors: dict[str, str]
) -> list[dict[str, Any]]:
    """One row per measurement: median value, ratio to its floor, target, wire, CPU."""
    medians: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    for m in measures:
        rates = [s["rate"] for s in samples.get(m.id, [])]
        if rates:
            medians[m.id] = statistics.median(rates)
    for m in measures:
        got = samples.get(m.id, [])
        row: dict[str, Any] = {
            "id": m.id,
            "scenario": m.scenario,
            "label": m.label,
            "unit": m.unit,
            "value": medians.get(m.id),
            "samples": [round(s["rate"], 2) for s in got],
            "target": m.target,
            "error": errors.get(m.id),
        }
        floors = [medians[f] for f in m.floor if f in medians]
        if m.floor:
            row["floor_ids"] = list(m.floor)
            row["floor_value"] = max(floors) if floors else None
        elif m.id.startswith("floor."):
            # the floor rows: their ratio is to the best unary variant of the same
            # configuration (the streamed floor's: what streams gain, physically)
            key = m.id.split(".", 2)[2]
            peers = [medians.get(f"floor.{mode}.{key}") for mode in ("sync", "aio")]
            known = [v for v in peers if v is not None]
            row["floor_value"] = max(known) if known else None
        if row.get("floor_value") and row["value"] is not None:
            row["ratio"] = round(row["value"] / row["floor_value"], 3)
        if m.stream_floor is not None:
            row["stream_floor_id"] = m.stream_floor
            row["stream_floor_value"] = medians.get(m.stream_floor)
            row["stream_target"] = m.stream_target
            if row["stream_floor_value"] and row["value"] is not None:
                row["stream_ratio"] = round(row["value"] / row["stream_floor_value"], 3)
                if m.stream_target is not None:
                    row["meets_stream_target"] = row["stream_ratio"] >= m.stream_target
        wires = [s["wire_per_tick"] for s in got if s.get("wire_per_tick") is not None]
        row["wire_bytes_per_tick"] = round(statistics.median(wires)) if wires else None
        cpu: dict[str, float] = {}
        for role in sorted({r for s in got for r in s.get("cpu_us", {})}):
            values = [s["cpu_us"][role] for s in got if role in s.get("cpu_us", {})]
            cpu[role] = round(statistics.median(values), 1)
        row["cpu_us_per_tick"] = cpu
        loads = [s["foreign_load"] for s in got if s.get("foreign_load") is not None]
        row["foreign_load"] = round(statistics.median(loads), 3) if loads else None
        for extra in ("rows", "threads_growth"):
            if got and extra in got[-1]:
                row[extra] = got[-1][extra]
        if m.target is not None and row["value"] is not None:
            if m.higher_is_better:
                row["meets_target"] = row.get("ratio") is not None and row["ratio"] >= m.target
            else:
                row["meets_target"] = row["value"] < m.target and row.get("threads_growth", 0) == 0
        rows.append(row)
    return rows


def _fmt(value: Optional[float], digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The human-readable table: ratio to the floor first."""
    head = (
        f"{'ratio':>6} {'target':>10}  {'#':>1} {'measurement':<34} {'value':>12} "
        f"{'unit':<10} {'floor':>10} {'wire/tick':>10} {'CPU/tick':>10} {'other':>6}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        ratio = f"{row['ratio']:.3g}" if row.get("ratio") is not None else ""
        if row.get("error"):
            ratio = ""  # the repetitions that did run are in results.json
        if row["id"].startswith("floor.") and row.get("ratio") == 1.0:
            ratio = "floor"
        target = ""
        if row.get("target") is not None:
            mark = "ok" if row.get("meets_target") else "MISS"
            target = f"{'<' if row['unit'] == 'KiB/trial' else '>='}{row['target']:g} {mark}"
        wire = row.get("wire_bytes_per_tick")
        wire_text = "-" if wire is None else f"{wire / 1024:,.1f}K"
        cpu = row.get("cpu_us_per_tick", {})
        hub = cpu.get("hub", cpu.get("agent"))
        hub_text = "-" if hub is None else f"{hub:,.0f} us"
        load = row.get("foreign_load")
        load_text = "-" if load is None else f"{load:.0%}" + ("!" if load > DISTURBED else " ")
        if row.get("error"):
            value_text = "FAILED"
        else:
            value_text = _fmt(row.get("value"), 1 if row["unit"] == "KiB/trial" else 0)
        lines.append(
            f"{ratio:>6} {target:>10}  {row['scenario']:>1} {row['label']:<34} {value_text:>12} "
            f"{row['unit']:<10} {_fmt(row.get('floor_value')):>10} {wire_text:>10} {hub_text:>10} {load_text:>6}"
        )
        if row.get("rows"):
            held = ", ".join(
                f"{r['trials']}: {r.get('rss_kib', 0) / 1024:,.1f} MiB/{r.get('threads', '?')} thr"
                for r in row["rows"]
            )
            lines.append(f"{'':>20}  held trials -> RSS/threads  {held}")
        if row.get("stream_ratio") is not None:
            target = ""
            if row.get("stream_target") is not None:
                mark = "ok" if row.get("meets_stream_target") else "MISS"
                target = f" (target >={row['stream_target']:g} {mark})"
            lines.append(
                f"{'':>20}  {row['stream_ratio']:.3g} of the raw streamed floor "
                f"({_fmt(row['stream_floor_value'])} {row['unit']}){target}"
            )
        if row.get("error"):
            lines.append(f"{'':>20}  error: {row['error'].splitlines()[0][:200]}")
    lines += [
        "ratio: to the best unary floor of this run (floor rows: to the best unary floor variant)",
        "wire/tick: TCP payload bytes of all hops per tick (from ss)",
        "CPU/tick: CPU time of the middle/orchestrator per tick (dispatch rows: of the agent per call)",
        f"other: share of the machine used by other processes in the window (! above {DISTURBED:.0%}: suspect)",
    ]
    return "\n".join(lines)


def write(path: str, document: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
