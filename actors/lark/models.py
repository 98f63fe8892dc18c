"""What the Lark client hands back: users, departments, message receipts, user tokens and
the user they belong to.

Every model is a frozen :class:`msgspec.Struct`. Models that hold a token redact it
in ``repr`` (and so in ``str``, logs and tracebacks that format them).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = (
    "AuthenUser",
    "Department",
    "DepartmentFailure",
    "Directory",
    "LarkUser",
    "MessageReceipt",
    "UserStatus",
    "UserTokenGrant",
)


class UserStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A user's account state, as Lark's ``status`` object reports it."""

    is_frozen: bool = False
    is_resigned: bool = False
    is_activated: bool = False
    is_exited: bool = False
    is_unjoin: bool = False


class LarkUser(msgspec.Struct, frozen=True, kw_only=True):
    """A member of the tenant's directory, as listed by ``find_by_department``.

    Fields Lark leaves out (missing permissions, empty values) are empty strings.
    """

    open_id: str
    union_id: str = ""
    user_id: str = ""
    name: str = ""
    en_name: str = ""
    email: str = ""
    mobile: str = ""
    department_ids: tuple[str, ...] = ()
    status: UserStatus = UserStatus()

    @property
    def is_active(self) -> bool:
        """Activated and neither frozen, resigned nor exited."""
        s = self.status
        return s.is_activated and not (s.is_frozen or s.is_resigned or s.is_exited)


class Department(msgspec.Struct, frozen=True, kw_only=True):
    """A department below the root (``"0"``) of the tenant's directory."""

    open_department_id: str
    department_id: str = ""
    name: str = ""
    parent_department_id: str = ""


class MessageReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """Lark accepted a message: its ``message_id`` (``om_...``)."""

    message_id: str


class AuthenUser(msgspec.Struct, frozen=True, kw_only=True):
    """The user an access token speaks for, as ``authen/v1/user_info`` answers (the fields
    the service uses; Lark leaves out what the app may not read)."""

    open_id: str = ""
    union_id: str = ""
    user_id: str = ""
    name: str = ""
    en_name: str = ""
    email: str = ""
    tenant_key: str = ""


class UserTokenGrant(msgspec.Struct, frozen=True, kw_only=True):
    """A user's access and refresh tokens with their expiry times (aware UTC datetimes).

    The tokens are credentials: ``repr`` never shows them.
    """

    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    scope: str = ""

    def __repr__(self) -> str:
        return (
            "UserTokenGrant(access_token='<redacted>', "
            f"access_expires_at={self.access_expires_at.isoformat()!r}, "
            "refresh_token='<redacted>', "
            f"refresh_expires_at={self.refresh_expires_at.isoformat()!r}, "
            f"scope={self.scope!r})"
        )


class DepartmentFailure(msgspec.Struct, frozen=True, kw_only=True):
    """A department whose users could not be listed, and why (``Type: message``)."""

    department_id: str
    error: str


class Directory(msgspec.Struct, frozen=True, kw_only=True):
    """The users of a tenant's directory, listed department by department.

    ``departments`` is how many departments were asked (the root included); ``failed`` the
    ones whose listing failed and was skipped: their users are missing from ``users``
    unless another department lists them too.
    """

    users: tuple[LarkUser, ...]
    departments: int
    failed: tuple[DepartmentFailure, ...] = ()

    @property
    def complete(self) -> bool:
        """Every department was listed."""
        return not self.failed
