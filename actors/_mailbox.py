"""An actor's mailbox entries: a message, and for an ask, the one-shot reply slot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

__all__ = ()


class Reply:
    """The answer to one ask: set once by the actor, read once by the asker.

    When the asker stops waiting (its timeout, or a cancellation from outside such as a
    job's timeout) it calls :meth:`abandon`: a message still queued is then skipped, and
    the handler already running it is cancelled, so no work goes on that nobody will see
    and nothing queues behind it.
    """

    __slots__ = ("_cancel", "_error", "_event", "_value", "abandoned")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self._cancel: Callable[[], None] | None = None
        self.abandoned = False

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def set_result(self, value: Any) -> None:
        if not self.done:
            self._value = value
            self._event.set()

    def set_error(self, error: BaseException) -> None:
        if not self.done:
            self._error = error
            self._event.set()

    async def wait(self) -> Any:
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value

    def handling(self, cancel: Callable[[], None] | None) -> None:
        """Called by the actor's cell: ``cancel`` stops the handler now running this
        message (None once it is done)."""
        self._cancel = cancel

    def abandon(self) -> None:
        """The asker gave up: skip the message if it is queued, cancel its handler if it
        runs. Nothing happens once the reply is set."""
        if self.done:
            return
        self.abandoned = True
        if self._cancel is not None:
            self._cancel()


class Envelope:
    """A message in a mailbox; ``reply`` is ``None`` for a tell."""

    __slots__ = ("message", "reply")

    def __init__(self, message: Any, reply: Reply | None) -> None:
        self.message = message
        self.reply = reply
