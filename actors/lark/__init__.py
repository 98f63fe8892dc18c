"""The Lark (Feishu) Open API client: tokens, users and departments, messages."""

from __future__ import annotations

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
    Department,
    DepartmentFailure,
    Directory,
    LarkUser,
    MessageReceipt,
    UserStatus,
    UserTokenGrant,
)

__all__ = (
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
)
