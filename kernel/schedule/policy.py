"""The kernel's one policy: what happens to scheduled times that are due, and to failures.

Pure: due times' lateness, a job's options and its running count in; typed decisions
out. Every path that decides a scheduled time calls it: a fire of the timer in one
process, several times due at once (a stalled loop, a wall-clock step), catch-up after
downtime and replicas (``kernel.distributed``, whose claim then confirms a run), retries
of failed and interrupted runs, and manual runs (``max_instances`` only).

The contract (design.md):

* **Coalesce.** With ``coalesce``, every due time but the latest is skipped as
  ``"coalesced"``; only the latest is decided further.
* **Misfire grace.** A time later than ``grace`` seconds is ``"missed"`` (``None``:
  however late, it runs).
* **Max instances.** A time that would start a run while ``max_instances`` runs of the
  job are going is skipped as ``"max_instances"``; each run decided here counts.
  ``max_instances=None`` leaves the limit to someone else (a claim across replicas).
* **Retry.** A failed attempt is followed by another at the time the job's
  :class:`~kernel.retry.RetryPolicy` says, until it has made ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ..retry import RetryPolicy, SupportsRandom

__all__ = ("Action", "decide", "decide_one", "retry_at")

Action = Literal["run", "missed", "coalesced", "max_instances"]
"""``run``; ``missed`` (past grace); a skip, whose reason is the action itself:
``coalesced`` or ``max_instances`` (the values of :data:`kernel.events.SkipReason`)."""


def decide_one(
    lateness: float, *, grace: float | None, max_instances: int | None, running: int
) -> Action:
    """The action for one due time, ``lateness`` seconds late (the common case)."""
    if grace is not None and lateness > grace:
        return "missed"
    if max_instances is not None and running >= max_instances:
        return "max_instances"
    return "run"


def decide(
    lateness: Sequence[float],
    *,
    coalesce: bool,
    grace: float | None,
    max_instances: int | None,
    running: int,
) -> list[Action]:
    """One action per due time; ``lateness`` in seconds, oldest first."""
    out: list[Action] = []
    last = len(lateness) - 1
    for i, late in enumerate(lateness):
        if coalesce and i < last:
            out.append("coalesced")
            continue
        action = decide_one(late, grace=grace, max_instances=max_instances, running=running)
        if action == "run":
            running += 1
        out.append(action)
    return out


def retry_at(
    policy: RetryPolicy | None, attempt: int, failed_at: float, rng: SupportsRandom
) -> float | None:
    """When (monotonic seconds) to start the attempt after failed attempt ``attempt``
    (1-based) that ended at ``failed_at``; None when no attempt follows."""
    if policy is None or not policy.should_retry(attempt):
        return None
    return failed_at + policy.delay(attempt, rng)
