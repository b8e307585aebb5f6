"""A client for the agentmail v0 API, written from ``agentmail-v0-api.txt`` alone: a base URL
(``https://your-instance.com/api/v0``), ``Authorization: Bearer <API key>`` and one method per
endpoint of the page. Nothing else: no Mailroom headers, no idempotency keys, no retries.

Methods return the ``httpx.Response`` so callers can check status codes and bodies exactly. Request
bodies hold only what the caller gave (``None`` arguments are left out).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict
from urllib.parse import quote

import httpx

Recipients = str | list[str]


class Attachment(TypedDict):
    filename: str
    content_type: str
    content: NotRequired[str]  # base64
    url: NotRequired[str]


def _segment(value: str) -> str:
    return quote(value, safe="")


def _body(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _paging(page: int | None, page_size: int | None) -> dict[str, int]:
    return _body(page=page, page_size=page_size)


class AgentMailClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AgentMailClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Organizations

    def get_organization(self) -> httpx.Response:
        return self.http.get("/organizations")

    # Inboxes

    def create_inbox(
        self,
        username: str,
        *,
        domain: str | None = None,
        display_name: str | None = None,
        client_id: str | None = None,
    ) -> httpx.Response:
        return self.http.post(
            "/inboxes",
            json=_body(username=username, domain=domain, display_name=display_name, client_id=client_id),
        )

    def list_inboxes(self, *, page: int | None = None, page_size: int | None = None) -> httpx.Response:
        return self.http.get("/inboxes", params=_paging(page, page_size))

    def get_inbox(self, inbox_id: str) -> httpx.Response:
        return self.http.get(f"/inboxes/{_segment(inbox_id)}")

    def update_inbox(self, inbox_id: str, *, display_name: str | None = None) -> httpx.Response:
        return self.http.patch(f"/inboxes/{_segment(inbox_id)}", json=_body(display_name=display_name))

    def delete_inbox(self, inbox_id: str) -> httpx.Response:
        return self.http.delete(f"/inboxes/{_segment(inbox_id)}")

    # Messages

    def send_message(
        self,
        inbox_id: str,
        *,
        to: Recipients,
        cc: Recipients | None = None,
        bcc: Recipients | None = None,
        reply_to: Recipients | None = None,
        subject: str | None = None,
        text: str | None = None,
        html: str | None = None,
        labels: list[str] | None = None,
        attachments: list[Attachment] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.http.post(
            f"/inboxes/{_segment(inbox_id)}/messages/send",
            json=_body(
                to=to,
                cc=cc,
                bcc=bcc,
                reply_to=reply_to,
                subject=subject,
                text=text,
                html=html,
                labels=labels,
                attachments=attachments,
                headers=headers,
            ),
        )

    def list_messages(
        self, inbox_id: str, *, page: int | None = None, page_size: int | None = None
    ) -> httpx.Response:
        return self.http.get(f"/inboxes/{_segment(inbox_id)}/messages", params=_paging(page, page_size))

    def get_message(self, inbox_id: str, message_id: str) -> httpx.Response:
        return self.http.get(f"/inboxes/{_segment(inbox_id)}/messages/{_segment(message_id)}")

    def update_message(self, inbox_id: str, message_id: str, *, labels: list[str]) -> httpx.Response:
        return self.http.patch(
            f"/inboxes/{_segment(inbox_id)}/messages/{_segment(message_id)}", json={"labels": labels}
        )

    def reply(
        self,
        inbox_id: str,
        message_id: str,
        *,
        text: str | None = None,
        html: str | None = None,
        cc: Recipients | None = None,
        labels: list[str] | None = None,
        attachments: list[Attachment] | None = None,
    ) -> httpx.Response:
        return self.http.post(
            f"/inboxes/{_segment(inbox_id)}/messages/{_segment(message_id)}/reply",
            json=_body(text=text, html=html, cc=cc, labels=labels, attachments=attachments),
        )

    def reply_all(
        self,
        inbox_id: str,
        message_id: str,
        *,
        text: str | None = None,
        html: str | None = None,
        cc: Recipients | None = None,
        labels: list[str] | None = None,
        attachments: list[Attachment] | None = None,
    ) -> httpx.Response:
        return self.http.post(
            f"/inboxes/{_segment(inbox_id)}/messages/{_segment(message_id)}/reply-all",
            json=_body(text=text, html=html, cc=cc, labels=labels, attachments=attachments),
        )

    def forward(
        self,
        inbox_id: str,
        message_id: str,
        *,
        to: Recipients,
        cc: Recipients | None = None,
        text: str | None = None,
        html: str | None = None,
        labels: list[str] | None = None,
    ) -> httpx.Response:
        return self.http.post(
            f"/inboxes/{_segment(inbox_id)}/messages/{_segment(message_id)}/forward",
            json=_body(to=to, cc=cc, text=text, html=html, labels=labels),
        )

    def get_attachment(self, inbox_id: str, message_id: str, attachment_id: str) -> httpx.Response:
        return self.http.get(
            f"/inboxes/{_segment(inbox_id)}/messages/{_segment(message_id)}"
            f"/attachments/{_segment(attachment_id)}"
        )

    # Threads

    def list_threads(
        self, inbox_id: str, *, page: int | None = None, page_size: int | None = None
    ) -> httpx.Response:
        return self.http.get(f"/inboxes/{_segment(inbox_id)}/threads", params=_paging(page, page_size))

    def get_thread(self, inbox_id: str, thread_id: str) -> httpx.Response:
        return self.http.get(f"/inboxes/{_segment(inbox_id)}/threads/{_segment(thread_id)}")

    def delete_thread(self, inbox_id: str, thread_id: str) -> httpx.Response:
        return self.http.delete(f"/inboxes/{_segment(inbox_id)}/threads/{_segment(thread_id)}")

    # Domains

    def create_domain(self, domain: str, *, feedback_enabled: bool | None = None) -> httpx.Response:
        return self.http.post("/domains", json=_body(domain=domain, feedback_enabled=feedback_enabled))

    def list_domains(self, *, page: int | None = None, page_size: int | None = None) -> httpx.Response:
        return self.http.get("/domains", params=_paging(page, page_size))

    def get_domain(self, domain_id: str) -> httpx.Response:
        return self.http.get(f"/domains/{_segment(domain_id)}")

    def delete_domain(self, domain_id: str) -> httpx.Response:
        return self.http.delete(f"/domains/{_segment(domain_id)}")

    def verify_domain(self, domain_id: str) -> httpx.Response:
        return self.http.post(f"/domains/{_segment(domain_id)}/verify")

    # Webhooks

    def create_webhook(
        self,
        url: str,
        event_types: list[str],
        *,
        inbox_ids: list[str] | None = None,
        client_id: str | None = None,
    ) -> httpx.Response:
        return self.http.post(
            "/webhooks",
            json=_body(url=url, event_types=event_types, inbox_ids=inbox_ids, client_id=client_id),
        )

    def list_webhooks(self, *, page: int | None = None, page_size: int | None = None) -> httpx.Response:
        return self.http.get("/webhooks", params=_paging(page, page_size))

    def get_webhook(self, webhook_id: str) -> httpx.Response:
        return self.http.get(f"/webhooks/{_segment(webhook_id)}")

    def update_webhook(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        event_types: list[str] | None = None,
        inbox_ids: list[str] | None = None,
        enabled: bool | None = None,
    ) -> httpx.Response:
        return self.http.patch(
            f"/webhooks/{_segment(webhook_id)}",
            json=_body(url=url, event_types=event_types, inbox_ids=inbox_ids, enabled=enabled),
        )

    def delete_webhook(self, webhook_id: str) -> httpx.Response:
        return self.http.delete(f"/webhooks/{_segment(webhook_id)}")

    # API keys

    def create_api_key(self, name: str) -> httpx.Response:
        return self.http.post("/api-keys", json={"name": name})

    def list_api_keys(self, *, page: int | None = None, page_size: int | None = None) -> httpx.Response:
        return self.http.get("/api-keys", params=_paging(page, page_size))

    def delete_api_key(self, key_id: str) -> httpx.Response:
        return self.http.delete(f"/api-keys/{_segment(key_id)}")
