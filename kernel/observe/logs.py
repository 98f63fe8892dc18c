"""Logging for the scheduler: formats, secret redaction, and one line per run outcome.

* :func:`configure_logging` installs a handler on the root logger: text (default) or JSON
  lines, with a :class:`RedactingFilter` on it.
* :class:`RunLogger` is a kernel listener that writes a line for every run outcome, miss, skip
  and job change. Each line names the job id, so ``grep sync_user_info`` shows a job's whole
  story, and a failure is logged as ``Failed scheduled task <job_id>`` followed by its traceback,
  so ``grep -A 20 "Failed scheduled task"`` shows why.

Logger names live under ``scheduler``, so ``grep scheduler`` finds them all. The kernel itself
logs on ``scheduler.job`` each run as it runs (``Running job``, ``Failed scheduled task <id>``
with the traceback, a cancelled run) and on ``scheduler`` misfires, skips and wall-clock steps;
a :class:`RunLogger`, when attached, adds one structured line per event: run outcomes, misses
and skips on ``scheduler.run``, job changes on ``scheduler.job``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TextIO

import msgspec

from .events import (
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
from .redaction import redact

__all__ = (
    "RUN_FIELDS",
    "JsonFormatter",
    "RedactingFilter",
    "RunLogger",
    "TextFormatter",
    "configure_logging",
)

LogFormat = Literal["text", "json"]

RUN_FIELDS = (
    "job_id",
    "run_id",
    "scheduled_at",
    "outcome",
    "duration",
    "lateness",
    "reason",
    "attempt",
    "manual",
    "retry_of",
    "exc_type",
    "timed_out",
)
"""Structured fields :class:`RunLogger` puts on its records (``extra``); JSON lines carry them."""

# Marks the handler configure_logging installed, so calling it again replaces it.
_HANDLER_MARK = "_scheduler_handler"


class RedactingFilter(logging.Filter):
    """Masks secrets (:func:`kernel.redaction.redact`) in a record's message and traceback.

    Put it on a *handler*: a logger's filters do not see records propagated from child loggers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """``2026-11-29T09:00:00.123Z INFO    scheduler.run: <message>``, times in UTC."""

    @staticmethod
    def converter(secs: float | None = None, /) -> time.struct_time:
        return time.gmtime(secs)

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the
    :data:`RUN_FIELDS` a record carries, and ``exc`` (the traceback) when there is one."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        for name in RUN_FIELDS:
            if name in fields:
                out[name] = fields[name]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return self._encoder.encode(out).decode()


