"""PNG plots: lateness CDF per engine; CPU per fire and bytes per job against N."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ("write_plots",)

_FIRE = ("steady", "burst", "churn", "cron-heavy")
_ENGINE_ORDER = (
    "floor",
    "floor-uvloop",
    "kernel",
    "kernel-uvloop",
    "apscheduler3",
    "apscheduler4",
    "aiocron",
)


def _color(engine: str) -> str:
    """The same colour for an engine in every panel."""
    i = _ENGINE_ORDER.index(engine) if engine in _ENGINE_ORDER else len(_ENGINE_ORDER)
    return f"C{i % 10}"


def _ok(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["runs"] if r["status"] == "ok"]


def _cdf(report: dict[str, Any], out: Path) -> Path | None:
    runs = [
        r for r in _ok(report) if r["scenario"] in _FIRE and r["metrics"].get("lateness_cdf_ms")
    ]
    scenarios = [s for s in _FIRE if any(r["scenario"] == s for r in runs)]
    ns = sorted({r["n"] for r in runs})
    if not runs:
        return None
    fig, axes = plt.subplots(
        len(scenarios), len(ns), squeeze=False, figsize=(4.5 * len(ns), 3.2 * len(scenarios))
    )
    for i, s in enumerate(scenarios):
        for j, n in enumerate(ns):
            ax = axes[i][j]
            for r in runs:
                if r["scenario"] == s and r["n"] == n:
                    pts = r["metrics"]["lateness_cdf_ms"]
                    ax.plot(
                        [p[1] for p in pts],
                        [p[0] for p in pts],
                        label=r["engine"],
                        color=_color(r["engine"]),
                    )
            ax.set_xscale("symlog", linthresh=0.1)
            ax.set_title(f"{s}, N={n:,}", fontsize=9)
            ax.set_xlabel("lateness (ms)", fontsize=8)
            ax.set_ylabel("fraction started", fontsize=8)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "lateness_cdf.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _against_n(
    report: dict[str, Any], out: Path, name: str, panels: list[tuple[str, str, float]], ylabel: str
) -> Path | None:
    runs = _ok(report)
    if not any(r["scenario"] == s for r in runs for s, _, _ in panels):
        return None
    fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(5.5 * len(panels), 4))
    for ax, (scenario, key, scale) in zip(axes[0], panels, strict=True):
        engines = sorted({r["engine"] for r in runs if r["scenario"] == scenario})
        for e in engines:
            pts = sorted(
                (r["n"], r["metrics"].get(key))
                for r in runs
                if r["scenario"] == scenario
                and r["engine"] == e
                and r["metrics"].get(key) is not None
            )
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] * scale for p in pts],
                    marker="o",
                    label=e,
                    color=_color(e),
                )
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_title(scenario, fontsize=9)
        ax.set_xlabel("N (jobs)", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(report: dict[str, Any], out: Path) -> list[str]:
    """Write the PNGs that have data; return their file names."""
    paths = [
        _cdf(report, out),
        # CPU-s per 1k fires x 1000 = CPU-µs per fire.
        _against_n(
            report,
            out,
            "cpu_per_fire.png",
            [("steady", "cpu_s_per_1k_fires", 1000.0), ("churn", "cpu_s_per_1k_fires", 1000.0)],
            "CPU µs per fire",
        ),
        _against_n(
            report,
            out,
            "bytes_per_job.png",
            [
                ("add-interval", "bytes_per_job", 1.0),
                ("add-cron-same", "bytes_per_job", 1.0),
                ("add-cron-distinct", "bytes_per_job", 1.0),
            ],
            "bytes per registered job",
        ),
    ]
    return [p.name for p in paths if p is not None]
