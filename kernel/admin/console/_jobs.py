"""The jobs list and a job's page (bodies only; :mod:`kernel.admin.console._app` serves them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ._chart import run_chart
from ._format import duration, seconds
from ._page import ConsoleRequest
from .history import RunEntry, RunHistory, percentile
from .html import Markup, h, join

if TYPE_CHECKING:
    from kernel.http import JobView

__all__ = ("job_actions", "job_body", "jobs_body", "remove_body", "states_of", "trigger_words")

_OUTCOME_CSS = {
    "succeeded": "ok",
    "running": "running",
    "failed": "bad",
    "timed out": "bad",
    "missed": "warn",
    "skipped": "muted",
}


def states_of(job: JobView) -> tuple[str, ...]:
    """``scheduled`` or ``paused``, and ``running`` while a run is going (a job paused
    during a run is both)."""
    first = "paused" if job.paused else "scheduled"
    if not job.running:
        return (first,)
    return ("paused", "running") if job.paused else ("running",)


def _states(job: JobView) -> Markup:
    return join(*(_badge(state, state) for state in states_of(job)))


def trigger_words(trigger: object) -> tuple[str, Markup | None]:
    """The trigger in words (``cron explain``'s text for a cron) and, for a cron, its
    expression as written."""
    describe = getattr(trigger, "describe", None)
    words = describe() if callable(describe) else str(trigger)
    expression = getattr(trigger, "expression", None)
    written = (
        h("div", {"class": "muted small mono"}, expression)
        if isinstance(expression, str) else None
    )
    return str(words), written


def _badge(text: str, css: str) -> Markup:
    return h("span", {"class": f"badge {css}"}, text)


def _outcome(entry: RunEntry | None) -> Markup:
    if entry is None:
        return h("span", {"class": "muted"}, "no run yet")
    detail = f" ({entry.detail})" if entry.detail and entry.outcome != "succeeded" else ""
    return _badge(f"{entry.outcome}{detail}", _OUTCOME_CSS.get(entry.outcome, "muted"))


def job_actions(ctx: ConsoleRequest, job: JobView, back: str) -> Markup:
    """Pause or resume, run now, remove (on its own confirmation page)."""
    if not ctx.signed_in:
        return Markup("")
    hidden = {"next": back}
    toggle = (
        ctx.form(ctx.url("jobs", job.id, "resume"), "Resume", hidden=hidden,
                 title=f"Resume {job.id}")
        if job.paused
        else ctx.form(ctx.url("jobs", job.id, "pause"), "Pause", hidden=hidden,
                      title=f"Pause {job.id}")
    )
    return h(
        "div", {"class": "actions"},
        toggle,
        ctx.form(ctx.url("jobs", job.id, "run"), "Run now", css="primary", hidden=hidden,
                 title=f"Run {job.id} now"),
        h("a", {"class": "button danger", "href": ctx.url("jobs", job.id, "remove"),
                "title": f"Remove {job.id}"}, "Remove…"),
    )


def _p99(history: RunHistory, job_id: str) -> Markup:
    values = history.lateness(job_id)
    value = percentile(values, 99)
    if value is None:
        return h("span", {"class": "muted"}, "—")
    return h("span", {"title": f"99th percentile of the last {len(values)} scheduled runs"},
             seconds(value))


def jobs_body(ctx: ConsoleRequest, jobs: Sequence[JobView], history: RunHistory) -> Markup:
    """Every job: trigger in words, next run, state, last run, p99 lateness, actions."""
    if not jobs:
        return h("p", {}, "No jobs are registered.")
    rows = []
    for job in sorted(jobs, key=lambda j: j.id):
        words, written = trigger_words(job.trigger)
        last = history.last(job.id)
        name = h("div", {"class": "muted small"}, job.name) if job.name != job.id else None
        rows.append(h(
            "tr", {"data-job": job.id},
            h("td", {"data-label": "Job"},
              h("a", {"href": ctx.url("jobs", job.id), "class": "job-id"}, job.id), name),
            h("td", {"data-label": "Trigger"}, words, written),
            h("td", {"data-label": "Next run"},
              ctx.when(job.next_run_time) if job.next_run_time else h("span", {"class": "muted"},
                                                                       "—")),
            h("td", {"data-label": "State"}, _states(job)),
            h("td", {"data-label": "Last run"}, _outcome(last),
              h("div", {"class": "small"}, duration(last.duration)) if last else None),
            h("td", {"data-label": "p99 lateness"}, _p99(history, job.id)),
            h("td", {"data-label": "Actions"}, job_actions(ctx, job, ctx.base)),
        ))
    head = h("thead", {}, h("tr", {}, *(
        h("th", {"scope": "col"}, text)
        for text in ("Job", "Trigger", "Next run", "State", "Last run", "p99 lateness", "Actions")
    )))
    note = None
    if not ctx.signed_in and ctx.can_sign_in:
        note = h("p", {"class": "muted"},
                 h("a", {"href": ctx.url("login", next=ctx.base)}, "Sign in"),
                 " to pause, resume, run or remove jobs.")
    return join(
        h("table", {"class": "grid jobs", "data-live": "jobs"}, head, h("tbody", {}, *rows)),
        note,
    )


def _runs_table(
    ctx: ConsoleRequest, entries: Sequence[RunEntry], failures: Mapping[str, str]
) -> Markup:
    rows = []
    for entry in reversed(entries):
        failure = failures.get(entry.run_id or "")
        outcome = _outcome(entry)
        if failure is not None:
            outcome = join(outcome, " ", h("a", {"href": ctx.url("failures", failure)},
                                           "details"))
        kind = "manual" if entry.manual else ""
        if entry.retry_of:
            kind = "retry"
        rows.append(h(
            "tr", {"data-run": entry.run_id or ""},
            h("td", {"data-label": "Scheduled"},
              ctx.when(entry.scheduled_at) if entry.scheduled_at else
              h("span", {"class": "muted"}, kind or "—")),
            h("td", {"data-label": "Started"}, ctx.when(entry.started_at)),
            h("td", {"data-label": "Duration"}, duration(entry.duration)),
            h("td", {"data-label": "Outcome"}, outcome),
            h("td", {"data-label": "Lateness"}, seconds(entry.lateness)),
        ))
    head = h("thead", {}, h("tr", {}, *(
        h("th", {"scope": "col"}, t)
        for t in ("Scheduled", "Started", "Duration", "Outcome", "Lateness")
    )))
    return h("table", {"class": "grid runs"}, head, h("tbody", {}, *rows))


def _options(job: JobView) -> str:
    grace = "none" if job.misfire_grace_time is None else duration(job.misfire_grace_time)
    timeout = "none" if job.timeout is None else duration(job.timeout)
    return (
        f"coalesce {'on' if job.coalesce else 'off'}, max_instances {job.max_instances}, "
        f"misfire grace {grace}, timeout {timeout}"
    )


def job_body(
    ctx: ConsoleRequest,
    job: JobView,
    history: RunHistory,
    failures: Mapping[str, str],
) -> Markup:
    """A job's settings, actions, chart and recent runs (``failures``: run id -> record
    id, for links to the failed runs' records)."""
    words, written = trigger_words(job.trigger)
    facts: list[tuple[str, object]] = [] if job.name == job.id else [("Name", job.name)]
    facts += [
        ("Trigger", join(words, written)),
        ("Next run", ctx.when(job.next_run_time) if job.next_run_time else "—"),
        ("State", _states(job)),
        ("p99 lateness", _p99(history, job.id)),
        ("Function", h("code", {}, job.func_ref)),
        ("Options", _options(job)),
    ]
    entries = history.runs(job.id)
    runs: Markup
    if entries:
        runs = join(
            run_chart(entries, f"Duration and lateness of the last {len(entries)} runs of "
                               f"{job.id} (oldest left)"),
            _runs_table(ctx, entries, failures),
        )
    else:
        runs = h("p", {"class": "muted"},
                 "No runs recorded since the service started (the console keeps the last "
                 f"{history.size} runs of each job in memory).")
    return join(
        h("dl", {"class": "facts"}, *(join(h("dt", {}, k), h("dd", {}, v)) for k, v in facts)),
        job_actions(ctx, job, ctx.url("jobs", job.id)),
        h("h2", {}, "Recent runs"),
        h("div", {"data-live": "runs"}, runs),
        h("p", {}, h("a", {"href": ctx.url("failures", job=job.id)},
                     f"Failures of {job.id}")),
    )


def remove_body(ctx: ConsoleRequest, job: JobView) -> Markup:
    """The confirmation asked before removing a job."""
    return join(
        h("p", {}, "Remove job ", h("strong", {}, job.id),
          "? It is no longer scheduled and leaves this list; a run already going "
          "finishes. Adding it back is up to the application that registered it."),
        h("div", {"class": "actions"},
          ctx.form(ctx.url("jobs", job.id, "remove"), f"Remove {job.id}", css="danger"),
          h("a", {"class": "button", "href": ctx.url("jobs", job.id)}, "Cancel")),
    )
