"""``jobs ...`` and ``failures ...``: a running service's jobs and failure records, through
its admin HTTP API."""

from __future__ import annotations

import argparse
import json
import os
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ._client import DEFAULT_URL, AdminClient
from ._settings import admin_endpoint
from ._table import cell, table

__all__ = ("register",)

Handler = Callable[[argparse.Namespace], int]


def _api_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("admin API")
    group.add_argument(
        "--url",
        help="the service's admin API (default: LARK_SCHEDULER_URL, else the config's "
        f"[http] host and port, else {DEFAULT_URL})",
    )
    group.add_argument(
        "--token",
        help="the admin bearer token (default: LARK_SCHEDULER_ADMIN_TOKEN, else the config's "
        "http.admin_token[_file]); prefer the environment variable: a flag shows in 'ps'",
    )
    group.add_argument(
        "--config", metavar="FILE",
        help="the service's config file, for its URL and token (default: LARK_SCHEDULER_CONFIG)",
    )
    group.add_argument("--json", action="store_true", help="print the API's JSON answer")
    return parent


def client(args: argparse.Namespace) -> AdminClient:
    """The API client for ``args``: flags, then environment, then the config file."""
    url, token = args.url, args.token
    if url is None:
        url = os.environ.get("LARK_SCHEDULER_URL") or None
    if token is None:
        token = os.environ.get("LARK_SCHEDULER_ADMIN_TOKEN") or None
    if url is None or token is None:
        config_url, config_token = admin_endpoint(args.config)
        url = url or config_url
        token = token or config_token
    return AdminClient(url, token)


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _print_json(answer: Any) -> None:
    print(json.dumps(answer, indent=2, ensure_ascii=False))


