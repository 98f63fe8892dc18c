"""The authorization code flow: send a person to Lark's authorize page, take them back, store
their tokens.

``GET /oauth/{app_id}/authorize`` -> :meth:`AuthorizationFlow.start` answers the Lark page
to redirect to: ``{lark.base_url}/open-apis/authen/v1/authorize?app_id=...&redirect_uri=...
&state=...``. The ``redirect_uri`` is always ``<oauth.redirect_base_url>/oauth/callback``
from the configuration, never anything from the request (no open redirect).

``GET /oauth/callback?code=...&state=...`` -> :meth:`AuthorizationFlow.finish` checks the
state (signed by this service, for an active app, at most 10 minutes old, never used
before), exchanges the code (``oidc/access_token`` with the app access token), asks who the
user is (``user_info``) and stores both tokens encrypted, in one transaction. Every refusal
is a :class:`FlowError` carrying the page to show; none of them stores a token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import tzinfo

import msgspec

from actors.config import OAuthConfig
from actors.jobs.clients import LarkClientPool, MissingSecretError
from actors.lark import (
    LarkError,
    LarkProtocolError,
    LarkRateLimitError,
    LarkUnavailableError,
    authorize_url,
)
from actors.oauth._state import (
    STATE_KEY_PURPOSE,
    OAuthState,
    StateError,
    sign_state,
    verify_state,
)
from actors.store import AppRecord, Store, StoreUnavailableError, UserToken
from kernel.clock import Clock

__all__ = ("AuthorizationFlow", "Authorized", "FlowError", "LinkFor", "OnChange", "recount")

logger = logging.getLogger("actors.oauth")

#: Called with an app id after one of its users' tokens changed (to recount the gauge).
OnChange = Callable[[str], Awaitable[object]]
#: The (re-)authorization link of an app, ``None`` when OAuth is not configured.
LinkFor = Callable[[str], str | None]


async def recount(on_change: OnChange | None, app_id: str) -> None:
    """Tell ``on_change`` that ``app_id``'s tokens changed; its failure is only logged (the
    tokens are stored: a stale gauge is no reason to fail the request)."""
    if on_change is None:
        return
    try:
        await on_change(app_id)
    except Exception as exc:
        logger.warning("recounting the token states of app %s failed: %s", app_id, exc)


class FlowError(Exception):
    """An authorization that cannot go on, and the page that says so.

    ``problem`` is a stable name (``forged_state``, ``denied``, ...); ``status`` the HTTP
    status; ``title`` and ``lines`` what the person reads; ``retry_url`` where they can start
    again (``None`` when the app is unknown).
    """

    def __init__(
        self,
        problem: str,
        status: int,
        title: str,
        *lines: str,
        retry_url: str | None = None,
    ) -> None:
        super().__init__(f"{problem}: {title}")
        self.problem = problem
        self.status = status
        self.title = title
        self.lines = lines
        self.retry_url = retry_url


class Authorized(msgspec.Struct, frozen=True, kw_only=True):
    """A completed authorization: the app, and the stored row (no token value)."""

    app: AppRecord
    token: UserToken


_NOTHING_STORED = "Nothing was stored."


class AuthorizationFlow:
    """Starts and finishes authorizations for the apps in ``store``."""

    def __init__(
        self,
        store: Store,
        clients: LarkClientPool,
        clock: Clock,
        oauth: OAuthConfig,
        *,
        lark_base_url: str,
        timezone: tzinfo,
        on_change: OnChange | None = None,
    ) -> None:
        self._store = store
        self._clients = clients
        self._clock = clock
        self._oauth = oauth
        self._lark_base_url = lark_base_url
        self.timezone = timezone
        self._on_change = on_change

    def _redirect_uri(self) -> str:
        uri = self._oauth.redirect_uri
        if uri is None:
            raise FlowError(
                "not_configured",
                503,
                "Authorization is not set up on this service",
                "The service has no oauth.redirect_base_url, so Lark would not know where to "
                "send you back. Ask the operator of this service to set it.",
            )
        return uri

    def retry_url(self, app_id: str) -> str | None:
        """Where a person starts (again) to authorise ``app_id``."""
        return self._oauth.authorize_url(app_id)

    async def _active_app(self, app_id: str) -> AppRecord:
        app = await self._store.get_app(app_id)
        if app is None or not app.active:
            raise FlowError(
                "unknown_app",
                404,
                "Unknown app",
                f"No active app {app_id} is registered on this service. Check the link you "
                "were given, or ask the app's administrator.",
            )
        return app

    def _no_secret(self, app: AppRecord) -> FlowError:
        return FlowError(
            "no_secret",
            409,
            "App not ready",
            f"App {app.name} ({app.app_id}) has no secret on this service, so an "
            f"authorization cannot be completed. {_NOTHING_STORED} Ask its operator to run "
            f"'lark-scheduler apps update {app.app_id} --new-secret'.",
        )

    async def start(self, app_id: str) -> str:
        """The Lark authorize page for ``app_id``, with a fresh signed state."""
        redirect_uri = self._redirect_uri()
        try:
            app = await self._active_app(app_id)
            await self._clients.get(app_id)  # refuse now rather than after the person consents
        except MissingSecretError:
            raise self._no_secret(app) from None
        except StoreUnavailableError:
            raise self._store_down(app_id) from None
        state = sign_state(self._store.derive_key(STATE_KEY_PURPOSE), app_id, self._clock.now())
        return authorize_url(self._lark_base_url, app_id, redirect_uri, state, self._oauth.scope)

    async def finish(self, query: Mapping[str, str]) -> Authorized:
        """Complete the authorization Lark sent the person back with (the callback's query)."""
        self._redirect_uri()
        state = self._verified_state(query.get("state"))
        app_id = state.app_id
        retry = self.retry_url(app_id)
        try:
            app = await self._active_app(app_id)
            first_use = await self._store.consume_oauth_state(
                state.nonce, app_id, state.expires_at
            )
        except StoreUnavailableError:
            raise self._store_down(app_id) from None
        if not first_use:
            raise FlowError(
                "replayed_state",
                409,
                "Authorization link already used",
                "This authorization was completed or refused already, and each one works "
                f"once. {_NOTHING_STORED} To authorise again, start again.",
                retry_url=retry,
            )
        error = query.get("error")
        if error == "access_denied":
            raise FlowError(
                "denied",
                403,
                "Authorization declined",
                f"You declined to authorise app {app.name}, so {_NOTHING_STORED.lower()} "
                "If that was a mistake, start again.",
                retry_url=retry,
            )
        if error:
            raise FlowError(
                "lark_error",
                400,
                "Lark did not authorise the app",
                f"Lark sent back the error {error[:100]!r} instead of an authorization. "
                f"{_NOTHING_STORED}",
                retry_url=retry,
            )
        code = query.get("code")
        if not code:
            raise FlowError(
                "missing_code",
                400,
                "Incomplete answer from Lark",
                f"Lark sent no authorization code. {_NOTHING_STORED}",
                retry_url=retry,
            )
        return await self._complete(app, code, retry)

    def _verified_state(self, text: str | None) -> OAuthState:
        try:
            return verify_state(
                self._store.derive_key(STATE_KEY_PURPOSE), text, self._clock.now()
            )
        except StateError as exc:
            if exc.problem == "missing":
                raise FlowError(
                    "missing_state",
                    400,
                    "Incomplete authorization link",
                    "This page was opened without the state Lark sends back, so it cannot "
                    f"tell which authorization it belongs to. {_NOTHING_STORED} Start from "
                    "the authorization link you were given.",
                ) from None
            if exc.problem == "expired" and exc.state is not None:
                raise FlowError(
                    "expired_state",
                    400,
                    "Authorization link expired",
                    "More than 10 minutes passed between opening the authorization link and "
                    f"coming back. {_NOTHING_STORED} Start again.",
                    retry_url=self.retry_url(exc.state.app_id),
                ) from None
            logger.warning("OAuth callback with a state this service did not sign: %s", exc)
            raise FlowError(
                "forged_state",
                400,
                "Authorization link not issued by this service",
                "The authorization's state was not signed by this service, or was changed on "
                f"the way. {_NOTHING_STORED} Start from the authorization link you were given.",
            ) from None

    async def _complete(self, app: AppRecord, code: str, retry: str | None) -> Authorized:
        app_id = app.app_id
        try:
            client = await self._clients.get(app_id)
        except MissingSecretError:
            raise self._no_secret(app) from None
        try:
            grant = await client.exchange_code(code)
        except (LarkUnavailableError, LarkRateLimitError) as exc:
            raise self._lark_down(app_id, exc) from None
        except LarkProtocolError as exc:
            logger.error("OAuth callback for app %s: %s", app_id, exc)
            raise FlowError(
                "lark_answer",
                502,
                "Unexpected answer from Lark",
                f"Lark's answer to the code exchange was not what the service expects ({exc}). "
                f"{_NOTHING_STORED} If it lacks a refresh token, the operator adds "
                "offline_access to oauth.scope (and to the app's permissions).",
                retry_url=retry,
            ) from None
        except LarkError as exc:
            logger.warning("OAuth callback for app %s: Lark refused the code: %s", app_id, exc)
            raise FlowError(
                "code_rejected",
                400,
                "Lark refused the authorization",
                f"Lark answered code {exc.code} ({exc.msg or 'no message'}) when the service "
                "exchanged the authorization code: a code works once, for 5 minutes. "
                f"{_NOTHING_STORED} Start again.",
                retry_url=retry,
            ) from None
        try:
            user = await client.user_info(grant.access_token)
        except LarkError as exc:
            raise self._lark_down(app_id, exc) from None
        try:
            token = await self._store.save_user_authorization(
                app_id, user.open_id, grant, name=user.name
            )
        except StoreUnavailableError:
            raise self._store_down(app_id) from None
        logger.info(
            "user %s (%s) authorised app %s; refresh token expires %s",
            user.open_id,
            user.name,
            app_id,
            token.refresh_expires_at.isoformat(),
        )
        await recount(self._on_change, app_id)
        return Authorized(app=app, token=token)

    def _lark_down(self, app_id: str, exc: LarkError) -> FlowError:
        logger.warning("OAuth callback for app %s: Lark failed: %s", app_id, exc)
        return FlowError(
            "lark_unavailable",
            502,
            "Lark could not complete the authorization",
            f"The service could not get your authorization from Lark ({type(exc).__name__}). "
            f"{_NOTHING_STORED} Try again in a moment.",
            retry_url=self.retry_url(app_id),
        )

    def _store_down(self, app_id: str) -> FlowError:
        return FlowError(
            "store_unavailable",
            503,
            "Service temporarily unavailable",
            f"The service's database cannot be reached. {_NOTHING_STORED} Try again in a "
            "moment.",
            retry_url=self.retry_url(app_id),
        )
