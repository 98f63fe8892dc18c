"""The ``steady-scrape`` scenario's Prometheus stand-in: a real HTTP client in its own process.

``python -m bench._scraper URL TIMES_JSON``: at each monotonic instant of ``TIMES_JSON``
(the clock is system-wide on Linux, so the engine's process plans them), ``GET URL`` on one
keep-alive connection, read the whole body and note when the request started and when its
last byte arrived. Like Prometheus, it never overlaps two scrapes of the target: a tick that
comes while the previous scrape is still going is skipped (and counted). Prints one JSON
object: ``{"scrapes": [[start, end, bytes, status], ...], "skipped": n}``.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from urllib.parse import urlsplit

__all__ = ("main",)

TIMEOUT_S = 30.0


def main(argv: list[str] | None = None) -> int:
    """Scrape at the planned instants; print the JSON record."""
    url, times_json = sys.argv[1:] if argv is None else argv
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=TIMEOUT_S)
    scrapes: list[list[float]] = []
    skipped = 0
    for at in json.loads(times_json):
        now = time.monotonic()
        if now > at + 0.5:
            skipped += 1  # still busy with the previous scrape at this tick
            continue
        if at > now:
            time.sleep(at - now)
        start = time.monotonic()
        try:
            conn.request("GET", parts.path or "/")
            resp = conn.getresponse()
            size = len(resp.read())
            status = resp.status
        except (OSError, http.client.HTTPException):
            conn.close()
            size, status = 0, 0
        scrapes.append([start, time.monotonic(), size, status])
    conn.close()
    json.dump({"scrapes": scrapes, "skipped": skipped}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
