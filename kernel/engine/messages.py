"""The messages a job actor handles (:mod:`.job_actor`), as data.

A message to an idle actor is handled at once, so these values are only built when the
actor is busy and the message has to wait in its mailbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

__all__ = ("CatchUp", "Change", "ChangeKind", "Fire", "Message", "Retry", "RunFinished")

ChangeKind = Literal["started", "added", "replaced", "superseded", "paused", "resumed",
                     "rescheduled", "removed", "unparked"]
"""``started``: scheduled as the kernel starts (reported as added); ``superseded``:
replaced by a new job under the same id (no event: the new one reports ``replaced``);
``unparked``: the replicas changed, and a job parked because another replica fired it
is scheduled again from now (no event)."""


class Fire(msgspec.Struct, frozen=True):
    """The dispatcher's timer reached the job's deadline."""

    now: float  # monotonic time of the tick


class Change(msgspec.Struct, frozen=True):
    """The public API changed the job (its definition fields are already written)."""

    kind: ChangeKind


class RunFinished(msgspec.Struct, frozen=True):
    """The body of one of the job's runs ended."""


class Retry(msgspec.Struct, frozen=True):
    """A failed attempt's next attempt is due (when, the policy said)."""

    scheduled_at: datetime | None
    attempt: int
    retry_of: str  # the failure record of the first attempt


class CatchUp(msgspec.Struct, frozen=True):
    """Scheduled times that fell while no process ran the job."""

    times: tuple[datetime, ...]  # oldest first


Message = Fire | Change | RunFinished | Retry | CatchUp
