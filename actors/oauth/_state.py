"""The OAuth ``state``: signed, bound to one app, valid for 10 minutes, used once. Pure.

``state`` = ``<payload>.<signature>``, both base64url without padding: the payload is
``{"a": app_id, "n": nonce, "t": issued_at}`` (JSON, seconds since the epoch) and the
signature its HMAC-SHA256 under a key derived from the store's secret key (so every replica
sharing that key verifies what another signed, and nothing to configure). Single use is the
store's part: the callback records the nonce (:meth:`actors.store.Store.consume_oauth_state`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Literal

import msgspec

__all__ = (
    "STATE_KEY_PURPOSE",
    "STATE_LIFETIME",
    "OAuthState",
    "StateError",
    "sign_state",
    "verify_state",
)

STATE_KEY_PURPOSE = "lark-scheduler oauth state v1"
#: How long a person has between opening the authorize link and coming back (seconds).
STATE_LIFETIME = 600
# A state from the future beyond this skew between replicas' clocks was not ours.
_MAX_SKEW = 300
# Ours are about 120 characters; anything much longer is not worth decoding.
_MAX_LENGTH = 1024

StateProblem = Literal["missing", "forged", "expired"]


class StateError(ValueError):
    """The callback's ``state`` cannot be accepted; ``problem`` says why. An ``expired``
    state was ours (its signature checked out): ``state`` has its content."""

    def __init__(
        self, problem: StateProblem, message: str, state: OAuthState | None = None
    ) -> None:
        super().__init__(message)
        self.problem: StateProblem = problem
        self.state = state


class OAuthState(msgspec.Struct, frozen=True):
    """What a verified state says: the app, a one-time nonce, when it was issued."""

    a: str
    n: str
    t: int

    @property
    def app_id(self) -> str:
        return self.a

    @property
    def nonce(self) -> str:
        return self.n

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.t + STATE_LIFETIME, UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def sign_state(key: bytes, app_id: str, now: datetime, nonce: str | None = None) -> str:
    """A new state for ``app_id`` issued at ``now`` (a random nonce unless given)."""
    if len(key) < 32:
        raise ValueError("the state key must be at least 32 bytes (Store.derive_key gives 32)")
    content = OAuthState(app_id, nonce or secrets.token_urlsafe(16), int(now.timestamp()))
    payload = _b64(msgspec.json.encode(content))
    return f"{payload}.{_signature(key, payload)}"


def verify_state(key: bytes, state: str | None, now: datetime) -> OAuthState:
    """The state's content if this service signed it and it is not older than 10 minutes;
    :class:`StateError` otherwise (nothing about the state is trusted before the signature
    checks out)."""
    if not state:
        raise StateError("missing", "the callback has no state")
    payload, dot, signature = state.partition(".")
    if len(state) > _MAX_LENGTH or not dot or not hmac.compare_digest(
        signature.encode("ascii", "replace"), _signature(key, payload).encode("ascii")
    ):
        raise StateError("forged", "the state was not signed by this service")
    try:
        decoded = msgspec.json.decode(_unb64(payload), type=OAuthState)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise StateError("forged", "the state's content cannot be read") from None
    age = (now - datetime.fromtimestamp(decoded.t, UTC)).total_seconds()
    if age < -_MAX_SKEW:
        raise StateError("forged", "the state claims to be issued in the future")
    if age > STATE_LIFETIME:
        minutes = int(age // 60)
        raise StateError(
            "expired", f"the state was issued {minutes} minutes ago (limit 10)", decoded
        )
    return decoded

