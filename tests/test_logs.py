"""Logs: the text and JSON-lines formats, one line per run outcome, and secret redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from kernel.events import (
    Event,
    JobAdded,
    JobModified,
    JobRemoved,
    RunFailed,
    RunMissed,
    RunSkipped,
    RunStarted,
    RunSucceeded,
)
from kernel.logs import RedactingFilter, RunLogger, configure_logging
from kernel.redaction import redact

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "actors/sync.py", line 12, in sync_user_info\n'
    "    raise RuntimeError('upstream 503')\n"
    "RuntimeError: upstream 503\n"
)
STORY: list[Event] = [
    JobAdded(job_id="sync_user_info", scheduled_at=T0),
    RunStarted(
        job_id="sync_user_info", scheduled_at=T0, run_id="r1", started_at=T0, lateness=0.0021
    ),
    RunSucceeded(
        job_id="sync_user_info", scheduled_at=T0, run_id="r1", started_at=T0, duration=1.25
    ),
    RunStarted(job_id="health_check", scheduled_at=T0, run_id="r2", started_at=T0, lateness=0.0),
    RunFailed(
        job_id="sync_user_info",
        scheduled_at=T0,
        run_id="r3",
        started_at=T0,
        duration=0.5,
        exc_type="RuntimeError",
        message="upstream 503",
        traceback=TRACEBACK,
    ),
    RunMissed(job_id="sync_user_info", scheduled_at=T0, lateness=75.0),
    RunSkipped(job_id="sync_user_info", scheduled_at=T0, reason="max_instances"),
    RunSkipped(job_id="sync_user_info", scheduled_at=T0, reason="coalesced"),
    RunSucceeded(
        job_id="sync_user_info",
        scheduled_at=None,
        run_id="r4",
        started_at=T0,
        duration=0.25,
        manual=True,
        retry_of="f1",
    ),
    JobModified(job_id="sync_user_info", scheduled_at=None, change="paused"),
    JobRemoved(job_id="sync_user_info", scheduled_at=None),
]
WHEN = "2026-11-29T01:00:00+00:00"


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def tell(*events: Event) -> None:
    listener = RunLogger()
    for event in events:
        listener(event)


def test_text_lines_tell_the_whole_story(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "text", out)
    tell(*STORY)
    text = out.getvalue()
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", re.MULTILINE)
    assert len(stamp.findall(text)) == len(STORY)
    assert stamp.sub("", text).splitlines() == [
        f"INFO    scheduler.job: Added job sync_user_info (next run at {WHEN})",
        "DEBUG   scheduler.run: Scheduled task sync_user_info started 0.002s late "
        f"(run_id=r1, scheduled_at={WHEN})",
        "INFO    scheduler.run: Scheduled task sync_user_info succeeded in 1.250s "
        f"(run_id=r1, scheduled_at={WHEN})",
        "DEBUG   scheduler.run: Scheduled task health_check started 0.000s late "
        f"(run_id=r2, scheduled_at={WHEN})",
        "ERROR   scheduler.run: Failed scheduled task sync_user_info after 0.500s: "
        f"RuntimeError: upstream 503 (run_id=r3, scheduled_at={WHEN})",
        *TRACEBACK.splitlines(),
        "WARNING scheduler.run: Missed scheduled task sync_user_info: it was 75.000s late, "
        f"more than misfire_grace_time allows (scheduled_at={WHEN})",
        "WARNING scheduler.run: Skipped scheduled task sync_user_info: reason=max_instances "
        f"(scheduled_at={WHEN})",
        "INFO    scheduler.run: Skipped scheduled task sync_user_info: reason=coalesced "
        f"(scheduled_at={WHEN})",
        "INFO    scheduler.run: Scheduled task sync_user_info succeeded in 0.250s "
        "(run_id=r4, scheduled_at=none, manual=true, retry_of=f1)",
        "INFO    scheduler.job: Job sync_user_info paused (next run at none)",
        "INFO    scheduler.job: Removed job sync_user_info",
    ]


def test_grep_finds_a_jobs_lines_and_a_failures_traceback(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", out)
    tell(*STORY)
    lines = out.getvalue().splitlines()
    # grep sync_user_info: every line about that job, none about another.
    job_lines = [line for line in lines if "sync_user_info" in line]
    assert sum("scheduler." in line for line in job_lines) == 9
    assert [line for line in job_lines if "scheduler." not in line] == [
        '  File "actors/sync.py", line 12, in sync_user_info'  # the traceback's frame
    ]
    assert not any("health_check" in line for line in lines)  # its start is DEBUG
    # grep scheduler: every record line
    assert sum("scheduler." in line for line in lines) == 9
    # grep -A 20 "Failed scheduled task": the header then the traceback
    at = next(i for i, line in enumerate(lines) if "Failed scheduled task" in line)
    assert lines[at + 1 : at + 5] == TRACEBACK.splitlines()


def test_json_lines_carry_structured_fields(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", out)
    tell(*STORY)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == len(STORY)
    for rec in records:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", rec.pop("ts"))
    failed = records[4]
    message = failed.pop("message")
    assert message.startswith("Failed scheduled task sync_user_info after 0.500s")
    assert message.endswith(TRACEBACK.rstrip("\n"))
    assert failed == {
        "level": "ERROR",
        "logger": "scheduler.run",
        "job_id": "sync_user_info",
        "run_id": "r3",
        "scheduled_at": WHEN,
        "outcome": "failure",
        "duration": 0.5,
        "attempt": 1,
        "manual": False,
        "retry_of": None,
        "exc_type": "RuntimeError",
        "timed_out": False,
    }
    assert {k: records[5][k] for k in ("job_id", "outcome", "lateness")} == {
        "job_id": "sync_user_info",
        "outcome": "missed",
        "lateness": 75.0,
    }
    assert {k: records[6][k] for k in ("outcome", "reason")} == {
        "outcome": "skipped",
        "reason": "max_instances",
    }
    assert [r["outcome"] for r in records if "outcome" in r] == [
        "started", "success", "started", "failure", "missed", "skipped", "skipped", "success",
    ]  # fmt: skip


def test_timeout_line(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", out)
    tell(
        RunFailed(
            job_id="slow", scheduled_at=None, run_id="r9", started_at=T0, duration=30.0,
            exc_type="TimeoutError", message="", traceback="TimeoutError\n", timed_out=True,
        )
    )  # fmt: skip
    assert (
        "Failed scheduled task slow after 30.000s: timed out (TimeoutError) "
        "(run_id=r9, scheduled_at=none)\nTimeoutError\n"
    ) in out.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("app_secret=s3cr3tValue", "app_secret=***", id="key-equals"),
        pytest.param(
            '{"app_id": "cli_a1", "app_secret": "xyz"}',
            '{"app_id": "cli_a1", "app_secret": "***"}',
            id="json",
        ),
        pytest.param("{'app_secret': 'xyz', 'n': 1}", "{'app_secret': '***', 'n': 1}", id="repr"),
        pytest.param("APP_SECRET: abc def", "APP_SECRET: *** def", id="colon-any-case"),
        pytest.param(
            "Authorization: Bearer t-g1044ghJRUIJJ5ELPE7ZEMOZMHYMYGRX",
            "Authorization: Bearer ***",
            id="bearer",
        ),
        pytest.param("bearer abc.def-ghi_jkl==", "bearer ***", id="bearer-lowercase"),
        pytest.param(
            "token t-g1044ghJRUIJJ5ELPE7ZEMOZMHYMYGRX expired", "token t-*** expired", id="tenant"
        ),
        pytest.param("user u-abcdefghijklmnopqrstuv", "user u-***", id="user-token"),
        pytest.param("ur-abcdefghijklmnopqrstuv", "ur-***", id="refresh-token"),
        pytest.param("refresh_token=ur-abcdefghijklmnopqrst", "refresh_token=***", id="refresh-kv"),
        pytest.param("password=hunter2&user=bob", "password=***&user=bob", id="query-string"),
        pytest.param("a t-shirt and a-b-c", "a t-shirt and a-b-c", id="hyphenated-words-kept"),
        pytest.param("tokens=5 secrets kept", "tokens=5 secrets kept", id="plural-words-kept"),
        pytest.param("job sync_user_info ok", "job sync_user_info ok", id="plain"),
        pytest.param("app_secret=***", "app_secret=***", id="idempotent"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(redact(text)) == expected


def test_filter_masks_messages_arguments_and_tracebacks(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", out)
    log = logging.getLogger("scheduler.test")
    log.info("calling with %s", {"app_secret": "hunter2"})
    try:
        raise ValueError("bad answer for Bearer abcdefgh12345")
    except ValueError:
        log.exception("request failed app_secret=%s", "hunter2")
    text = out.getvalue()
    assert "hunter2" not in text
    assert "abcdefgh12345" not in text
    assert "calling with {'app_secret': '***'}" in text
    assert "ValueError: bad answer for Bearer ***" in text


def test_failure_lines_are_redacted_even_without_the_filter() -> None:
    log = logging.getLogger("scheduler.unfiltered")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep()
    log.addHandler(keep)
    log.propagate = False
    try:
        RunLogger(log)(
            RunFailed(
                job_id="j", scheduled_at=None, run_id="r", started_at=T0, duration=0.1,
                exc_type="HTTPError", message="401 for app_secret=hunter2",
                traceback="HTTPError: 401 for app_secret=hunter2\n",
            )
        )  # fmt: skip
    finally:
        log.removeHandler(keep)
        log.propagate = True
    assert len(seen) == 1
    assert "hunter2" not in seen[0]
    assert "app_secret=***" in seen[0]


def test_configure_logging_replaces_its_own_handler(root_logger: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    h1 = configure_logging("INFO", "text", first)
    h2 = configure_logging("WARNING", "json", second)
    assert h1 not in root_logger.handlers
    assert h2 in root_logger.handlers
    assert root_logger.level == logging.WARNING
    assert any(isinstance(f, RedactingFilter) for f in h2.filters)
    logging.getLogger("scheduler").warning("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["message"] == "once"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"fmt": "xml"}, r"log format 'xml' is not supported; use 'text' or 'json'"),
        pytest.param({"level": "LOUD"}, r"log level 'LOUD' is not a level; use DEBUG, INFO"),
    ],
    ids=["format", "level"],
)
def test_configure_logging_refuses_bad_settings(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        configure_logging(**kwargs)  # type: ignore[arg-type]
