"""The failures list (filtered by job) and one failure's page, messages and tracebacks
redacted (bodies only; :mod:`kernel.admin.console._app` serves them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kernel.failures import FailureRecord
from kernel.redaction import redact

from ._format import duration
from ._page import ConsoleRequest
from .html import Markup, h, join

__all__ = ("failure_body", "failures_body")

_MESSAGE_CHARS = 160


def _first_line(text: str) -> str:
    line = next((part for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= _MESSAGE_CHARS else line[:_MESSAGE_CHARS] + "…"


def _filters(ctx: ConsoleRequest, job_ids: Iterable[str], current: str | None) -> Markup:
    links = [h("a", {"href": ctx.url("failures"),
                     "aria-current": "true" if current is None else None}, "All jobs")]
    links.extend(
        h("a", {"href": ctx.url("failures", job=job_id),
                "aria-current": "true" if job_id == current else None}, job_id)
        for job_id in sorted(set(job_ids))
    )
    return h("nav", {"class": "filters", "aria-label": "Filter by job"},
             h("span", {"class": "muted"}, "Job:"), *links)


def failures_body(
    ctx: ConsoleRequest,
    records: Sequence[FailureRecord],
    job_ids: Iterable[str],
    current: str | None,
    limit: int,
) -> Markup:
    """The newest ``limit`` records (of job ``current``), with links to filter by job."""
    if not records:
        empty = f"No failed runs of {current} are recorded." if current else (
            "No failed runs are recorded."
        )
        return join(_filters(ctx, job_ids, current), h("p", {}, empty))
    rows = [
        h(
            "tr", {"data-failure": r.id},
            h("td", {"data-label": "Started"}, ctx.when(r.started_at)),
            h("td", {"data-label": "Job"}, h("a", {"href": ctx.url("jobs", r.job_id)}, r.job_id)),
            h("td", {"data-label": "Error"},
              h("a", {"href": ctx.url("failures", r.id), "class": "failure-link"},
                h("strong", {}, r.exc_type), ": ", _first_line(redact(r.message)))),
            h("td", {"data-label": "Duration"},
              duration(r.duration), " (timed out)" if r.timed_out else ""),
            h("td", {"data-label": "Attempt"}, str(r.attempt)),
            h("td", {"data-label": "Retries"}, _retries_summary(r)),
        )
        for r in records
    ]
    head = h("thead", {}, h("tr", {}, *(
        h("th", {"scope": "col"}, t)
        for t in ("Started", "Job", "Error", "Duration", "Attempt", "Retries")
    )))
    more = None
    if len(records) >= limit:
        more = h("p", {"class": "muted"}, f"Showing the newest {limit} records.")
    return join(
        _filters(ctx, job_ids, current),
        h("table", {"class": "grid failures"}, head, h("tbody", {}, *rows)),
        more,
    )


def _retries_summary(record: FailureRecord) -> Markup | str:
    if not record.retries:
        return "—"
    last = record.retries[-1]
    return f"{len(record.retries)} (last {last.outcome})"


def failure_body(ctx: ConsoleRequest, record: FailureRecord, job_exists: bool) -> Markup:
    """One record: what ran, when, the redacted message and traceback, its retries, and
    the retry button."""
    facts = [
        ("Job", h("a", {"href": ctx.url("jobs", record.job_id)}, record.job_id)
         if job_exists else join(record.job_id, " (removed)")),
        ("Run", h("code", {}, record.run_id)),
        ("Scheduled", ctx.when(record.scheduled_at) if record.scheduled_at else "manual run"),
        ("Started", ctx.when(record.started_at)),
        ("Duration", duration(record.duration) + (" (timed out)" if record.timed_out else "")),
        ("Attempt", str(record.attempt)),
    ]
    if record.retry_of:
        facts.append(("Retry of", h("a", {"href": ctx.url("failures", record.retry_of)},
                                    record.retry_of)))
    retries = None
    if record.retries:
        retries = join(h("h2", {}, "Retries"), h("ul", {"class": "retries"}, *(
            h("li", {}, ctx.when(a.started_at), " ", h("code", {}, a.run_id), ": ", a.outcome,
              " " if a.failure_id else "",
              h("a", {"href": ctx.url("failures", a.failure_id)}, "its record")
              if a.failure_id else None)
            for a in record.retries
        )))
    if not ctx.signed_in:
        action = None
    elif job_exists:
        action = h("div", {"class": "actions"},
                   ctx.form(ctx.url("failures", record.id, "retry"), "Retry", css="primary",
                            title="Run the failed call again with the same arguments"))
    else:
        action = h("p", {"class": "muted"}, "The job no longer exists, so it cannot be retried.")
    return join(
        h("dl", {"class": "facts"}, *(join(h("dt", {}, k), h("dd", {}, v)) for k, v in facts)),
        action,
        h("h2", {}, "Error"),
        h("p", {"class": "error-text"}, h("strong", {}, record.exc_type), ": ",
          redact(record.message)),
        h("h2", {}, "Traceback"),
        h("pre", {"class": "traceback", "tabindex": "0"}, redact(record.traceback)),
        retries,
    )
