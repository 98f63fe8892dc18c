"""Validation of :class:`actors.lark.LarkClient`'s arguments, with errors that name the fix."""

from __future__ import annotations

__all__ = ("check_client_config",)


def check_client_config(
    app_id: str,
    app_secret: str,
    base_url: str,
    timeout: float,
    max_retries: int,
    backoff_base: float,
    backoff_max: float,
) -> None:
    """Raise :class:`ValueError` naming the first argument that cannot work."""
    if not app_id:
        raise ValueError("app_id is empty; pass the app's App ID (cli_...)")
    if not app_secret:
        raise ValueError(f"app_secret of app {app_id!r} is empty; pass the app's App Secret")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(
            f"base_url {base_url!r} must start with http:// or https:// "
            "(e.g. https://open.feishu.cn or https://open.larksuite.com)"
        )
    if not timeout > 0:
        raise ValueError(f"timeout {timeout!r} must be > 0 seconds")
    if max_retries < 0:
        raise ValueError(f"max_retries {max_retries!r} must be >= 0")
    if not 0 < backoff_base <= backoff_max:
        raise ValueError(
            f"backoff_base {backoff_base!r} and backoff_max {backoff_max!r} must satisfy "
            "0 < backoff_base <= backoff_max"
        )
