"""The JSON shapes of the admin HTTP API (:mod:`kernel.http`), as frozen msgspec structs.

Every error answer is :class:`ErrorBody`: ``{"error": {"code": ..., "message": ...}}``, where
``code`` is a stable machine-readable word and ``message`` says what was wrong and how to fix it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from ..observe.failures import FailureRecord

__all__ = (
    "ErrorBody",
    "ErrorDetail",
    "FailureList",
    "Health",
    "JobInfo",
    "JobList",
    "JobRemovedAnswer",
    "ReadyCheck",
    "ReadyReport",
    "RetryAccepted",
    "RunAccepted",
)


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    """What went wrong: a stable ``code`` and a ``message`` for people."""

    code: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """The body of every 4xx/5xx answer."""

    error: ErrorDetail


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /healthz``: the process answers."""

    status: Literal["ok"] = "ok"


class ReadyCheck(msgspec.Struct, frozen=True, kw_only=True):
    """One readiness check: its name, whether it passed, and why not."""

    name: str
    ok: bool
    detail: str = ""


class ReadyReport(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /readyz`` (503 unless ``ready``); also what an extra readiness callback returns."""

    ready: bool
    checks: tuple[ReadyCheck, ...] = ()


class JobInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A registered job. Its ``args`` and ``kwargs`` are never shown: they may hold secrets."""

    id: str
    name: str
    trigger: str
    next_run_time: datetime | None
    paused: bool
    func_ref: str
    coalesce: bool
    max_instances: int
    misfire_grace_time: float | None
    timeout: float | None
    running: int


class JobList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /jobs``."""

    jobs: list[JobInfo]


class RunAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /jobs/{id}/run`` (202): the run was handed to the job; follow it by ``run_id``."""

    job_id: str
    run_id: str


class JobRemovedAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """``DELETE /jobs/{id}``."""

    job_id: str
    removed: bool = True


class FailureList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /failures``: newest first (messages and tracebacks have secrets masked)."""

    failures: list[FailureRecord]


class RetryAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /failures/{id}/retry`` (202): the retry's ``run_id``, linked to the record."""

    failure_id: str
    job_id: str
    run_id: str


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body a mutating endpoint accepts: nothing, or an empty JSON object."""
