"""One router per API resource. ``all_routers`` is what the OpenAPI document is built from."""

from __future__ import annotations

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    from mailroom.api.routers import (
        account,
        aliases,
        audit,
        auth,
        automation,
        billing,
        calendar,
        cloudflare,
        compose,
        contacts,
        delete_intents,
        domains,
        invites,
        mailbox_data,
        mailboxes,
        mailtrigger_mailbox,
        message_tokens,
        messages,
        migration_batches,
        migrations,
        route53,
        rules,
        scheduled,
        send,
        smtp,
        support,
        suppressions,
        task_configs,
        tickets,
        tokens,
        verify,
        webhooks,
    )
    from mailroom.api.routers import events as event_log
    from mailroom.api.routers.v0 import api_keys as v0_api_keys
    from mailroom.api.routers.v0 import domains as v0_domains
    from mailroom.api.routers.v0 import drafts as v0_drafts
    from mailroom.api.routers.v0 import inboxes as v0_inboxes
    from mailroom.api.routers.v0 import messages as v0_messages
    from mailroom.api.routers.v0 import organizations as v0_organizations
    from mailroom.api.routers.v0 import threads as v0_threads
    from mailroom.api.routers.v0 import webhooks as v0_webhooks

    return [
        account.router,
        tokens.router,
        audit.router,
        domains.router,
        invites.router,
        mailboxes.router,
        mailtrigger_mailbox.router,  # /api/v1/mailbox: the MailTrigger view (issue 14)
        message_tokens.mailbox_router,
        message_tokens.router,
        rules.router,
        # The automation model (issue 14): a mailbox's data documents.
        mailbox_data.router,
        delete_intents.mailbox_router,
        delete_intents.router,
        aliases.router,
        auth.router,
        webhooks.router,
        automation.router,  # /api/v1/rules, /actions, /routes (docs/automation.md)
        # Before messages: /messages/contacts and /messages/calendar are not message ids.
        contacts.router,
        contacts.groups_router,
        calendar.router,
        messages.router,
        messages.threads_router,
        send.router,
        suppressions.router,
        migration_batches.router,  # before migrations: /migrations/bulk is not a migration id
        migrations.router,
        v0_organizations.router,
        v0_api_keys.router,
        v0_inboxes.router,
        v0_domains.router,
        v0_webhooks.router,
        v0_messages.router,
        v0_threads.router,
        verify.router,
        smtp.router,
        event_log.router,
        cloudflare.router,
        route53.router,
        compose.router,
        v0_drafts.router,
        scheduled.router,
        tickets.router,
        support.router,
        billing.router,
        task_configs.router,
    ]
