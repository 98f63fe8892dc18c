"""The report: markdown tables (printed and written), the JSON file and the plots."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench._scenarios import SCENARIOS
from bench._scrape_report import scrape_lines
from bench._targets import __doc__ as TARGETS_DOC
from bench._targets import compute_targets

__all__ = ("render_markdown", "write_report")

MB = 1024 * 1024


def _f(value: Any, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def _fires(m: dict[str, Any]) -> str:
    text = f"{m['fires_executed']:,}/{m['fires_expected']:,}"
    if m.get("fires_missed"):
        text += f" **MISSED {m['fires_missed']:,}**"
    if m.get("fires_extra"):
        text += f" **EXTRA {m['fires_extra']:,}**"
    if m.get("setup_overran"):
        text += " (set-up overran)"
    return text


def _fire_row(m: dict[str, Any], scenario: str) -> list[str]:
    lat = m.get("lateness_ms") or {}
    row = [
        _fires(m),
        _f(lat.get("p50")),
        _f(lat.get("p99")),
        _f(lat.get("p99.9")),
        _f(lat.get("max")),
        _f(m.get("cpu_s_per_1k_fires"), "{:.4f}"),
    ]
    if scenario in ("burst", "cron-heavy"):
        row.append(_f(m.get("last_start_s"), "{:.3f}"))
    if scenario == "churn":
        ops = m.get("churn_op_us") or {}
        row += [_f(m.get("churn_ops_per_s"), "{:,.0f}"), _f(ops.get("p99"), "{:.1f}")]
    if scenario == "pg-store":
        won = m.get("claims_per_replica") or {}
        row += [
            str(m.get("replicas", "-")),
            _f(m.get("fires_per_s_achieved"), "{:,.0f}"),
            _f(m.get("server_cpu_s_per_1k_fires"), "{:.4f}"),
            _f(m.get("setup_s"), "{:.1f}"),
            " / ".join(f"{v:,}" for v in won.values()) or "-",
        ]
    return row


_HEADERS = {
    "fire": ["fires run/planned", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "CPU s/1k fires"],
    "idle": ["idle s", "CPU ms", "wake-ups", "wake-ups/s", "loop iterations", "loop sleeps"],
    "add": ["jobs/s", "µs/job", "bytes/job (tracemalloc)", "RSS bytes/job"],
}


def _headers(scenario: str) -> list[str]:
    h = list(_HEADERS[SCENARIOS[scenario].kind])
    if scenario in ("burst", "cron-heavy"):
        h.append("last start s")
    if scenario == "churn":
        h += ["churn ops/s", "op p99 µs"]
    if scenario == "pg-store":
        h += [
            "replicas",
            "fires/s achieved",
            "PostgreSQL CPU s/1k fires",
            "set-up s",
            "claims won per replica",
        ]
    return h


def _row(scenario: str, m: dict[str, Any]) -> list[str]:
    kind = SCENARIOS[scenario].kind
    if kind == "fire":
        return _fire_row(m, scenario)
    if kind == "idle":
        return [
            _f(m["idle_s"], "{:.1f}"),
            _f(m["cpu_s"] * 1000, "{:.1f}"),
            str(m["wakeups"]),
            _f(m["wakeups_per_s"], "{:.2f}"),
            _f(m.get("loop_iterations"), "{}"),
            _f(m.get("loop_sleeps"), "{}"),
        ]
    return [
        _f(m["add_rate_per_s"], "{:,.0f}"),
        _f(m["add_us_per_job"], "{:.2f}"),
        _f(m["bytes_per_job"], "{:,.0f}"),
        _f(m.get("rss_bytes_per_job"), "{:,.0f}"),
    ]


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
        f"Settings: N = {', '.join(f'{n:,}' for n in st['n'])}; steady/churn "
        f"{st['duration_s']:g} s; idle {st['idle_duration_s']:g} s; late fires count up to "
        f"{st['drain_s']:g} s after the last planned one"
        + (" (**--quick: a smoke run, the numbers mean nothing**)" if st["quick"] else "")
        + ".",
        "Lateness = the body's monotonic start time minus the planned fire time; every engine "
        "runs the same coroutine body. CPU = user + system seconds of the whole process over "
        "the measured window. Wake-ups = voluntary context switches.",
        "",
    ]
    loads = [
        x
        for r in report["runs"]
        for x in (r.get("metrics") or {}).get("loadavg_1m") or []
        if x is not None
    ]
    if loads:
        busy = max(loads) > 0.5 * (mi["cores"] or 1)
        lines += [
            f"1-minute load average around the runs: {min(loads):.2f}-{max(loads):.2f}"
            + (
                " (**the machine was busy with other work: lateness figures are noisy**)"
                if busy
                else ""
            )
            + ".",
            "",
        ]
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
        headers = _headers(scenario)
        rows = []
        for r in these:
            head = [r["engine"], f"{r['n']:,}"]
            m = r.get("metrics") or {}
            if r["status"] == "ok":
                rows.append(
                    [*head, *_row(scenario, m), _f(m.get("peak_rss_bytes", 0) / MB, "{:.0f}")]
                )
            else:
                rows.append(
                    [
                        *head,
                        f"**{r['status'].upper()}**: {r.get('reason', '')}",
                        *([""] * len(headers)),
                    ]
                )
        lines += _table(["engine", "N", *headers, "peak RSS MB"], rows)
        lines.append("")
    targets = report["targets"]
    lines += ["## Targets (issue 6)", ""]
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
    lines += ["", "How each target is read:", ""]
    lines += _bullets(TARGETS_DOC or "")
    notes = [(r, n) for r in runs for n in (r.get("metrics") or {}).get("notes", [])]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {r['scenario']} N={r['n']:,} {r['engine']}: {n}" for r, n in notes]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: Path) -> str:
    """Compute targets, write ``results.json``, ``results.md`` and the plots into ``out``;
    return the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    report["targets"] = compute_targets(report["runs"])
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
