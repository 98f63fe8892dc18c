"""The admin API's routes as :class:`~kernel.openapi.Operation` s: each handler with every
answer it gives and the model that answer is encoded from (served by :mod:`kernel.http`,
documented at ``/openapi.json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec

from kernel.admin.api_models import (
    ErrorBody,
    FailureList,
    Health,
    JobInfo,
    JobList,
    JobRemovedAnswer,
    NoOptions,
    ReadyReport,
    RetryAccepted,
    RunAccepted,
)
from kernel.admin.openapi import Answer, Operation, Query
from kernel.observe.failures import FailureRecord

if TYPE_CHECKING:
    from kernel.admin._handlers import Admin

from kernel.admin._handlers import _MAX_LIMIT

_BAD_REQUEST = Answer("a query parameter this endpoint does not take, or a bad value", ErrorBody)
_BAD_BODY = Answer("a body other than nothing or {}", ErrorBody)
_NO_TOKEN = Answer("missing or wrong bearer token", ErrorBody)
_NOT_CONFIGURED = Answer("no admin token is configured; the message says how", ErrorBody)
_TOO_LARGE = Answer("the body is larger than the server accepts", ErrorBody)
_NO_JOB = Answer("no job with this id", ErrorBody)
_REFUSED = Answer("the kernel refused: not running, or the job is at max_instances", ErrorBody)
_JOB_ID = {"job_id": "the job's id"}
_TOKEN_ANSWERS = {401: _NO_TOKEN, 403: _NOT_CONFIGURED}
_MUTATING = {400: _BAD_BODY, 404: _NO_JOB, 409: _REFUSED, 413: _TOO_LARGE, **_TOKEN_ANSWERS}


def admin_operations(admin: Admin, *, protect_jobs: bool) -> list[Operation]:
    """The routes of ``admin`` (``protect_jobs``: job listings need the token too)."""
    read_jobs = _TOKEN_ANSWERS if protect_jobs else {}
    return [
        Operation("GET", "/healthz", admin.healthz, "The process answers",
                  {200: Answer("always", Health)}, tags=("health",)),
        Operation("GET", "/readyz", admin.readyz, "Whether the scheduler is ready", {
            200: Answer("ready: every check passed", ReadyReport),
            503: Answer("not ready: the failed checks say why", ReadyReport),
        }, tags=("health",)),
        Operation("GET", "/metrics", admin.metrics_text, "Prometheus metrics", {
            200: Answer("the Prometheus text format", media_type="text/plain"),
            404: Answer("metrics are not enabled", ErrorBody),
        }, tags=("health",)),
        Operation("GET", "/jobs", admin.list_jobs, "List the jobs",
                  {200: Answer("every job", JobList), 400: _BAD_REQUEST, **read_jobs},
                  bearer=protect_jobs, tags=("jobs",)),
        Operation("GET", "/jobs/{job_id}", admin.get_job, "One job",
                  {200: Answer("the job", JobInfo), 400: _BAD_REQUEST, 404: _NO_JOB,
                   **read_jobs},
                  bearer=protect_jobs, tags=("jobs",), path_params=_JOB_ID),
        Operation("DELETE", "/jobs/{job_id}", admin.remove_job, "Remove a job",
                  {200: Answer("removed", JobRemovedAnswer), **_MUTATING},
                  bearer=True, tags=("jobs",), path_params=_JOB_ID),
        Operation("POST", "/jobs/{job_id}/run", admin.run_job, "Run a job now",
                  {202: Answer("the run started; follow it by run_id", RunAccepted),
                   **_MUTATING},
                  body=NoOptions, bearer=True, tags=("jobs",), path_params=_JOB_ID),
        Operation("POST", "/jobs/{job_id}/pause", admin.pause_job, "Pause a job",
                  {200: Answer("the job, paused", JobInfo), **_MUTATING},
                  body=NoOptions, bearer=True, tags=("jobs",), path_params=_JOB_ID),
        Operation("POST", "/jobs/{job_id}/resume", admin.resume_job, "Resume a paused job",
                  {200: Answer("the job, scheduled again", JobInfo), **_MUTATING},
                  body=NoOptions, bearer=True, tags=("jobs",), path_params=_JOB_ID),
        Operation("GET", "/failures", admin.list_failures, "Failed runs, newest first",
                  {200: Answer("the records (secrets masked)", FailureList),
                   400: _BAD_REQUEST, **_TOKEN_ANSWERS},
                  query=(
                      Query("job_id", Annotated[str, msgspec.Meta(min_length=1)],
                            "only this job's records"),
                      Query("limit", Annotated[int, msgspec.Meta(ge=1, le=_MAX_LIMIT)],
                            "at most this many records (default 100)"),
                  ),
                  bearer=True, tags=("failures",)),
        Operation("GET", "/failures/{failure_id}", admin.get_failure, "One failed run",
                  {200: Answer("the record (secrets masked)", FailureRecord),
                   400: _BAD_REQUEST, 404: Answer("no such record", ErrorBody),
                   **_TOKEN_ANSWERS},
                  bearer=True, tags=("failures",),
                  path_params={"failure_id": "the record's id"}),
        Operation("POST", "/failures/{failure_id}/retry", admin.retry_failure,
                  "Run a failed call again with the same arguments",
                  {202: Answer("the retry started, linked to the record", RetryAccepted),
                   400: _BAD_BODY, 404: Answer("no such record", ErrorBody),
                   409: Answer("the job is gone, or the kernel refused", ErrorBody),
                   413: _TOO_LARGE, **_TOKEN_ANSWERS},
                  body=NoOptions, bearer=True, tags=("failures",),
                  path_params={"failure_id": "the record's id"}),
    ]
