"""The report: markdown tables (printed and written), the JSON file and the plots."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import median
from typing import Any

from bench._scenarios import SCENARIOS
from bench._scrape_report import scrape_lines
from bench._targets import __doc__ as TARGETS_DOC
from bench._targets import compute_targets, issue17_targets

__all__ = ("README_BEGIN", "README_END", "readme_summary", "render_markdown", "spread",
           "update_readme", "write_report")

README_BEGIN = "<!-- bench:begin (written by python -m bench --readme; edit bench/_report.py) -->"
README_END = "<!-- bench:end -->"

MB = 1024 * 1024


def _f(value: Any, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def _get(m: dict[str, Any], *path: str) -> float | None:
    value: Any = m
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def spread(values: list[float | None], fmt: str = "{:.2f}") -> str:
    """``median [min-max]`` of the values present (just the value when there is one)."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    mid = fmt.format(median(present))
    if len(present) == 1:
        return mid
    return f"{mid} [{fmt.format(min(present))}-{fmt.format(max(present))}]"


def _fires(ms: list[dict[str, Any]]) -> str:
    """Fires run/planned over the runs (summed); missed or extra ones in bold."""
    text = (
        f"{sum(m['fires_executed'] for m in ms):,}/{sum(m['fires_expected'] for m in ms):,}"
    )
    missed = sum(m.get("fires_missed") or 0 for m in ms)
    extra = sum(m.get("fires_extra") or 0 for m in ms)
    if missed:
        text += f" **MISSED {missed:,}**"
    if extra:
        text += f" **EXTRA {extra:,}**"
    overran = sum(1 for m in ms if m.get("setup_overran"))
    if overran:
        text += f" (set-up overran in {overran})"
    return text


# Per scenario kind: (header, path into the metrics, format, scale). Every cell is the
# median over the repetitions with the spread.
Column = tuple[str, tuple[str, ...], str, float]
_COLUMNS: dict[str, list[Column]] = {
    "fire": [
        ("p50 ms", ("lateness_ms", "p50"), "{:.2f}", 1),
        ("p99 ms", ("lateness_ms", "p99"), "{:.2f}", 1),
        ("p99.9 ms", ("lateness_ms", "p99.9"), "{:.2f}", 1),
        ("max ms", ("lateness_ms", "max"), "{:.2f}", 1),
        ("CPU s/1k fires", ("cpu_s_per_1k_fires",), "{:.4f}", 1),
    ],
    "idle": [
        ("idle s", ("idle_s",), "{:.1f}", 1),
        ("CPU ms", ("cpu_s",), "{:.1f}", 1000),
        ("wake-ups", ("wakeups",), "{:.0f}", 1),
        ("wake-ups/s", ("wakeups_per_s",), "{:.2f}", 1),
        ("loop iterations", ("loop_iterations",), "{:.0f}", 1),
        ("loop sleeps", ("loop_sleeps",), "{:.0f}", 1),
    ],
    "add": [
        ("jobs/s", ("add_rate_per_s",), "{:,.0f}", 1),
        ("µs/job", ("add_us_per_job",), "{:.2f}", 1),
        ("bytes/job (tracemalloc)", ("bytes_per_job",), "{:,.0f}", 1),
        ("RSS bytes/job", ("rss_bytes_per_job",), "{:,.0f}", 1),
    ],
}
_EXTRA_COLUMNS: dict[str, list[Column]] = {
    "burst": [("last start s", ("last_start_s",), "{:.3f}", 1)],
    "cron-heavy": [("last start s", ("last_start_s",), "{:.3f}", 1)],
    "churn": [
        ("churn ops/s", ("churn_ops_per_s",), "{:,.0f}", 1),
        ("op p99 µs", ("churn_op_us", "p99"), "{:.1f}", 1),
    ],
    "pg-store": [
        ("replicas", ("replicas",), "{:.0f}", 1),
        ("fires/s achieved", ("fires_per_s_achieved",), "{:,.0f}", 1),
        ("PostgreSQL CPU s/1k fires", ("server_cpu_s_per_1k_fires",), "{:.4f}", 1),
        ("set-up s", ("setup_s",), "{:.1f}", 1),
    ],
}
_PEAK_RSS: Column = ("peak RSS MB", ("peak_rss_bytes",), "{:.0f}", 1 / MB)


def _columns(scenario: str) -> list[Column]:
    kind = SCENARIOS[scenario].kind
    return [*_COLUMNS[kind], *_EXTRA_COLUMNS.get(scenario, []), _PEAK_RSS]


def _cell(ms: list[dict[str, Any]], column: Column) -> str:
    _, path, fmt, scale = column
    values = [_get(m, *path) for m in ms]
    return spread([None if v is None else v * scale for v in values], fmt)


