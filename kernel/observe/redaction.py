"""Masking of secrets in text that leaves the process (log lines, admin API answers).

Defence in depth: code should never put a secret in a message in the first place, but an
exception message or a traceback can carry one (a request body, a repr of a config object,
a database URL). :func:`redact` masks what looks like a credential and leaves the rest
readable:

* the password of a URL's userinfo (``postgresql://user:***@host/db``);
* the value of any key whose name ends in a credential word, with or without a prefix
  (``token``, ``admin_token``, ``db_password``, ``appSecret``, ``x-api-key``, ``bearer``),
  written ``name=value``, ``name: value``, ``"name": "value"`` or ``'name': 'value'``; a
  quoted value is masked up to its closing quote, spaces and all;
* ``Bearer <token>`` and ``Authorization: Basic <credentials>``;
* Lark tokens (``t-``, ``a-``, ``u-``, ``ur-`` followed by 16 or more token characters).

Masking is idempotent: redacting redacted text changes nothing.
"""

from __future__ import annotations

import re

__all__ = ("MASK", "redact")

MASK = "***"

# A key is a credential when its last word is one of these (case-insensitive), whatever
# comes before it: ``token``, ``admin_token``, ``LARK_SCHEDULER_ADMIN_TOKEN``, ``appSecret``.
# The word must end the key, so ``tokens=5``, ``token_count=5`` and ``secretary`` stay.
_CREDENTIAL_WORDS = (
    "secret",
    "password",
    "passwd",
    "pwd",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "secret_key",
    "private_key",
    "credential",
    "credentials",
    "bearer",
    "authorization",
)

_KEY = r"(?<![\w.-])[\w.-]*?(?:" + "|".join(re.escape(w) for w in _CREDENTIAL_WORDS) + r")"
_KEY_VALUE = re.compile(
    r"(?im)(" + _KEY + r"[\"']?[ \t]*[:=][ \t]*)"
    r"(?:"
    r"(\"|')(?!\*\*\*\2)(?:\\.|(?!\2).)*(\2|$)"  # quoted: up to its closing quote
    r"|(?![\"'])(?!\*\*\*)(?!(?:bearer|basic)\s)[^\s\"',;&}\])]+"  # bare: up to a delimiter
    r")"
)
# The password in ``scheme://user:password@host`` (up to the last @ before the path, as an
# unescaped @ may be part of it); the user name stays readable.
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)(?!\*\*\*@)[^\s/]+(@)")
_BEARER = re.compile(r"(?i)(\bbearer\s+)(?!\*\*\*)[A-Za-z0-9\-._~+/]+=*")
_BASIC = re.compile(r"(?i)(\bauthorization\s*[:=]\s*[\"']?basic\s+)(?!\*\*\*)[A-Za-z0-9+/]+=*")
# Lark/Feishu tokens: t- tenant, a- app, u- user access, ur- user refresh. Real ones are
# 30-40 characters; 16 keeps ordinary hyphenated words ("t-shirt") readable.
_LARK_TOKEN = re.compile(r"\b(t|a|u|ur)-[A-Za-z0-9_\-]{16,}")


def _mask_value(match: re.Match[str]) -> str:
    # A quoted value keeps its quotes (an unclosed one, cut off at the line's end, too).
    return f"{match.group(1)}{match.group(2) or ''}{MASK}{match.group(3) or ''}"


def redact(text: str) -> str:
    """``text`` with URL passwords, credential values, bearer and Lark tokens masked."""
    text = _URL_PASSWORD.sub(r"\1" + MASK + r"\2", text)
    text = _BASIC.sub(r"\1" + MASK, text)
    text = _BEARER.sub(r"\1" + MASK, text)
    text = _KEY_VALUE.sub(_mask_value, text)
    return _LARK_TOKEN.sub(r"\1-" + MASK, text)
