"""Secrets at rest (app secrets, users' OAuth tokens): Fernet (from ``cryptography``), with a
key the database never holds.

Fernet is authenticated encryption (AES-128-CBC with HMAC-SHA256), so a dump of the
database alone reveals no secret, and a tampered or foreign ciphertext is refused rather
than decrypted into garbage. Other keys the service needs (the OAuth state's signing key)
are derived from the same key with HKDF, each for its own purpose.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import uuid
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from actors.store._files import private_dir
from actors.store.base import SecretKeyError

__all__ = ()


class SecretBox:
    """Encrypts and decrypts secrets with one Fernet key. Its ``repr`` hides the key."""

    __slots__ = ("_fernet", "_raw")

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
            self._raw = base64.urlsafe_b64decode(key)
        except (ValueError, TypeError, binascii.Error) as exc:
            raise SecretKeyError(
                f"secret_key must be a Fernet key (32 bytes, url-safe base64-encoded, "
                f"44 characters), got {len(key)} bytes; make one with Fernet.generate_key()"
            ) from exc

    def __repr__(self) -> str:
        return "SecretBox(key=<redacted>)"

    def encrypt(self, plaintext: str) -> str:
        """The Fernet token of ``plaintext``, as text."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, *, app_id: str, what: str = "secret") -> str:
        """The plaintext of a token this key made; :class:`SecretKeyError` otherwise.

        ``what`` names the value in the error (``"secret"``, ``"tokens of user ou_..."``).
        """
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            again = "set the secret again" if what == "secret" else "have the user authorise again"
            raise SecretKeyError(
                f"the stored {what} of app {app_id!r} does not decrypt with the configured "
                f"key; configure the key it was written with, or {again}"
            ) from None

    def derive_key(self, purpose: str) -> bytes:
        """32 bytes for ``purpose`` (HKDF-SHA256 of the Fernet key): another purpose, or
        another Fernet key, gives an unrelated key."""
        if not purpose:
            raise ValueError("purpose is empty; name what the derived key is for")
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"lark-scheduler",
            info=purpose.encode("utf-8"),
        )
        return hkdf.derive(self._raw)


def load_or_create_key(path: Path) -> bytes:
    """The Fernet key in ``path``; a new one is generated there (mode 0600) when absent.

    An existing key file that group or others may read is refused: the key is what keeps
    the secrets in the database safe. A new key is written to a private temporary file and
    then linked into place, so a second process starting at the same moment either finds
    no file or a complete one, never a half-written key.
    """
    private_dir(path.parent)
    if not path.exists():
        key = Fernet.generate_key()
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(key + b"\n")
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: use its key, read below
        else:
            return key
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretKeyError(
            f"key file {str(path)!r} has mode {mode:04o}; it holds the key of the app "
            f"secrets, so allow only its owner: chmod 600 {path}"
        )
    key = path.read_bytes().strip()
    SecretBox(key)  # refuses a malformed file with a clear message
    return key