def _loads(ms: list[dict[str, Any]]) -> str:
    loads = [x for m in ms for x in m.get("loadavg_1m") or [] if x is not None]
    return f"{min(loads):.2f}-{max(loads):.2f}" if loads else "-"


def _group_rows(scenario: str, these: list[dict[str, Any]]) -> list[list[str]]:
    """One row per engine and N: each figure's median over its runs, with the spread."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in these:
        groups.setdefault((r["engine"], r["n"]), []).append(r)
    columns = _columns(scenario)
    rows = []
    for (engine, n), rs in groups.items():
        ok = [r["metrics"] for r in rs if r["status"] == "ok"]
        failed = [r for r in rs if r["status"] != "ok"]
        head = [engine, f"{n:,}", f"{len(ok)}" + (f" of {len(rs)}" if failed else "")]
        if not ok:
            r = failed[0]
            rows.append(
                [*head, f"**{r['status'].upper()}**: {r.get('reason', '')}", *([""] * len(columns))]
            )
            continue
        first = [_fires(ok)] if SCENARIOS[scenario].kind == "fire" else []
        row = [*head, *first, *(_cell(ok, c) for c in columns), _loads(ok)]
        if scenario == "pg-store":
            won = [
                " / ".join(f"{v:,}" for v in (m.get("claims_per_replica") or {}).values())
                for m in ok
            ]
            row.append("; ".join(w for w in won if w) or "-")
        if failed:
            row[-1] += " · " + "; ".join(
                f"**{r['status'].upper()}**: {r.get('reason', '')}" for r in failed
            )
        rows.append(row)
    return rows


def _headers(scenario: str) -> list[str]:
    h = ["engine", "N", "runs"]
    if SCENARIOS[scenario].kind == "fire":
        h.append("fires run/planned")
    h += [c[0] for c in _columns(scenario)]
    h.append("load 1m")
    if scenario == "pg-store":
        h.append("claims won per replica")
    return h


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _bullets(doc: str) -> list[str]:
    """The ``- `` items of a docstring, each joined onto one line."""
    items: list[str] = []
    for ln in doc.splitlines():
        text = ln.strip()
        if text.startswith("- "):
            items.append(text)
        elif text and items and not text.endswith(":"):
            items[-1] += " " + text
        elif not text and items:
            items.append("")
    return [i for i in items if i]


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report as markdown: machine, one table per scenario, targets, notes."""
    mi, st = report["machine"], report["settings"]
    lines = [
        "# Scheduler benchmark",
        "",
        f"{mi['date_utc']} · {mi['cpu']} · {mi['cores']} cores · {mi['platform']} · "
        f"{mi['implementation']} {mi['python']} · commit {mi['commit'] or '?'}",
        "",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in mi["packages"].items() if v),
        "",
        *([f"kernel-baseline: {mi['baseline']}", ""] if mi.get("baseline") else []),
        *(
            [f"Preset `{st['preset']}` (`python -m bench --preset {st['preset']}`): each "
             "scenario at its own engines and N, below.", ""]
            if st.get("preset")
            else []
        ),
        f"Settings: N = {', '.join(f'{n:,}' for n in st['n'])}; steady load "
        + (
            ", ".join(
                f"{k} {v:g} s"
                for k, v in (st.get("durations_s") or {}).items()
                if k in ("steady", "churn", "steady-scrape", "pg-store")
            )
            or f"{st['duration_s']:g} s"
        )
        + f"; each run repeated {st.get('repeat', 1)} times, the engines taking turns; idle "
        f"{st['idle_duration_s']:g} s; late fires count up to "
        f"{st['drain_s']:g} s after the last planned one"
        + (" (**--quick: a smoke run, the numbers mean nothing**)" if st["quick"] else "")
        + ".",
        "Lateness = the body's monotonic start time minus the planned fire time; every engine "
        "runs the same coroutine body. CPU = user + system seconds of the whole process over "
        "the measured window. Wake-ups = voluntary context switches.",
        "",
    ]
    lines += [*_load_lines(report), ""]
    for name, reason in report["unavailable"].items():
        lines.append(f"- engine **{name}** unavailable: {reason}")
    for name, summary in report["not_implemented"].items():
        lines.append(f"- scenario **{name}** not run: {summary}")
    if report["unavailable"] or report["not_implemented"]:
        lines.append("")
    runs = report["runs"]
    for scenario in st["scenarios"]:
        these = [r for r in runs if r["scenario"] == scenario]
        if not these:
            continue
        lines += [f"## {scenario}: {SCENARIOS[scenario].summary}", ""]
        if SCENARIOS[scenario].kind == "scrape":
            lines += [*scrape_lines(these), ""]
            continue
        lines += _table(_headers(scenario), _group_rows(scenario, these))
        lines.append("")
    doc6, _, doc17 = (TARGETS_DOC or "").partition("Issue 17")
    lines += _target_lines(
        "Targets (issue 17)",
        report.get("targets_issue17") or [],
        "Each figure: the median of the runs [min-max]; a ratio is the ratio of the medians. "
        "How each target is read:",
        _bullets(doc17),
    )
    lines += [""]
    lines += _target_lines(
        "Targets (issue 6)",
        report["targets"],
        "Read on the medians of the runs. How each target is read:",
        _bullets(doc6),
    )
    notes = [(r, n) for r in runs for n in (r.get("metrics") or {}).get("notes", [])]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {r['scenario']} N={r['n']:,} {r['engine']}: {n}" for r, n in notes]
    return "\n".join(lines) + "\n"


