"""The notifier actor: sends notices through an app's Lark client, as text or as a card."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from actors.jobs.clients import LarkClientPool, MissingSecretError
from actors.jobs.messages import SendNotice, Severity
from actors.lark import LarkError
from actors.runtime import Actor, ActorRef

__all__ = ("MessagingClient", "NotifierActor", "NotifierClient", "render_card")

_TEMPLATES: dict[Severity, str] = {"info": "blue", "warning": "orange", "critical": "red"}


def render_card(
    title: str, body: str, severity: Severity, link: str | None = None
) -> dict[str, Any]:
    """A Lark interactive card: a coloured header, a markdown body and, with ``link``, a
    button that opens it."""
    elements: list[dict[str, Any]] = [
        {"tag": "div", "text": {"tag": "lark_md", "content": body}}
    ]
    if link:
        elements.append({
            "tag": "action",
            "actions": [{
                "tag": "button",
                "text": {"tag": "plain_text", "content": "Authorise again"},
                "type": "primary",
                "url": link,
            }],
        })
    return {
        "config": {"wide_screen_mode": True},
        "header": {
            "title": {"tag": "plain_text", "content": title},
            "template": _TEMPLATES[severity],
        },
        "elements": elements,
    }


class MessagingClient(Protocol):
    """What :class:`~actors.jobs.expiry.TokenExpiryMonitor` sends notices through."""

    async def send_notice(self, notice: SendNotice) -> str:
        """Send ``notice``; answer the Lark ``message_id``; raise when it was not sent."""
        ...


class NotifierActor(Actor[SendNotice]):
    """Answers :class:`SendNotice` with the ``message_id``.

    A Lark refusal or a missing secret goes back to the asker without restarting the
    actor: it holds no state such an error could spoil.
    """

    def __init__(self, clients: LarkClientPool, fmt: Literal["text", "card"] | str) -> None:
        self._clients = clients
        self._format = fmt

    def crashes_on(self, error: Exception) -> bool:
        return not isinstance(error, LarkError | MissingSecretError)

    async def receive(self, message: SendNotice) -> Any:
        client = await self._clients.get(message.app_id)
        if self._format == "card":
            card = render_card(message.title, message.body, message.severity, message.link)
            receipt = await client.send_card(
                message.receive_id, card, idempotency_key=message.idempotency_key
            )
        else:
            receipt = await client.send_text(
                message.receive_id,
                f"{message.title}\n{message.body}",
                idempotency_key=message.idempotency_key,
            )
        return receipt.message_id


class NotifierClient:
    """A :class:`MessagingClient` that sends through the notifier actor."""

    def __init__(self, notifier: ActorRef[SendNotice], timeout: float | None = 60.0) -> None:
        self._notifier = notifier
        self._timeout = timeout

    async def send_notice(self, notice: SendNotice) -> str:
        message_id: str = await self._notifier.ask(notice, timeout=self._timeout)
        return message_id
