"""The built-in jobs' actors: user sync, token expiry, notifier, cleanup and health."""

from __future__ import annotations

from actors.jobs.cleanup import CleanupActor
from actors.jobs.clients import LarkClientFactory, LarkClientPool, MissingSecretError
from actors.jobs.expiry import ExpiryStatus, TokenExpiryActor, TokenExpiryMonitor
from actors.jobs.health import HealthActor, HealthMetrics
from actors.jobs.messages import (
    AppSyncResult,
    CheckExpiry,
    CheckHealth,
    CleanupReport,
    CleanupTokens,
    ExpiryReport,
    GetReadiness,
    HealthReport,
    NoticeOutcome,
    SendNotice,
    SyncReport,
    SyncUsers,
)
from actors.jobs.notifier import MessagingClient, NotifierActor, NotifierClient
from actors.jobs.sync import SyncMetrics, UserSyncActor

__all__ = (
    "AppSyncResult",
    "CheckExpiry",
    "CheckHealth",
    "CleanupActor",
    "CleanupReport",
    "CleanupTokens",
    "ExpiryReport",
    "ExpiryStatus",
    "GetReadiness",
    "HealthActor",
    "HealthMetrics",
    "HealthReport",
    "LarkClientFactory",
    "LarkClientPool",
    "MessagingClient",
    "MissingSecretError",
    "NoticeOutcome",
    "NotifierActor",
    "NotifierClient",
    "SendNotice",
    "SyncMetrics",
    "SyncReport",
    "SyncUsers",
    "TokenExpiryActor",
    "TokenExpiryMonitor",
    "UserSyncActor",
)