def _when(value: object) -> object:
    """An ISO time from the API as ``YYYY-MM-DD HH:MM:SS`` (UTC); other values unchanged."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return value


def _state(job: dict[str, Any]) -> str:
    if job.get("running"):
        return f"running ({job['running']})"
    return "paused" if job.get("paused") else "scheduled"


def _show_job(job: dict[str, Any]) -> None:
    fields = (
        "id", "name", "trigger", "next_run_time", "paused", "running", "func_ref",
        "coalesce", "max_instances", "misfire_grace_time", "timeout",
    )
    width = max(len(f) for f in fields)
    for name in fields:
        value = _when(job.get(name)) if name == "next_run_time" else job.get(name)
        print(f"{name.ljust(width)}  {cell(value)}")


# -- jobs ------------------------------------------------------------------------------------


def jobs_list(args: argparse.Namespace) -> int:
    answer = client(args).get("/jobs")
    if args.json:
        _print_json(answer)
        return 0
    jobs = answer["jobs"]
    if not jobs:
        print("no jobs are registered")
        return 0
    rows = [
        (j["id"], _when(j.get("next_run_time")), j["trigger"], _state(j), j["func_ref"])
        for j in jobs
    ]
    print(table(("ID", "NEXT RUN (UTC)", "TRIGGER", "STATE", "FUNCTION"), rows))
    return 0


def jobs_show(args: argparse.Namespace) -> int:
    answer = client(args).get(f"/jobs/{_quote(args.job_id)}")
    _print_json(answer) if args.json else _show_job(answer)
    return 0


def jobs_run(args: argparse.Namespace) -> int:
    answer = client(args).post(f"/jobs/{_quote(args.job_id)}/run")
    if args.json:
        _print_json(answer)
    else:
        print(f"started run {answer['run_id']} of job {answer['job_id']}")
    return 0


def _change(action: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        api = client(args)
        path = f"/jobs/{_quote(args.job_id)}"
        answer = api.delete(path) if action == "remove" else api.post(f"{path}/{action}")
        if args.json:
            _print_json(answer)
        elif action == "remove":
            print(f"job {args.job_id} removed")
        else:
            next_run = cell(_when(answer.get("next_run_time")))
            print(f"job {answer['id']} {action}d (next run: {next_run})")
        return 0

    return handler


# -- failures --------------------------------------------------------------------------------


def _error_text(record: dict[str, Any], limit: int = 60) -> str:
    text = f"{record['exc_type']}: {record['message']}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failures_list(args: argparse.Namespace) -> int:
    answer = client(args).get("/failures", job_id=args.job, limit=args.limit)
    if args.json:
        _print_json(answer)
        return 0
    records = answer["failures"]
    if not records:
        print("no failures recorded" + (f" for job {args.job}" if args.job else ""))
        return 0
    rows = [
        (
            r["id"], r["job_id"], _when(r["started_at"]), r["duration"],
            len(r.get("retries", ())), _error_text(r),
        )
        for r in records
    ]
    print(table(("ID", "JOB", "STARTED (UTC)", "SECONDS", "RETRIES", "ERROR"), rows))
    return 0


def failures_show(args: argparse.Namespace) -> int:
    record = client(args).get(f"/failures/{_quote(args.failure_id)}")
    if args.json:
        _print_json(record)
        return 0
    for name in ("id", "job_id", "run_id", "scheduled_at", "started_at", "duration", "attempt"):
        value = record.get(name)
        print(f"{name.ljust(12)}  {cell(_when(value) if name.endswith('_at') else value)}")
    print(f"{'error'.ljust(12)}  {record['exc_type']}: {record['message']}")
    for retry in record.get("retries", ()):
        print(f"{'retry'.ljust(12)}  run {retry['run_id']}: {retry['outcome']}")
    print(record["traceback"].rstrip())
    return 0


def failures_retry(args: argparse.Namespace) -> int:
    answer = client(args).post(f"/failures/{_quote(args.failure_id)}/retry")
    if args.json:
        _print_json(answer)
    else:
        print(
            f"started retry run {answer['run_id']} of job {answer['job_id']} "
            f"(failure {answer['failure_id']})"
        )
    return 0


# -- parser ----------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``jobs`` and ``failures`` to the top-level parser."""
    api = _api_options()
    jobs = commands.add_parser(
        "jobs", help="list and control a running service's jobs",
        description="List and control the jobs of a running service (its admin HTTP API).",
    )
    verbs = jobs.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    listing = verbs.add_parser("list", parents=[api], help="every job, its next run and state")
    listing.set_defaults(func=jobs_list)
    for name, handler, summary in (
        ("show", jobs_show, "one job's options and next run"),
        ("run", jobs_run, "run a job now, outside its schedule (needs the token)"),
        ("pause", _change("pause"), "stop a job firing until resumed (needs the token)"),
        ("resume", _change("resume"), "let a paused job fire again (needs the token)"),
        ("remove", _change("remove"), "remove a job until the service restarts (needs the token)"),
    ):
        verb = verbs.add_parser(name, parents=[api], help=summary, description=summary)
        verb.add_argument("job_id", metavar="ID", help="the job's id (see 'jobs list')")
        verb.set_defaults(func=handler)

    failures = commands.add_parser(
        "failures", help="failed runs of a running service, and retrying them",
        description="Failure records of a running service (its admin HTTP API; needs the token).",
    )
    verbs = failures.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    listing = verbs.add_parser("list", parents=[api], help="recorded failures, newest first")
    listing.add_argument("--job", metavar="ID", help="only this job's failures")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    listing.set_defaults(func=failures_list)
    show = verbs.add_parser("show", parents=[api], help="one failure with its traceback")
    show.add_argument("failure_id", metavar="ID", help="the failure's id (see 'failures list')")
    show.set_defaults(func=failures_show)
    retry = verbs.add_parser(
        "retry", parents=[api], help="re-run a failed call with the same arguments"
    )
    retry.add_argument("failure_id", metavar="ID", help="the failure's id (see 'failures list')")
    retry.set_defaults(func=failures_retry)
