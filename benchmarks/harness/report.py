"""Summaries, machine info and the markdown/JSON report."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from collections.abc import Sequence
from typing import Any

from harness.base_tree import adapter_name

#: (column key, header, higher_is_better)
COLUMNS: list[tuple[str, str, bool]] = [
    ("enqueue", "(a) enqueue 1-by-1 jobs/s", True),
    ("enqueue_concurrent", "(a2) enqueue, concurrent producers jobs/s", True),
    ("bulk", "(b) bulk enqueue jobs/s", True),
    ("drain_noop", "(c) drain no-op jobs/s", True),
    ("drain_sleep", "(d) drain sleep(10ms) jobs/s", True),
    ("latency_p50", "(e) latency p50 ms", False),
    ("latency_p99", "(e) latency p99 ms", False),
]
#: columns shown only when a row ran their scenario, if only to answer n/a (these are opt-in)
OPTIONAL_COLUMNS: list[tuple[str, str, bool]] = [
    ("drain_mix", "(f) realistic mix jobs/s", True),
    ("drain_limited", "(g) drain no-op, rate limit far above capacity jobs/s", True),
    ("drain_groups", "(h) drain no-op, 1,000 groups jobs/s", True),
]
#: column key -> (scenario, field of its runs' results)
SOURCES: dict[str, tuple[str, str]] = {
    "enqueue": ("enqueue", "value"),
    "enqueue_concurrent": ("enqueue_concurrent", "value"),
    "bulk": ("bulk", "value"),
    "drain_noop": ("drain_noop", "value"),
    "drain_sleep": ("drain_sleep", "value"),
    "latency_p50": ("latency", "p50"),
    "latency_p99": ("latency", "p99"),
    "drain_mix": ("drain_mix", "value"),
    "drain_limited": ("drain_limited", "value"),
    "drain_groups": ("drain_groups", "value"),
}
SUBJECT = "conveyor"  # Queue (asyncio): the row the ratio row is about
SUBJECT_SYNC = "conveyor_sync"  # SyncQueue (blocking), scenario (a) only
BASELINE = "redis_lpush"  # bare redis.asyncio LPUSH: physical limit for asyncio clients
BASELINE_SYNC = "redis_lpush_sync"  # bare sync redis-py LPUSH: limit for blocking clients
#: rows that run the producer scenarios only (a, a2)
ENQUEUE_ONLY = (SUBJECT_SYNC, BASELINE, BASELINE_SYNC)
#: rows never taken as the "best peer" (nor their runs of an earlier commit, "conveyor@REV")
NOT_PEERS = (SUBJECT, SUBJECT_SYNC, BASELINE, BASELINE_SYNC)


def columns(table: dict[str, dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """COLUMNS, and each optional column some row of `table` has a cell for."""
    present = {key for row in table.values() for key in row}
    return COLUMNS + [col for col in OPTIONAL_COLUMNS if col[0] in present]


#: statuses of a cell that are no failure: the library lacks the feature, or its runtime
NOT_FAILED = ("ok", "n/a", "skipped")


def is_peer(lib: str) -> bool:
    return adapter_name(lib) not in NOT_PEERS


#: ratios listed under the table for (a): (label, numerator row, denominator row; None = best peer)
ENQUEUE_RATIOS: list[tuple[str, str, str | None]] = [
    ("SyncQueue ÷ best peer", SUBJECT_SYNC, None),
    ("Queue (asyncio) ÷ redis_lpush (asyncio)", SUBJECT, BASELINE),
    ("SyncQueue ÷ redis_lpush_sync", SUBJECT_SYNC, BASELINE_SYNC),
]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_info(redis_version: str) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "redis": redis_version,
    }


def summarize(runs: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """Median/min/max of `field` over the runs that succeeded (with "ok_runs", e.g. "2/3",
    and a note per failed run when some did not), or the first failure when none did."""
    good = [r for r in runs if r.get("status") == "ok"]
    if not good:
        first = runs[0] if runs else {"status": "error", "detail": "not run"}
        return {"status": first.get("status", "error"), "detail": first.get("detail", "")}
    values = [float(r[field]) for r in good]
    out: dict[str, Any] = {
        "status": "ok",
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }
    if len(good) < len(runs):  # the figure stands on fewer repeats: the cell says so
        out["ok_runs"] = f"{len(good)}/{len(runs)}"
    # What the figure's reader should know: failed repeats, and details of good ones (e.g.
    # jobs that ran twice).
    notes = [
        f"#{n}: {r.get('detail', '')}" if r.get("status") == "ok" else f"#{n} failed: {_why(r)}"
        for n, r in enumerate(runs, 1)
        if r.get("detail") or r.get("status") != "ok"
    ]
    if notes:
        out["notes"] = notes
    return out


def _why(run: dict[str, Any]) -> str:
    status, detail = run.get("status", "error"), str(run.get("detail", ""))
    return detail if detail.startswith(status) else f"{status}: {detail}"


def summaries(per_scenario: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    # A scenario with no runs yet (a report written half-way) is left out: its cell says "-".
    return {
        key: summarize(per_scenario[scenario], field)
        for key, (scenario, field) in SOURCES.items()
        if per_scenario.get(scenario)
    }


def _num(v: float, latency: bool) -> str:
    if latency:
        return f"{v:.2f}" if v < 100 else f"{v:,.0f}"
    return f"{v:,.0f}"


def cell(s: dict[str, Any] | None, latency: bool) -> str:
    if s is None:
        return "-"
    if s["status"] == "ok":
        text = _num(s["median"], latency)
        if len(s["values"]) > 1:
            text += f" ({_num(s['min'], latency)}-{_num(s['max'], latency)})"
        if "ok_runs" in s:
            text += f", {s['ok_runs']} runs ok"
        return text
    if s["status"] == "n/a":
        return "n/a"
    if s["status"] == "skipped":  # its runtime (Node, Ruby) is missing: the note says why
        return "skipped"
    if s["status"] == "timeout":
        return s.get("detail") or "timeout"
    detail = str(s.get("detail", "")).replace("|", "/").replace("\n", " ")
    return f"error: {detail[:70]}"


def best_peer(table: dict[str, dict[str, Any]], key: str, higher: bool) -> tuple[str, float] | None:
    """(library, median) of the best peer in column `key` (see is_peer)."""
    peers = {
        lib: float(s[key]["median"])
        for lib, s in table.items()
        if is_peer(lib) and s.get(key, {}).get("status") == "ok"
    }
    if not peers:
        return None
    best = (max if higher else min)(peers, key=lambda k: peers[k])
    return best, peers[best]


def ratios(table: dict[str, dict[str, Any]], subject: str) -> dict[str, dict[str, Any]]:
    """`subject` ÷ best peer for each column run for `subject` (see is_peer), with the peers
    that have no figure in that column: the best of the rest is not necessarily the best."""
    out: dict[str, dict[str, Any]] = {}
    for key, _, higher in columns(table):
        mine = table.get(subject, {}).get(key)
        if mine is None:
            continue
        best = best_peer(table, key, higher)
        # ("n/a" is a library without the feature, e.g. no bulk API: not a failure.)
        missing = sorted(
            lib
            for lib, row in table.items()
            if is_peer(lib) and key in row and row[key].get("status") not in NOT_FAILED
        )
        ok = mine.get("status") == "ok" and best is not None
        out[key] = {
            "ratio": mine["median"] / best[1] if ok and best else None,
            "best_peer": best[0] if best else None,
            "best_peer_median": best[1] if best else None,
            "peers_without_figure": missing,
        }
    return out


def ratio_cells(table: dict[str, dict[str, Any]], subject: str) -> list[str]:
    """The ratio row: "-" where the scenario was not run, "n/a" where there is nothing to
    divide, and the peers that failed in the column, if any."""
    found = ratios(table, subject)
    cells = []
    for key, _, _ in columns(table):
        item = found.get(key)
        if item is None:
            cells.append("-")
            continue
        text = "n/a" if item["ratio"] is None else f"{item['ratio']:.2f}x (vs {item['best_peer']})"
        if item["peers_without_figure"]:
            text += f"; no figure: {', '.join(item['peers_without_figure'])}"
        cells.append(text)
    return cells


def _side(table: dict[str, dict[str, Any]], lib: str) -> dict[str, Any]:
    s = table.get(lib, {}).get("enqueue") or {"status": "error", "detail": "not run"}
    if s.get("status") != "ok":
        return {"lib": lib, "median": None, "status": s.get("status", "error")}
    return {"lib": lib, "median": s["median"]}


def summary_extra(table: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Scenario (a) ratios of ENQUEUE_RATIOS whose rows were run, with their medians."""
    out = []
    has_peer = any(is_peer(lib) for lib in table)
    for label, num_lib, den_lib in ENQUEUE_RATIOS:
        if num_lib not in table or (den_lib not in table if den_lib else not has_peer):
            continue
        num = _side(table, num_lib)
        if den_lib is None:
            best = best_peer(table, "enqueue", True)
            den = (
                {"lib": best[0], "median": best[1]}
                if best
                else {"lib": "best peer", "median": None, "status": "no peer figure"}
            )
        else:
            den = _side(table, den_lib)
        ok = num["median"] is not None and den["median"] is not None
        ratio = num["median"] / den["median"] if ok else None
        out.append({"label": label, "numerator": num, "denominator": den, "ratio": ratio})
    return {"enqueue": out} if out else {}


