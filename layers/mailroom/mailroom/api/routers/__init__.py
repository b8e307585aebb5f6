"""One router per API resource. ``all_routers`` is what the OpenAPI document is built from."""

from __future__ import annotations

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    from mailroom.api.routers import (
        account,
        aliases,
        audit,
        auth,
        delete_intents,
        domains,
        invites,
        mailboxes,
        message_tokens,
        messages,
        send,
        suppressions,
        tokens,
        webhooks,
    )

    return [
        account.router,
        tokens.router,
        audit.router,
        domains.router,
        invites.router,
        mailboxes.router,
        message_tokens.mailbox_router,
        message_tokens.router,
        delete_intents.mailbox_router,
        delete_intents.router,
        aliases.router,
        auth.router,
        webhooks.router,
        messages.router,
        messages.threads_router,
        send.router,
        suppressions.router,
    ]
