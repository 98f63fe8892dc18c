"""Lark's JSON answers as msgspec types, and decoding that turns surprises into errors.

Every Lark answer is an envelope ``{"code": 0, "msg": "ok", "data": {...}}``; the token
endpoints put their fields at the top level instead of under ``data``.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from .errors import LarkError, LarkProtocolError

__all__ = (
    "Answer",
    "Envelope",
    "MessageData",
    "Page",
    "TokenAnswer",
    "UserTokenData",
    "decode_data",
    "protocol_error",
    "refused",
)

T = TypeVar("T")


class ErrorDetail(msgspec.Struct, frozen=True):
    """The ``error`` object Lark adds to failed answers (we only keep the log id)."""

    log_id: str = ""


class Envelope(msgspec.Struct, frozen=True):
    """The part of every answer the transport needs; ``data`` stays undecoded."""

    code: int
    msg: str = ""
    # The authen (OIDC) endpoints call it "message" instead of "msg".
    message: str = ""
    data: msgspec.Raw = msgspec.Raw(b"null")
    error: ErrorDetail | None = None


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP exchange that reached Lark and was not retried away."""

    method: str
    path: str
    http_status: int
    envelope: Envelope
    body: bytes
    log_id: str | None

    @property
    def code(self) -> int:
        return self.envelope.code

    @property
    def msg(self) -> str:
        return self.envelope.msg or self.envelope.message


class TokenAnswer(msgspec.Struct, frozen=True):
    """``tenant_access_token/internal`` and ``app_access_token/internal`` answers."""

    code: int
    msg: str = ""
    tenant_access_token: str = ""
    app_access_token: str = ""
    expire: int = 0


class Page(msgspec.Struct, Generic[T], frozen=True):
    """One page of a paginated listing."""

    items: list[T] = msgspec.field(default_factory=list)
    has_more: bool = False
    page_token: str = ""


class MessageData(msgspec.Struct, frozen=True):
    """``im/v1/messages`` answer data (only what we use)."""

    message_id: str


class UserTokenData(msgspec.Struct, frozen=True):
    """``authen/v1/oidc/access_token`` and ``oidc/refresh_access_token`` answer data;
    lifetimes in seconds."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    scope: str = ""
    token_type: str = ""

    def __repr__(self) -> str:
        return "UserTokenData(<redacted>)"


def decode_data(answer: Answer, type_: type[T]) -> T:
    """Decode ``answer``'s ``data`` as ``type_``, or raise :class:`LarkProtocolError`."""
    try:
        return msgspec.json.decode(answer.envelope.data, type=type_)
    except msgspec.DecodeError as exc:
        raise LarkProtocolError(
            f"{answer.method} {answer.path}: 'data' does not have the documented shape: {exc}",
            code=answer.code,
            msg=answer.msg,
            http_status=answer.http_status,
            log_id=answer.log_id,
        ) from exc


def refused(answer: Answer, message: str) -> LarkError:
    """A :class:`LarkError` for an answer with a non-zero code: ``message`` and what Lark
    said."""
    return LarkError(
        message,
        code=answer.code,
        msg=answer.msg,
        http_status=answer.http_status,
        log_id=answer.log_id,
    )


def protocol_error(answer: Answer, what: str) -> LarkProtocolError:
    """A :class:`LarkProtocolError` about ``answer``: ``what`` is wrong with it."""
    return LarkProtocolError(
        f"{answer.method} {answer.path}: {what}",
        code=answer.code,
        msg=answer.msg,
        http_status=answer.http_status,
        log_id=answer.log_id,
    )
