"""Signed-in sessions of the console, and the CSRF tokens of its forms.

Signing in exchanges the admin token for a random session id held in a cookie (HttpOnly,
SameSite=Strict, Secure over HTTPS). Sessions live in this process's memory: a restart, or
another replica behind a load balancer, asks to sign in again. A session ends after
``idle`` seconds unused or ``lifetime`` seconds after sign-in, whichever comes first; at
most ``max_sessions`` exist (the one used longest ago goes first).

Every form carries a CSRF token: the session's own (random, compared in constant time),
or, on the sign-in form where there is no session yet, an HMAC of a random cookie under a
key of this process. Only a hash of the session id is kept, so memory does not hold the
cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from kernel.clock import Clock

__all__ = ("Session", "Sessions", "same_token")


@dataclass
class Session:
    """A signed-in browser: its CSRF token and the messages to show on its next page."""

    csrf: str
    started: float
    seen: float
    flashes: list[tuple[str, str]] = field(default_factory=list)

    def flash(self, kind: str, text: str) -> None:
        """Say ``text`` (``kind``: ``ok`` or ``error``) on the next page shown."""
        self.flashes.append((kind, text))
        del self.flashes[:-5]

    def take_flashes(self) -> list[tuple[str, str]]:
        flashes, self.flashes = self.flashes, []
        return flashes


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class Sessions:
    """The signed-in sessions of one console."""

    def __init__(
        self, clock: Clock, *, idle: float, lifetime: float, max_sessions: int = 1000
    ) -> None:
        self._clock = clock
        self.idle = idle
        self.lifetime = lifetime
        self.max_sessions = max_sessions
        self._key = secrets.token_bytes(32)
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def start(self) -> tuple[str, Session]:
        """A new session: its id (the cookie's value) and itself."""
        now = self._clock.monotonic()
        session_id = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), started=now, seen=now)
        self._sessions[_digest(session_id)] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (and it counts as used now), or ``None``."""
        if not session_id:
            return None
        key = _digest(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock.monotonic()
        if now - session.seen > self.idle or now - session.started > self.lifetime:
            del self._sessions[key]
            return None
        session.seen = now
        self._sessions.move_to_end(key)
        return session

    def end(self, session_id: str | None) -> None:
        """Sign the session out."""
        if session_id:
            self._sessions.pop(_digest(session_id), None)

    # -- the sign-in form, before any session ---------------------------------------------

    def form_token(self, nonce: str) -> str:
        """The sign-in form's CSRF token for the browser holding cookie ``nonce``."""
        return hmac.new(self._key, nonce.encode("utf-8", "replace"), "sha256").hexdigest()

    def check_form_token(self, nonce: str | None, token: str | None) -> bool:
        """Whether ``token`` is the sign-in form's token for cookie ``nonce``."""
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.form_token(nonce), token)


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return given is not None and hmac.compare_digest(
        expected.encode(), given.encode("utf-8", "replace")
    )
