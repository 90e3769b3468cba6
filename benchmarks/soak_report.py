"""The soak's checks, figures and printed report (see `benchmarks.soak`)."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from benchmarks.soak import Soak

METRICS = (("rss_kib", "RSS"), ("own_threads", "threads"), ("fds", "fds"))
"""What must come back to the baseline (`own_threads`: without grpc core's event_engine
pool, see `benchmarks.soak.GRPC_POOL_THREAD`)."""
TABLE_ROLES = ("orchestrator", "env", "agent", "hook", "victim")
MAX_ROWS = 40  # rows of the printed table; the JSON has every sample

Results = list[Optional[dict[str, Any]]]


def _outcomes(results: Results) -> dict[str, collections.Counter[str]]:
    total: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for result in results:
        for kind, counts in (result or {}).get("outcomes", {}).items():
            total[kind].update(counts)
    return total


def _victim_events(results: Results) -> list[tuple[float, str]]:
    return sorted(
        (float(t), str(what)) for r in results for t, what in (r or {}).get("victim_events", [])
    )


def _recoveries(soak: Soak, results: Results) -> list[float]:
    """For each restart of the victim followed by load: seconds until a trial on it started
    (inf: none did, though RECOVERY_LIMIT seconds of load followed)."""
    from benchmarks.soak import RECOVERY_LIMIT

    starts = [t for t, what in _victim_events(results) if what == "started"]
    pauses = sorted(q["paused"] for q in soak.quiesces.values() if "paused" in q)
    found: list[float] = []
    for kill in soak.kills:
        ready = kill.get("ready")
        if ready is None or kill.get("for_quiesce"):
            continue  # a restart made for a quiesce has no load after it
        until = min((p for p in pauses if p >= ready), default=float("inf"))
        after = [t - ready for t in starts if ready <= t <= until]
        if after:
            found.append(round(min(after), 2))
        elif until - ready >= RECOVERY_LIMIT:
            found.append(float("inf"))
    return found


def _in_kill_window(soak: Soak, when: float) -> bool:
    from benchmarks.soak import KILL_WINDOW_GRACE

    for kill in soak.kills:
        back = kill.get("ready", kill["killed"] + 60.0)
        if kill["killed"] - 1.0 <= when <= back + KILL_WINDOW_GRACE:
            return True
    return False


def _resource(sample: Optional[dict[str, Any]], role: str) -> dict[str, Any]:
    return ((sample or {}).get("procs") or {}).get(role) or {}


def checks(
    soak: Soak, results: Results, stop_problems: list[str], error: Optional[str]
) -> list[dict[str, Any]]:
    """Every check of the run: name, ok, detail."""
    from benchmarks.soak import CHECKED_ROLES, GROWTH_LIMIT, RECOVERY_LIMIT

    found: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        found.append({"name": name, "ok": bool(ok), "detail": detail})

    problems = [p for p in [error, *stop_problems] if p]
    for i, result in enumerate(results):
        if result and result.get("stuck_threads"):
            problems.append(f"client{i}: {result['stuck_threads']} threads did not stop")
        if result and result.get("pending_checks"):
            problems.append(f"client{i}: {result['pending_checks']} vanished trials unchecked")
    check("the soak ran to its end, every process answered", not problems, "; ".join(problems))

    unexpected = sum(int((r or {}).get("unexpected_count", 0)) for r in results)
    lines = [line for r in results for line in (r or {}).get("unexpected", [])][:8]
    check(
        "every trial ended as its ending says",
        unexpected == 0 and bool(results),
        f"{unexpected} unexpected" + ("".join(f"\n      {line}" for line in lines)),
    )

    outcomes = _outcomes(results)
    wanted = [
        ("end", "ended"),
        ("env", "ended"),
        ("max_steps", "ended"),
        ("vanish", "reaped"),
        ("victim", "ended"),
    ]
    if soak.kills:
        wanted.append(("victim", "failed"))
    missing = [f"{kind}:{what}" for kind, what in wanted if not outcomes[kind][what]]
    slow = sum(int(((r or {}).get("slow_start_latency") or {}).get("n", 0)) for r in results)
    if not slow:
        missing.append("slow hook")
    if not soak.kills:
        missing.append("victim kill")
    check(
        "every ending and fault happened",
        not missing,
        ("missing: " + ", ".join(missing)) if missing else "",
    )

    stray = [
        (t, what)
        for t, what in _victim_events(results)
        if what in ("failed", "refused") and not _in_kill_window(soak, t)
    ]
    check(
        "the victim's trials failed only around its kills",
        not stray,
        f"{len(stray)} failures away from any kill" if stray else "",
    )
    recoveries = _recoveries(soak, results)
    slow_recoveries = [r for r in recoveries if r > RECOVERY_LIMIT]
    check(
        f"after each restart, a trial on the victim started within {RECOVERY_LIMIT:g} s",
        not slow_recoveries,
        f"{len(recoveries)} restarts followed by load, slowest {max(recoveries):g} s"
        if recoveries
        else "no restart followed by load long enough to tell",
    )

    for name in ("baseline", "final"):
        quiesce = soak.quiesces.get(name) or {}
        sample = quiesce.get("sample") or {}
        live = sample.get("trials")
        sessions = sample.get("sessions") or {}
        ok = bool(quiesce.get("drained")) and live == 0 and not any(sessions.values())
        check(
            f"{'after the warm-up' if name == 'baseline' else 'at the end'}: "
            "0 live trials, 0 live sessions",
            ok,
            f"trials {live}, sessions {sessions}, drained in {quiesce.get('seconds')} s",
        )

    base = (soak.quiesces.get("baseline") or {}).get("sample")
    final = (soak.quiesces.get("final") or {}).get("sample")
    for role in CHECKED_ROLES:
        b, f = _resource(base, role), _resource(final, role)
        parts = []
        ok = bool(b) and bool(f)
        for key, label in METRICS:
            if key not in b or key not in f:
                ok = False
                continue
            limit = b[key] * (1.0 + GROWTH_LIMIT)
            grown = f[key] > limit
            ok = ok and not grown
            parts.append(
                f"{label} {_fmt(key, b[key])} -> {_fmt(key, f[key])}" + (" !" if grown else "")
            )
        parts.append(f"(grpc pool {b.get('grpc_pool')} -> {f.get('grpc_pool')})")
        check(
            f"{role}: RSS, threads, fds within {GROWTH_LIMIT:.0%} of the baseline",
            ok,
            ", ".join(parts),
        )
    return found


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "rss_kib":
        return f"{value / 1024:.1f} MiB"
    return str(value)


def figures(soak: Soak, results: Results) -> dict[str, Any]:
    """The run's figures: trials by ending and outcome, rates, latencies, recoveries."""
    outcomes = _outcomes(results)
    attempts: collections.Counter[str] = collections.Counter()
    for result in results:
        attempts.update((result or {}).get("attempts", {}))
    total = sum(attempts.values())
    elapsed = max(soak.elapsed(), 1e-9)
    recoveries = [r for r in _recoveries(soak, results) if r != float("inf")]

    def worst(key: str) -> dict[str, Any]:
        rows = [(r or {}).get(key) or {} for r in results]
        rows = [row for row in rows if row.get("n")]
        if not rows:
            return {"n": 0}
        return {
            "n": sum(row["n"] for row in rows),
            "p50": max(row["p50"] for row in rows),
            "p95": max(row["p95"] for row in rows),
            "max": max(row["max"] for row in rows),
        }

    base = (soak.quiesces.get("baseline") or {}).get("sample")
    final = (soak.quiesces.get("final") or {}).get("sample")
    resources = {
        role: {"baseline": _resource(base, role), "final": _resource(final, role)}
        for role in (
            *TABLE_ROLES,
            *sorted(r for r in _resource_roles(final) if r.startswith("client")),
        )
    }
    return {
        "trials": total,
        "trials_per_s": round(total / elapsed, 1),
        "ticks": sum(int((r or {}).get("ticks", 0)) for r in results),
        "attempts": dict(sorted(attempts.items())),
        "outcomes": {k: dict(v) for k, v in sorted(outcomes.items())},
        "start_latency_s": worst("start_latency"),
        "slow_hook_start_latency_s": worst("slow_start_latency"),
        "vanished_reaped_after_max_inactivity_s": worst("reap_lag"),
        "kills": len(soak.kills),
        "recovery_s": {
            "n": len(recoveries),
            "max": max(recoveries) if recoveries else None,
            "median": sorted(recoveries)[len(recoveries) // 2] if recoveries else None,
        },
        "drain_s": {k: v.get("seconds") for k, v in soak.quiesces.items()},
        "resources": resources,
    }


def _resource_roles(sample: Optional[dict[str, Any]]) -> list[str]:
    return list(((sample or {}).get("procs") or {}).keys())


def progress(row: dict[str, Any]) -> str:
    """One line for a sample, printed while the soak runs."""
    procs = row.get("procs") or {}
    cells = ", ".join(
        f"{role} {p['rss_kib'] / 1024:.1f} MiB/{p['own_threads']}+{p['grpc_pool']} thr/{p['fds']} fds"
        for role, p in procs.items()
        if role in TABLE_ROLES and "rss_kib" in p
    )
    clients = row.get("clients") or {}
    return (
        f"[{row['t']:7.1f} s] {row['phase']:<8} live trials {row['trials']}, sessions "
        f"{row.get('sessions')}, trials done {clients.get('trials')}, unexpected "
        f"{clients.get('unexpected')}; {cells}"
    )


def _cell(proc: dict[str, Any]) -> str:
    if "rss_kib" not in proc:
        return f"{'(down)':>19}"
    threads = f"{proc['own_threads']}+{proc['grpc_pool']}"
    return f"{proc['rss_kib'] / 1024:7.1f} {threads:>6} {proc['fds']:4d}"


def table(samples: list[dict[str, Any]]) -> str:
    """The samples over time (thinned to MAX_ROWS; the quiesced samples are always kept)."""
    keep = [s for s in samples if s["phase"] in ("baseline", "final")]
    step = max(1, len(samples) // MAX_ROWS)
    rows = [s for i, s in enumerate(samples) if i % step == 0 or s in keep or i == len(samples) - 1]
    head1 = f"{'':>7} {'':<9} {'live':>5} {'sessions':>10} {'trials':>7} "
    head2 = f"{'t (s)':>7} {'phase':<9} {'trials':>5} {'env/ag/vi':>10} {'done':>7} "
    for role in TABLE_ROLES:
        head1 += f"| {role:^19} "
        head2 += f"| {'MiB':>7} {'thr+g':>6} {'fds':>4} "
    lines = [head1.rstrip(), head2.rstrip(), "-" * len(head2.rstrip())]
    for s in rows:
        sessions = s.get("sessions") or {}
        sess = "/".join(
            "-" if sessions.get(n) is None else str(sessions[n]) for n in ("env", "agent", "victim")
        )
        line = (
            f"{s['t']:7.1f} {s['phase']:<9} {s['trials']:5d} {sess:>10} "
            f"{(s.get('clients') or {}).get('trials', 0):7d} "
        )
        for role in TABLE_ROLES:
            line += f"| {_cell((s.get('procs') or {}).get(role) or {})} "
        lines.append(line.rstrip())
    lines.append(
        "thr+g: threads (those the check counts) + grpc core's own event_engine pool (reported)"
    )
    return "\n".join(lines)


def render(document: dict[str, Any]) -> str:
    """The printed report: samples, figures, checks."""
    figs = document["figures"]
    out = ["", table(document["samples"]), ""]
    out.append(
        f"trials: {figs['trials']} in {document['elapsed_s']:g} s ({figs['trials_per_s']:g}/s), "
        f"{figs['ticks']} ticks"
    )
    for kind, counts in figs["outcomes"].items():
        out.append(
            f"  {kind:<10} {figs['attempts'].get(kind, 0):6d} trials: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )
    lat, slow = figs["start_latency_s"], figs["slow_hook_start_latency_s"]
    if lat.get("n"):
        out.append(
            f"start_trial: p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms, "
            f"max {lat['max'] * 1000:.0f} ms (slow-hook trials: p50 {slow.get('p50', 0):.2f} s)"
        )
    lag = figs["vanished_reaped_after_max_inactivity_s"]
    if lag.get("n"):
        out.append(
            f"vanished clients' trials seen ended (max_inactivity) at most {lag['p50']:.2f} s "
            f"(p50), {lag['max']:.2f} s (max) after their max_inactivity"
        )
    rec = figs["recovery_s"]
    out.append(
        f"victim kills: {figs['kills']}; first trial on it after a restart: "
        + (f"median {rec['median']} s, max {rec['max']} s" if rec["n"] else "-")
    )
    out.append(f"quiesce (all trials ended) took: {figs['drain_s']}")
    out.append("resources, baseline -> end (threads: without grpc's own event_engine pool):")
    for role, pair in figs["resources"].items():
        b, f = pair["baseline"], pair["final"]
        if not b or not f or "rss_kib" not in b or "rss_kib" not in f:
            continue
        note = " (restarted: not checked)" if role == "victim" else ""
        note = " (the load: not checked)" if role.startswith("client") else note
        out.append(
            f"  {role:<13} "
            + ", ".join(
                f"{label} {_fmt(key, b[key])} -> {_fmt(key, f[key])} ({_pct(b[key], f[key])})"
                for key, label in METRICS
            )
            + f", grpc pool {b.get('grpc_pool')} -> {f.get('grpc_pool')}"
            + note
        )
    out.append("checks:")
    for check in document["checks"]:
        mark = "ok  " if check["ok"] else "FAIL"
        detail = f": {check['detail']}" if check["detail"] else ""
        out.append(f"  {mark} {check['name']}{detail}")
    return "\n".join(out)


def _pct(before: float, after: float) -> str:
    if not before:
        return "-"
    return f"{(after - before) / before:+.1%}"
