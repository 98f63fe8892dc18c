"""The event bus: the kernel's events to listeners and subscriber streams (loop thread).

Building an event costs time on the hot path, so callers check :attr:`EventBus.observed`
first and build nothing while nobody listens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..observe.events import Event

__all__ = ("EventBus",)

log = logging.getLogger("scheduler")


class EventBus:
    """Delivers each event to every listener, then to every subscriber stream."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Event], None]] = []
        self._subscribers: list[MemoryObjectSendStream[Event]] = []
        self.observed = False
        self.dropped = 0

    def add_listener(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns the unsubscriber."""
        self._listeners.append(callback)
        self._refresh()

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)
                self._refresh()

        return remove

    def subscribe(self, max_buffer: int) -> MemoryObjectReceiveStream[Event]:
        """A stream of every event from now on; a full buffer drops (and counts) events."""
        send, receive = anyio.create_memory_object_stream[Event](max_buffer)
        self._subscribers.append(send)
        self._refresh()
        return receive

    def emit(self, event: Event) -> None:
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:
                log.exception("event listener %r failed on %s", callback, type(event).__name__)
        if self._subscribers:
            for stream in list(self._subscribers):
                try:
                    stream.send_nowait(event)
                except anyio.WouldBlock:
                    self.dropped += 1
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._subscribers.remove(stream)
                    stream.close()
                    self._refresh()

    def close_streams(self) -> None:
        """End every subscriber stream (at shutdown); listeners stay."""
        for stream in self._subscribers:
            stream.close()
        self._subscribers.clear()
        self._refresh()

    def _refresh(self) -> None:
        self.observed = bool(self._listeners or self._subscribers)
