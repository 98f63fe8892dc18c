"""Masking of secrets in text that leaves the process (log lines, admin API answers).

Defence in depth: code should never put a secret in a message in the first place, but an
exception message or a traceback can carry one (a request body, a repr of a config object).
:func:`redact` masks what looks like a credential and leaves the rest readable.
"""

from __future__ import annotations

import re

__all__ = ("MASK", "redact")

MASK = "***"

# Names whose value is a credential wherever it appears as ``name=value``, ``name: value``,
# ``"name": "value"`` or ``'name': 'value'``.
_SECRET_KEYS = (
    "app_secret",
    "client_secret",
    "secret",
    "password",
    "passwd",
    "api_key",
    "access_token",
    "refresh_token",
    "tenant_access_token",
    "app_access_token",
    "user_access_token",
    "token",
)

_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*")
_KEY_VALUE = re.compile(
    r"(?i)(\b(?:" + "|".join(_SECRET_KEYS) + r")[\"']?\s*[:=]\s*[\"']?)"
    r"(?!\*\*\*)[^\s\"',;&}\])]+"
)
# Lark/Feishu tokens: t- tenant, a- app, u- user access, ur- user refresh. Real ones are
# 30-40 characters; 16 keeps ordinary hyphenated words ("t-shirt") readable.
_LARK_TOKEN = re.compile(r"\b(t|a|u|ur)-[A-Za-z0-9_\-]{16,}")


def redact(text: str) -> str:
    """``text`` with bearer tokens, Lark tokens and ``secret=...``-style values masked."""
    text = _BEARER.sub(r"\1" + MASK, text)
    text = _KEY_VALUE.sub(r"\1" + MASK, text)
    return _LARK_TOKEN.sub(r"\1-" + MASK, text)