def _extra_line(item: dict[str, Any]) -> str:
    num, den = item["numerator"], item["denominator"]
    if item["ratio"] is None:
        missing = [
            f"{d['lib']}: {d.get('status', 'no figure')}" for d in (num, den) if d["median"] is None
        ]
        return f"- {item['label']}: n/a ({'; '.join(missing)})"
    return (
        f"- {item['label']}: {item['ratio']:.2f}x "
        f"({num['lib']} {_num(num['median'], False)} ÷ {den['lib']} {_num(den['median'], False)})"
    )


def run_notes(table: dict[str, dict[str, Any]]) -> list[str]:
    """'lib scenario #run: detail' for successful runs that carry a detail, once each."""
    seen: dict[str, None] = {}
    for lib, row in table.items():
        for key, header, _ in columns(table):
            scenario = header.split(" ", 1)[0] + " " + key.split("_", 1)[0]  # "(e) latency"
            for note in row.get(key, {}).get("notes", []):
                seen.setdefault(f"{lib} {scenario} {note}")
    return list(seen)


def markdown(
    meta: dict[str, Any],
    table: dict[str, dict[str, Any]],
    info: dict[str, Any],
    extra_rows: Sequence[str] = (),
    header_notes: Sequence[str] = (),
) -> str:
    """The report; `extra_rows` go under the ratio row, `header_notes` (bullets) above the
    table (``run.py --base`` adds its ratio rows and which commit each row ran)."""
    m = meta["machine"]
    lines = [
        "# Conveyor vs the Python job-queue field",
        "",
        f"- Date: {m['date']}",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['os']}",
        f"- Python {m['python']} (driver), Redis {m['redis']} (private, no persistence)",
        f"- N = {meta['jobs']} jobs (d: {meta['sleep_jobs']}"
        + (f", f: {meta['mix_jobs']}" if "drain_mix" in (meta.get("scenarios") or []) else "")
        + f"), repeat = {meta['repeat']}, "
        f"worker processes = {meta['workers']}, latency: {meta['rate']:.0f} jobs/s for "
        f"{meta['duration']:.0f} s with 1 idle worker process",
        f"- Scenarios: {', '.join(meta.get('scenarios') or ['all'])}",
        *(
            ["- **Partial**: written while the run was going; cells cover the runs done by then."]
            if meta.get("complete") is False
            else []
        ),
        "- Cells: median (min-max) over repeats. Throughput: higher is better; latency: lower.",
        "- Last row: Conveyor median / best peer median (throughput: >1 = Conveyor faster; "
        "latency: <1 = Conveyor lower). Not peers: conveyor_sync (Conveyor's SyncQueue) and "
        "the redis_lpush / redis_lpush_sync baselines.",
        *header_notes,
        "",
    ]
    shown = columns(table)
    header = ["Library", "Version", *[h for _, h, _ in shown]]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for lib, row in table.items():
        version = info.get(lib, {}).get("version", "?")
        if info.get(lib, {}).get("source"):
            version += f", {info[lib]['source']}"
        cells = [cell(row.get(k), not higher) for k, _, higher in shown]
        lines.append("| " + " | ".join([lib, version, *cells]) + " |")
    ratios = ratio_cells(table, SUBJECT)
    lines.append("| **Conveyor ÷ best peer** | | " + " | ".join(ratios) + " |")
    lines.extend(extra_rows)
    lines.append("")
    extra = summary_extra(table).get("enqueue", [])
    if extra:
        lines.append(
            "(a) enqueue 1-by-1, blocking vs asyncio producers (ratio of medians, jobs/s):"
        )
        lines.append("")
        lines.extend(_extra_line(item) for item in extra)
        lines.append("")
    notes = run_notes(table)
    if notes:
        lines.append("Notes on individual runs:")
        lines.append("")
        lines.extend(f"- {note}" for note in notes)
        lines.append("")
    lines.append("Worker settings per library:")
    lines.append("")
    for lib, i in info.items():
        if i.get("settings") and adapter_name(lib) == lib:  # a base row runs the same adapter
            lines.append(f"- **{lib}**: {i['settings']}")
        elif i.get("status") == "skipped":
            lines.append(f"- **{lib}**: skipped: {i.get('detail', '')}")
    kept = [(lib, i["retention"]) for lib, i in info.items() if i.get("retention")]
    if kept:  # the adapters that say (RETENTION): Conveyor's and the Node and Ruby peers'
        lines += ["", "Kept in Redis after a job, at each library's defaults, and acknowledgement:"]
        lines += [""] + [f"- **{lib}**: {text}" for lib, text in kept if adapter_name(lib) == lib]
    return "\n".join(lines) + "\n"
