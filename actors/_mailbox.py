"""An actor's mailbox entries: a message, and for an ask, the one-shot reply slot."""

from __future__ import annotations

from typing import Any

import anyio

__all__ = ()


class Reply:
    """The answer to one ask: set once by the actor, read once by the asker.

    ``abandoned`` is set when the asker stopped waiting (timeout, cancellation): the actor
    then skips the message rather than doing work nobody will see.
    """

    __slots__ = ("_error", "_event", "_value", "abandoned")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._value: Any = None
        self._error: BaseException | None = None
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


class Envelope:
    """A message in a mailbox; ``reply`` is ``None`` for a tell."""

    __slots__ = ("message", "reply")

    def __init__(self, message: Any, reply: Reply | None) -> None:
        self.message = message
        self.reply = reply