def _load_lines(report: dict[str, Any]) -> list[str]:
    """The machine's cores and load average at the start and the end of the whole run,
    and the range of the 1-minute load around the runs."""
    mi = report["machine"]
    cores = mi.get("cores") or 1

    def avg(key: str) -> str:
        load = mi.get(key)
        return "unknown" if not load else " / ".join(f"{x:.2f}" for x in load)

    text = (
        f"Machine: {cores} cores; load average (1 / 5 / 15 min) at the start of the run "
        f"{avg('load_start')}, at the end {avg('load_end')}"
    )
    loads = [
        x
        for r in report["runs"]
        for x in (r.get("metrics") or {}).get("loadavg_1m") or []
        if x is not None
    ]
    if loads:
        text += f"; 1-minute load around the runs {min(loads):.2f}-{max(loads):.2f}"
        if max(loads) > 0.5 * cores:
            text += " (**the machine was busy with other work: lateness figures are noisy**)"
    return [text + "."]


def _target_lines(
    title: str, targets: list[dict[str, Any]], intro: str, how: list[str]
) -> list[str]:
    lines = [f"## {title}", ""]
    if targets:
        lines += _table(
            ["target", "engine", "measured", "need", "result"],
            [
                [t["target"], t["engine"], t["measured"], t["need"], f"**{t['status']}**"]
                for t in targets
            ],
        )
    else:
        lines.append("No kernel run completed: no target could be computed.")
    return [*lines, "", intro, "", *how]


def readme_summary(report: dict[str, Any]) -> list[str]:
    """The run in a few lines and issue 17's target table: what ``--readme`` writes."""
    mi, st = report["machine"], report["settings"]
    command = "python -m bench" + (f" --preset {st['preset']}" if st.get("preset") else "")
    command += f" --repeat {st.get('repeat', 1)}"
    lines = [
        f"{mi['date_utc']}, commit {mi['commit'] or '?'}, `{command}`: {mi['cpu']}, "
        f"{mi['platform']}, {mi['implementation']} {mi['python']}"
        + "".join(f", {k} {v}" for k, v in mi["packages"].items() if k == "apscheduler" and v)
        + ". Each figure is the median of the runs [min-max], the floor and APScheduler 3 from "
        "the same run, the engines taking turns.",
        "",
        *_load_lines(report),
        "",
    ]
    targets = report.get("targets_issue17") or []
    if targets:
        lines += _table(
            ["target (issue 17)", "measured: kernel vs the others", "need", "result"],
            [[t["target"], t["measured"], t["need"], f"**{t['status']}**"] for t in targets],
        )
    else:
        lines.append("No kernel run completed: no target could be computed.")
    return lines


def update_readme(path: Path, report: dict[str, Any]) -> None:
    """Replace the text between :data:`README_BEGIN` and :data:`README_END` in ``path``
    with :func:`readme_summary`; ``ValueError`` when the markers are missing."""
    text = path.read_text(encoding="utf-8")
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(
            f"{path}: no {README_BEGIN!r} ... {README_END!r} block to replace; add the two "
            "marker lines where the table goes"
        )
    body = "\n".join(readme_summary(report))
    path.write_text(
        text[: begin + len(README_BEGIN)] + "\n" + body + "\n" + text[end:], encoding="utf-8"
    )


def write_report(report: dict[str, Any], out: Path) -> str:
    """Compute targets, write ``results.json``, ``results.md`` and the plots into ``out``;
    return the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    report["targets"] = compute_targets(report["runs"])
    report["targets_issue17"] = issue17_targets(report["runs"])
    try:
        from bench._plots import write_plots

        report["plots"] = write_plots(report, out)
    except ImportError as exc:
        report["plots"] = []
        sys.stderr.write(f"plots skipped: {exc} (matplotlib is in the bench extra)\n")
    markdown = render_markdown(report)
    (out / "results.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "results.md").write_text(markdown, encoding="utf-8")
    return markdown
