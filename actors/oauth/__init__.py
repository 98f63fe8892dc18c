"""Users' authorization of the Lark apps (OAuth, Lark's authen v1), and the token API.

* :class:`AuthorizationFlow`: ``/oauth/{app_id}/authorize`` sends a person to Lark's
  authorize page; ``/oauth/callback`` stores their tokens (encrypted, like app secrets).
* :class:`TokenBroker`: ``/tokens/{app_id}/{open_id}`` serves a valid user access token to
  other services, refreshing (and rotating) it when it expires within 5 minutes.
* :func:`add_oauth_routes` mounts both on an aiohttp application (the service does it on its
  admin server; see :mod:`actors.oauth.routes` for the routes and their answers).

Token states per app and user (for a console): :func:`actors.jobs.token_states.token_report`.
"""

from __future__ import annotations

from actors.oauth._state import STATE_LIFETIME, OAuthState, StateError, sign_state, verify_state
from actors.oauth.broker import REFRESH_MARGIN, ServedToken, TokenBroker, TokenError
from actors.oauth.flow import AuthorizationFlow, Authorized, FlowError
from actors.oauth.routes import OAuthQueryFilter, add_oauth_routes

__all__ = (
    "REFRESH_MARGIN",
    "STATE_LIFETIME",
    "AuthorizationFlow",
    "Authorized",
    "FlowError",
    "OAuthQueryFilter",
    "OAuthState",
    "ServedToken",
    "StateError",
    "TokenBroker",
    "TokenError",
    "add_oauth_routes",
    "sign_state",
    "verify_state",
)
