"""One Lark call over HTTP: auth header, timeout, retries, backoff and error typing.

The transport answers every exchange that reached Lark and was not retried away as an
:class:`~actors.lark._wire.Answer`, whatever its ``code``; the client decides what a
non-zero code means for its endpoint. The transport itself handles:

* HTTP 5xx, timeouts and connection errors: capped exponential backoff with full
  jitter, then :class:`LarkUnavailableError`;
* ``99991400`` / HTTP 429: wait ``x-ogw-ratelimit-reset`` (or ``Retry-After``) seconds
  when the answer says, else backoff as above, then :class:`LarkRateLimitError`. A wait
  longer than ``backoff_max`` (30 s by default) is not slept: :class:`LarkRateLimitError`
  at once, so a run never hangs for the day a reset header can ask for;
* ``99991661`` / ``99991663`` (missing / invalid token): refresh the token once and
  retry once, then :class:`LarkTokenInvalidError`.

It never logs a header, a query or a body: they carry tokens and the app secret.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import msgspec

from ._backoff import full_jitter_delay, rate_limit_reset_delay
from ._tokens import TokenCache
from ._wire import Answer, Envelope
from .errors import (
    LarkError,
    LarkProtocolError,
    LarkRateLimitError,
    LarkTokenInvalidError,
    LarkUnavailableError,
)

__all__ = ("CODE_RATE_LIMITED", "TOKEN_INVALID_CODES", "Transport")

logger = logging.getLogger("actors.lark")

CODE_RATE_LIMITED = 99991400
#: 99991661: the Authorization header is missing or malformed; 99991663: the token is
#: invalid or expired. Both are cured by a fresh token.
TOKEN_INVALID_CODES = frozenset({99991661, 99991663})

# Lark's log id for a request, when the body's ``error.log_id`` is missing.
_LOG_ID_HEADER = "x-tt-logid"
_JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class _Exchange(msgspec.Struct, frozen=True):
    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport:
    """Sends requests to one Lark host through a session it is handed per call."""

    def __init__(
        self,
        *,
        base_url: str,
        session: Callable[[], aiohttp.ClientSession],
        timeout: float,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        sleep: Callable[[float], Awaitable[object]],
        rng: random.Random,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._rng = rng

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        token: TokenCache | None = None,
        max_retries: int | None = None,
    ) -> Answer:
        """Send until Lark answers something other than a retryable failure."""
        retries_allowed = self._max_retries if max_retries is None else max_retries
        retry = 0
        token_refreshed = False
        payload = None if json_body is None else msgspec.json.encode(json_body)
        while True:
            used_token = None if token is None else await token.get()
            outcome: Answer | _Retry
            try:
                exchange = await self._send(method, path, params, payload, used_token)
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome = _Retry(
                    LarkUnavailableError(
                        f"{method} {path}: {type(exc).__name__} after {retry + 1} attempt(s); "
                        "check that Lark (or base_url) is reachable"
                    ),
                    cause=exc,
                )
            else:
                outcome = _classify(method, path, exchange, retry)
            if isinstance(outcome, Answer):
                if token is None or used_token is None or outcome.code not in TOKEN_INVALID_CODES:
                    return outcome
                if token_refreshed:
                    raise LarkTokenInvalidError(
                        f"{method} {path}: Lark refused a freshly obtained token "
                        f"({outcome.msg}); check the app's permissions and credentials",
                        code=outcome.code,
                        msg=outcome.msg,
                        http_status=outcome.http_status,
                        log_id=outcome.log_id,
                    )
                logger.info("lark %s %s: token refused, refreshing it once", method, path)
                token.invalidate(used_token)
                token_refreshed = True
                continue
            if retry >= retries_allowed:
                raise outcome.error from outcome.cause
            delay = outcome.delay
            if delay is not None and delay > self._backoff_max:
                raise _too_long_to_wait(
                    f"{method} {path}", outcome.error, delay, self._backoff_max
                ) from outcome.cause
            if delay is None:
                delay = full_jitter_delay(
                    retry, base=self._backoff_base, cap=self._backoff_max, rng=self._rng
                )
            logger.warning(
                "lark %s %s: %s; retry %d of %d in %.3fs",
                method,
                path,
                type(outcome.error).__name__,
                retry + 1,
                retries_allowed,
                delay,
            )
            await self._sleep(delay)
            retry += 1

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        payload: bytes | None,
        token: str | None,
    ) -> _Exchange:
        headers = {"Content-Type": _JSON_CONTENT_TYPE}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self._session().request(
            method,
            self._base_url + path,
            params=params,
            data=payload,
            headers=headers,
            timeout=self._timeout,
        ) as response:
            body = await response.read()
            logger.debug("lark %s %s -> HTTP %d", method, path, response.status)
            return _Exchange(response.status, response.headers, body)


def _too_long_to_wait(
    call: str, error: LarkError, delay: float, cap: float
) -> LarkRateLimitError:
    # Sleeping that long would hold the run (and manual runs of its job) for as long as Lark
    # says; calling earlier would only be refused again. Fail now; the next run tries again.
    return LarkRateLimitError(
        f"{call}: rate limited, and Lark asks to wait {delay:g} s before the next call, "
        f"longer than the {cap:g} s this client waits (backoff_max); not retrying now, the "
        "next run tries again",
        code=error.code,
        msg=error.msg,
        http_status=error.http_status,
        log_id=error.log_id,
    )


class _Retry:
    """A retryable failure: the error to raise when retries run out, and how long to wait.

    ``delay`` is ``None`` when Lark did not say; the caller backs off then.
    """

    __slots__ = ("cause", "delay", "error")

    def __init__(
        self, error: LarkError, *, delay: float | None = None, cause: BaseException | None = None
    ) -> None:
        self.error = error
        self.delay = delay
        self.cause = cause


def _classify(method: str, path: str, exchange: _Exchange, retry: int) -> Answer | _Retry:
    """An answer for the client, or a retryable failure; raises on a malformed answer."""
    header_log_id = exchange.headers.get(_LOG_ID_HEADER) or None
    attempts = f"after {retry + 1} attempt(s)"
    try:
        envelope = msgspec.json.decode(exchange.body, type=Envelope)
    except msgspec.DecodeError as exc:
        # A proxy's error page on a 5xx or 429 is still a 5xx or 429: retry it.
        if exchange.status == 429:
            return _Retry(
                LarkRateLimitError(
                    f"{method} {path}: still rate limited {attempts}",
                    http_status=429,
                    log_id=header_log_id,
                ),
                delay=rate_limit_reset_delay(exchange.headers),
            )
        if exchange.status >= 500:
            return _Retry(
                LarkUnavailableError(
                    f"{method} {path}: HTTP {exchange.status} {attempts}",
                    http_status=exchange.status,
                    log_id=header_log_id,
                )
            )
        raise LarkProtocolError(
            f"{method} {path}: the answer is not Lark's JSON envelope ({exc})",
            http_status=exchange.status,
            log_id=header_log_id,
        ) from exc
    body_log_id = envelope.error.log_id if envelope.error is not None else ""
    answer = Answer(
        method=method,
        path=path,
        http_status=exchange.status,
        envelope=envelope,
        body=exchange.body,
        log_id=body_log_id or header_log_id,
    )
    logger.debug("lark %s %s: code %d", method, path, answer.code)
    if answer.code == CODE_RATE_LIMITED or exchange.status == 429:
        return _Retry(
            LarkRateLimitError(
                f"{method} {path}: still rate limited {attempts}",
                code=answer.code,
                msg=answer.msg,
                http_status=exchange.status,
                log_id=answer.log_id,
            ),
            delay=rate_limit_reset_delay(exchange.headers),
        )
    if exchange.status >= 500:
        return _Retry(
            LarkUnavailableError(
                f"{method} {path}: HTTP {exchange.status} {attempts} ({answer.msg})",
                code=answer.code,
                msg=answer.msg,
                http_status=exchange.status,
                log_id=answer.log_id,
            )
        )
    return answer
