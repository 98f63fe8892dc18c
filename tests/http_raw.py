"""Raw HTTP/1.1 over a socket, for requests no HTTP client library would send, and a log
capture that counts tracebacks."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class RawAnswer:
    """One parsed answer; ``status`` 0 when the server closed without answering."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def error(self) -> dict[str, Any] | None:
        """The API's error object, or None when the body is not exactly ``{"error": {...}}``."""
        if not self.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            body = json.loads(self.body)
        except ValueError:
            return None
        if not isinstance(body, dict) or set(body) != {"error"}:
            return None
        error = body["error"]
        if not isinstance(error, dict) or set(error) != {"code", "message"}:
            return None
        return error


def _head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_answer(reader: asyncio.StreamReader, head_only: bool) -> RawAnswer:
    while True:
        status, headers = _head((await reader.readuntil(b"\r\n\r\n"))[:-4])
        if status >= 200:
            break  # skip interim answers (100 Continue)
    length = int(headers.get("content-length", "0"))
    body = b"" if head_only or status in (204, 304) else await reader.readexactly(length)
    return RawAnswer(status, headers, body)


async def send_raw(
    port: int, data: bytes, *, wait: float = 5.0, patience: float = 0.5
) -> RawAnswer:
    """Send ``data`` on a new connection and read the first answer (``status`` 0: none).

    When nothing comes back within ``patience`` seconds (the server waits for the rest of
    a request that was cut short), our side of the connection is closed, so the server
    sees the end of the request and answers or closes; it has ``wait`` seconds for that.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head_only = data.startswith(b"HEAD ")
    try:
        writer.write(data)
        await writer.drain()
        read = asyncio.ensure_future(_read_answer(reader, head_only))
        done, _ = await asyncio.wait({read}, timeout=patience)
        if not done and writer.can_write_eof():
            writer.write_eof()
        return await asyncio.wait_for(read, wait)
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return RawAnswer(0, {}, b"")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


class LogCapture(logging.Handler):
    """Every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def tracebacks(self) -> list[str]:
        """The records that carry a traceback (or print one)."""
        return [
            line
            for record, line in zip(self.records, self.lines, strict=True)
            if record.exc_info or "Traceback (most recent call last)" in line
        ]


@contextmanager
def capture_logs() -> Iterator[LogCapture]:
    """Capture every log record (level DEBUG and up) while the block runs."""
    root = logging.getLogger()
    capture = LogCapture()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
