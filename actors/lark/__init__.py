"""The Lark (Feishu) Open API client: tokens, users and departments, messages, users'
authorization (authen v1)."""

from __future__ import annotations

from ._authen import authorize_url
from .client import LarkClient, ReceiveIdType
from .errors import (
    LarkAuthError,
    LarkError,
    LarkProtocolError,
    LarkRateLimitError,
    LarkRefreshTokenError,
    LarkTokenInvalidError,
    LarkUnavailableError,
    RefreshTokenReason,
)
from .models import (
    AuthenUser,
    Department,
    DepartmentFailure,
    Directory,
    LarkUser,
    MessageReceipt,
    UserStatus,
    UserTokenGrant,
)

__all__ = (
    "AuthenUser",
    "Department",
    "DepartmentFailure",
    "Directory",
    "LarkAuthError",
    "LarkClient",
    "LarkError",
    "LarkProtocolError",
    "LarkRateLimitError",
    "LarkRefreshTokenError",
    "LarkTokenInvalidError",
    "LarkUnavailableError",
    "LarkUser",
    "MessageReceipt",
    "ReceiveIdType",
    "RefreshTokenReason",
    "UserStatus",
    "UserTokenGrant",
    "authorize_url",
)
