"""A small synchronous client for a running service's admin HTTP API (:mod:`kernel.http`).

Synchronous on purpose: one command makes one or two requests, so the standard library's
``urllib`` is enough and no event loop is started.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ._errors import EXIT_ERROR, CliError

__all__ = ("DEFAULT_URL", "AdminClient")

DEFAULT_URL = "http://127.0.0.1:8080"
"""Where ``lark-scheduler serve`` listens unless configured otherwise (``[http]``)."""


class AdminClient:
    """Requests to ``url``; mutating ones and failure records carry the bearer ``token``."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CliError(
                f"admin API URL {url!r} is not an http(s) URL; "
                "give one like http://127.0.0.1:9180 (--url or LARK_SCHEDULER_URL)",
                2,
            )
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str, **query: str | int | None) -> Any:
        """``GET path?query`` (``None`` values are left out); the decoded JSON answer."""
        params = {k: str(v) for k, v in query.items() if v is not None}
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
        return self._request("GET", path)

    def post(self, path: str) -> Any:
        """``POST path`` with an empty JSON object."""
        return self._request("POST", path, b"{}")

    def delete(self, path: str) -> Any:
        """``DELETE path``."""
        return self._request("DELETE", path)

    def _request(self, method: str, path: str, body: bytes | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise CliError(self._api_error(method, path, exc), EXIT_ERROR) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(
                f"cannot reach the admin API at {self.url} ({reason}); is "
                "'lark-scheduler serve' running there? Point --url or LARK_SCHEDULER_URL at it",
                EXIT_ERROR,
            ) from None
        except ValueError:
            raise CliError(
                f"{method} {self.url}{path} did not answer JSON; is {self.url} the admin API?",
                EXIT_ERROR,
            ) from None

    def _api_error(self, method: str, path: str, exc: urllib.error.HTTPError) -> str:
        try:
            detail = json.loads(exc.read())["error"]
            message = f"{detail['message']} ({detail['code']})"
        except (ValueError, KeyError, TypeError, OSError):
            message = exc.reason if isinstance(exc.reason, str) else "no details"
        finally:
            exc.close()
        hint = ""
        if exc.code == 401:
            hint = "; pass the service's admin token with --token or LARK_SCHEDULER_ADMIN_TOKEN"
        return f"{method} {path}: HTTP {exc.code}: {message}{hint}"
