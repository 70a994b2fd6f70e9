"""This tree ÷ an earlier commit (``run.py --base REV``): the ratio rows and what each row ran.

A row and its base twin ("conveyor" and "conveyor@REV") run next to each other in every
repeat, so each repeat gives one ratio of neighbours in time; the row shows their median and
range. A ratio of medians over the whole run would mix a fast phase of the machine in one
version's figure with a slow one in the other's.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from harness.base_tree import REPO, adapter_name, within
from harness.report import COLUMNS, SOURCES, columns, summaries

Runs = dict[str, list[dict[str, Any]]]
Raw = dict[str, Runs]
#: "this tree ÷ REV" shown in the table and used as the key in latest.json
PAIR_LABEL = "{this} ÷ {base}"


def repeat_ratios(
    this: list[dict[str, Any]], base: list[dict[str, Any]], field: str
) -> list[float]:
    """this[i] ÷ base[i] for each repeat i in which both runs succeeded."""
    return [
        float(a[field]) / float(b[field])
        for a, b in zip(this, base, strict=False)
        if a.get("status") == b.get("status") == "ok" and float(b[field])
    ]


def compare(this: Runs, base: Runs) -> dict[str, dict[str, Any]]:
    """Per column run by both rows: the per-repeat ratios, their median, min and max (None
    when no repeat succeeded for both), and how many repeats that is."""
    out: dict[str, dict[str, Any]] = {}
    for key, (scenario, field) in SOURCES.items():
        if not this.get(scenario) or not base.get(scenario):
            continue  # not run (yet): the cell says "-"
        found = repeat_ratios(this[scenario], base[scenario], field)
        repeats = min(len(this[scenario]), len(base[scenario]))
        out[key] = {
            "median": statistics.median(found) if found else None,
            "min": min(found, default=None),
            "max": max(found, default=None),
            "ratios": found,
            "repeats": f"{len(found)}/{repeats}",
        }
    return out


def cell(item: dict[str, Any] | None) -> str:
    if item is None:
        return "-"
    if item["median"] is None:
        return "n/a"
    text = f"{item['median']:.3f}x"
    if len(item["ratios"]) > 1:
        text += f" ({item['min']:.3f}-{item['max']:.3f})"
    done, repeats = item["repeats"].split("/")
    if done != repeats:
        text += f", {item['repeats']} repeats"
    return text


def ratio_row(
    label: str, found: dict[str, dict[str, Any]], shown: list[tuple[str, str, bool]] = COLUMNS
) -> str:
    """`shown`: the table's columns (report.columns), so that the cells line up with it."""
    cells = [cell(found.get(key)) for key, _, _ in shown]
    return f"| **{label}** | | " + " | ".join(cells) + " |"


def shown_path(path: str) -> str:
    """A path in the report: relative to the repository when inside it."""
    return str(Path(path).resolve().relative_to(REPO)) if within(path, REPO) else path


def imported_from(check: dict[str, Any], runs: Runs) -> list[str]:
    """Every file the row's check, producers and workers imported conveyor from."""
    found = {check.get("origin")}
    for run in (run for scenario in runs.values() for run in scenario):
        found.update([run.get("origin"), *run.get("worker_origins", [])])
    return sorted(str(path) for path in found if path)


def header_notes(base: dict[str, Any], info: dict[str, dict[str, Any]], raw: Raw) -> list[str]:
    """Bullets above the table: what the base rows and this tree's rows ran, and how to read
    the ratio rows."""
    this = base["this_tree"]
    changed = " with uncommitted changes in src/" if this["src_changed"] else ""
    lines = [
        f"- Base: `{base['rev']}` = commit {base['commit']} (git rev-parse), checked out in "
        f"a git worktree; its rows (`…@{base['rev']}`) run this tree's adapters on that "
        f"commit's src/. This tree's rows: HEAD {this['commit']}{changed}.",
    ]
    for lib, runs in raw.items():
        paths = imported_from(info.get(lib, {}), runs)
        if paths:
            shown = ", ".join(shown_path(path) for path in paths)
            lines.append(f"- `{lib}` ran conveyor from {shown} (as each of its processes said)")
    lines.append(
        f"- Rows \"X ÷ X@{base['rev']}\": per repeat, this tree's figure ÷ the base's in the "
        "same repeat; median (min-max) over repeats. Throughput: >1 = this tree faster; "
        "latency: <1 = this tree lower."
    )
    return lines


def pairs(libs: list[str]) -> list[tuple[str, str]]:
    """(this tree's row, its base twin) for each base row in `libs`."""
    return [(adapter_name(lib), lib) for lib in libs if adapter_name(lib) != lib]


def report_parts(
    base: dict[str, Any], info: dict[str, dict[str, Any]], raw: Raw
) -> tuple[list[str], list[str], dict[str, dict[str, Any]]]:
    """(ratio rows for the table, notes above it, the ratios by pair label for latest.json)."""
    rows, compared = [], {}
    shown = columns({lib: summaries(raw[lib]) for lib in raw})
    for this, twin in pairs(list(raw)):
        if this not in raw:
            continue
        label = PAIR_LABEL.format(this=this, base=twin)
        compared[label] = compare(raw[this], raw[twin])
        rows.append(ratio_row(label, compared[label], shown))
    return rows, header_notes(base, info, raw), compared


def repeat_order(libs: list[str], r: int) -> list[str]:
    """The order of repeat `r`: on every other repeat each row and its base twin swap places
    (A B, B A, ...), so neither version always runs first."""
    out = list(libs)
    i = 0
    while r % 2 and i < len(out) - 1:
        if out[i + 1] != out[i] and adapter_name(out[i + 1]) == out[i]:
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 1
        i += 1
    return out
