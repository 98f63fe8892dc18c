"""What to do with the scheduled times of one job that are due at once (pure).

The contract (design.md): a time later than ``misfire_grace_time`` does not run and is
reported missed; with ``coalesce`` the earlier of several due times are skipped as
coalesced and only the latest is considered; without it, each due time within grace
runs. ``max_instances`` is applied when a run starts, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = ("Action", "decide")

Action = Literal["run", "missed", "coalesced"]


def decide(
    lateness: Sequence[float], *, coalesce: bool, grace: float | None
) -> list[Action]:
    """One action per due time; ``lateness`` is in seconds, oldest first."""
    out: list[Action] = []
    last = len(lateness) - 1
    for i, late in enumerate(lateness):
        if coalesce and i < last:
            out.append("coalesced")
        elif grace is not None and late > grace:
            out.append("missed")
        else:
            out.append("run")
    return out