def configure_logging(
    level: int | str = "INFO", fmt: LogFormat = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (default: stderr).

    ``fmt`` is ``"text"`` or ``"json"`` (JSON lines). Installs one handler, with a
    :class:`RedactingFilter`, on the root logger; calling again replaces it. Returns it.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format {fmt!r} is not supported; use 'text' or 'json'")
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            raise ValueError(
                f"log level {level!r} is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
        level = resolved
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class _Listenable(Protocol):
    def add_listener(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...


def _when(value: datetime | None) -> str:
    return "none" if value is None else value.isoformat()


def _run_tail(event: RunStarted | RunSucceeded | RunFailed) -> str:
    tail = f"run_id={event.run_id}, scheduled_at={_when(event.scheduled_at)}"
    if event.manual:
        tail += ", manual=true"
    if event.attempt != 1:
        tail += f", attempt={event.attempt}"
    if event.retry_of is not None:
        tail += f", retry_of={event.retry_of}"
    return tail


def _run_extra(event: RunStarted | RunSucceeded | RunFailed, outcome: str) -> dict[str, Any]:
    return {
        "job_id": event.job_id,
        "run_id": event.run_id,
        "scheduled_at": None if event.scheduled_at is None else event.scheduled_at.isoformat(),
        "outcome": outcome,
        "attempt": event.attempt,
        "manual": event.manual,
        "retry_of": event.retry_of,
    }


class RunLogger:
    """A kernel listener that logs every run outcome, miss, skip and job change.

    Levels: run started DEBUG; succeeded INFO; failed ERROR (with the traceback); missed and
    skipped for ``max_instances`` WARNING; coalesced skips and job changes INFO.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.run_log = logger if logger is not None else logging.getLogger("scheduler.run")
        self.job_log = (
            logger.getChild("job") if logger is not None else logging.getLogger("scheduler.job")
        )
        self._dispatch: dict[type[Any], Callable[[Any], None]] = {
            RunStarted: self._started,
            RunSucceeded: self._succeeded,
            RunFailed: self._failed,
            RunMissed: self._missed,
            RunSkipped: self._skipped,
            JobAdded: self._job_added,
            JobModified: self._job_modified,
            JobRemoved: self._job_removed,
        }

    def attach(self, kernel: _Listenable) -> Callable[[], None]:
        """Log ``kernel``'s events from now on; returns the function that stops it."""
        return kernel.add_listener(self)

    def __call__(self, event: Event) -> None:
        """Log one kernel event."""
        handler = self._dispatch.get(event.__class__)
        if handler is not None:
            handler(event)

    def _started(self, e: RunStarted) -> None:
        if self.run_log.isEnabledFor(logging.DEBUG):
            extra = _run_extra(e, "started") | {"lateness": e.lateness}
            self.run_log.debug(
                "Scheduled task %s started %.3fs late (%s)",
                e.job_id, e.lateness, _run_tail(e), extra=extra,
            )  # fmt: skip

    def _succeeded(self, e: RunSucceeded) -> None:
        if self.run_log.isEnabledFor(logging.INFO):
            extra = _run_extra(e, "success") | {"duration": e.duration}
            self.run_log.info(
                "Scheduled task %s succeeded in %.3fs (%s)",
                e.job_id, e.duration, _run_tail(e), extra=extra,
            )  # fmt: skip

    def _failed(self, e: RunFailed) -> None:
        extra = _run_extra(e, "failure") | {
            "duration": e.duration,
            "exc_type": e.exc_type,
            "timed_out": e.timed_out,
        }
        # Redacted here too, not only by the handler's filter: an embedder's own handlers
        # may have none, and an exception message is where a secret most often leaks.
        why = f"timed out ({e.exc_type})" if e.timed_out else f"{e.exc_type}: {redact(e.message)}"
        self.run_log.error(
            "Failed scheduled task %s after %.3fs: %s (%s)\n%s",
            e.job_id, e.duration, why, _run_tail(e), redact(e.traceback.rstrip("\n")),
            extra=extra,
        )  # fmt: skip

    def _missed(self, e: RunMissed) -> None:
        self.run_log.warning(
            "Missed scheduled task %s: it was %.3fs late, more than misfire_grace_time allows "
            "(scheduled_at=%s)",
            e.job_id, e.lateness, _when(e.scheduled_at),
            extra={"job_id": e.job_id, "scheduled_at": _iso(e.scheduled_at), "outcome": "missed",
                   "lateness": e.lateness},
        )  # fmt: skip

    def _skipped(self, e: RunSkipped) -> None:
        level = logging.WARNING if e.reason == "max_instances" else logging.INFO
        self.run_log.log(
            level,
            "Skipped scheduled task %s: reason=%s (scheduled_at=%s)",
            e.job_id, e.reason, _when(e.scheduled_at),
            extra={"job_id": e.job_id, "scheduled_at": _iso(e.scheduled_at), "outcome": "skipped",
                   "reason": e.reason},
        )  # fmt: skip

    def _job_added(self, e: JobAdded) -> None:
        self.job_log.info(
            "Added job %s (next run at %s)", e.job_id, _when(e.scheduled_at),
            extra={"job_id": e.job_id, "scheduled_at": _iso(e.scheduled_at)},
        )  # fmt: skip

    def _job_modified(self, e: JobModified) -> None:
        self.job_log.info(
            "Job %s %s (next run at %s)", e.job_id, e.change, _when(e.scheduled_at),
            extra={"job_id": e.job_id, "scheduled_at": _iso(e.scheduled_at)},
        )  # fmt: skip

    def _job_removed(self, e: JobRemoved) -> None:
        self.job_log.info("Removed job %s", e.job_id, extra={"job_id": e.job_id})


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
