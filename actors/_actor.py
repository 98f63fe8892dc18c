"""The actor base class, the runtime's errors and its restart report (see :mod:`actors.runtime`)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

__all__ = ()

M = TypeVar("M", bound=msgspec.Struct)


class ActorError(Exception):
    """Base class of the runtime's own errors."""


class ActorStoppedError(ActorError, RuntimeError):
    """The actor stopped (or was never running) before it could answer."""


class AskTimeoutError(ActorError, TimeoutError):
    """No reply within the ask's timeout."""


class MailboxFullError(ActorError, RuntimeError):
    """``tell_nowait`` found the mailbox full."""


class ActorRestarted(msgspec.Struct, frozen=True, kw_only=True):
    """Reported each time the supervisor restarts a crashed actor.

    ``attempt`` counts consecutive crashes (reset once a message is handled); ``delay`` is
    the backoff in seconds before the new instance starts; ``error`` is the crash, as text.
    """

    actor: str
    attempt: int
    delay: float
    error: str


class Actor(Generic[M]):
    """Subclass and implement :meth:`receive`; the hooks are optional."""

    async def on_start(self) -> None:
        """Runs in the actor's task before the first message (and after each restart)."""

    async def on_stop(self) -> None:
        """Runs once after the mailbox was drained on stop."""

    async def on_failure(self, error: BaseException) -> None:
        """Runs when this instance crashed, before the supervisor replaces it."""

    def crashes_on(self, error: Exception) -> bool:
        """Whether ``error`` escaping :meth:`receive` crashes this actor (the default).

        Answer ``False`` for errors that leave the actor's state intact (a remote service
        refusing one request): the asker still gets the error, and the actor carries on.
        """
        return True

    async def receive(self, message: M) -> Any:
        """Handle one message; the return value is the reply to an ask."""
        raise NotImplementedError(f"{type(self).__name__}.receive is not implemented")


def check_message(actor: str, message: object) -> None:
    if not isinstance(message, msgspec.Struct) or not type(message).__struct_config__.frozen:
        raise TypeError(
            f"message to actor {actor!r} must be a frozen msgspec.Struct, not "
            f"{type(message).__name__}; declare it as class X(msgspec.Struct, frozen=True)"
        )
