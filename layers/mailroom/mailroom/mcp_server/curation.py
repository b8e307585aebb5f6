"""The curated face of every API operation as an MCP tool: its name, a description written for a
model (what it does, when to use it), and its gate class.

One row per operation, keyed by ``"METHOD /path"`` exactly as in the OpenAPI document. A new
endpoint needs one row here (``tests/unit/test_mcp_tools.py`` fails for an operation without
one). Gate classes:

* ``R`` read: changes nothing; always offered.
* ``W`` write: creates or changes; off when ``MAILROOM_MCP_READ_ONLY=true``.
* ``D`` destructive or costly (deletes, purges, confirmations, migrations, bulk operations, token
  creation): offered only with ``MAILROOM_MCP_ALLOW_DESTRUCTIVE=true`` and called only with a
  ``confirm`` argument equal to the target. The target is the last path parameter unless the row
  names one: ``"body.<field>"`` (e.g. the new token's name) or ``"tool"`` (a batch with no single
  target: confirm with the tool's own name).

What the operation returns comes from its OpenAPI summary and description, appended by
``tools.py``: keep the text here to when and why a model should pick the tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Gate(StrEnum):
    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"


R, W, D = Gate.READ, Gate.WRITE, Gate.DESTRUCTIVE


@dataclass(frozen=True, slots=True)
class Curated:
    name: str
    gate: Gate
    description: str
    confirm: str | None = None  # what ``confirm`` must equal: None (last path parameter), body.<f>, tool


# One row per operation, a second line when the text needs it: keep it a table.
# fmt: off
_ROWS: tuple[tuple[str, str, Gate, str] | tuple[str, str, Gate, str, str], ...] = (
    # --- the token and the organization ---
    ("GET /api/v1/me", "get_token_info", R, "Check which ops token or API key this is and its scopes."),
    ("GET /api/v1/account", "get_account", R, "See the organization's usage against its limits."),
    ("POST /api/v1/tokens", "create_ops_token", D, "Mint a new ops token (shown once).", "body.name"),
    ("GET /api/v1/tokens", "list_ops_tokens", R, "List the organization's ops tokens (never secrets)."),
    ("DELETE /api/v1/tokens/{token_id}", "revoke_ops_token", D, "Revoke an ops token for good."),
    ("GET /api/v1/audit-log", "list_audit_log", R, "Find who changed what, and when."),
    # --- domains ---
    ("GET /api/v1/domains", "list_domains", R, "List the organization's sending/receiving domains."),
    ("POST /api/v1/domains", "create_domain", W, "Add a domain; then publish its DNS records."),
    ("POST /api/v1/domains:bulk-add", "bulk_add_domains", D, "Add many domains at once.", "tool"),
    ("GET /api/v1/domains/{domain_id}", "get_domain", R, "Read one domain and its verification state."),
    ("PATCH /api/v1/domains/{domain_id}", "update_domain", W, "Change a domain's settings or limits."),
    ("DELETE /api/v1/domains/{domain_id}", "delete_domain", D, "Delete a domain that has no mailboxes."),
    ("GET /api/v1/domains/{domain_id}/dns-requirements", "get_domain_dns_records", R,
     "Get the exact DNS records to publish for a domain."),
    ("POST /api/v1/domains/{domain_id}/dns-recheck", "recheck_domain_dns", W,
     "Re-verify DNS after the user published records."),
    ("GET /api/v1/dns-checks/{check_id}", "get_dns_check", R, "Read the outcome of a DNS recheck."),
    ("PATCH /api/v1/domains/{domain_id}/catch-all", "set_domain_catch_all", W,
     "Route mail for unknown addresses of a domain to one mailbox, or stop doing so."),
    ("PATCH /api/v1/domains/{domain_id}/note", "set_domain_note", W, "Attach a free-text note to a domain."),
    ("POST /api/v1/domains/{domain_id}/dkim:retry", "rotate_domain_dkim", W,
     "Rotate a domain's DKIM key (new DNS records follow)."),
    ("GET /api/v1/domains/{domain_id}/spam-metrics", "get_domain_spam_metrics", R,
     "Inspect a domain's daily sent/bounce/complaint counters."),
    ("GET /api/v1/domains/{domain_id}/spam-metrics/summary", "get_domain_spam_summary", R,
     "Check a domain's bounce and complaint rates over a window."),
    # --- mailboxes ---
    ("POST /api/v1/mailboxes/invites", "invite_mailbox_user", W,
     "Invite a person to pick their own password for a new mailbox."),
    ("POST /api/v1/mailboxes/invites:bulk", "bulk_invite_mailbox_users", D,
     "Create many invites at once.", "tool"),
    ("GET /api/v1/mailboxes/invites/{invite_id}", "get_mailbox_invite", R,
     "Check whether an invite was used."),
    ("GET /api/v1/mailboxes", "list_mailboxes", R, "List hosted mailboxes (filter, page)."),
    ("POST /api/v1/mailboxes", "create_mailbox", W, "Create a hosted mailbox with a password."),
    ("POST /api/v1/mailboxes:bulk", "bulk_create_mailboxes", D, "Create many mailboxes at once.", "tool"),
    ("GET /api/v1/mailboxes/{mailbox_id}", "get_mailbox", R, "Read one mailbox's settings and usage."),
    ("PATCH /api/v1/mailboxes/{mailbox_id}", "update_mailbox", W, "Change a mailbox's name, quota or flags."),
    ("POST /api/v1/mailboxes/{mailbox_id}/password", "set_mailbox_password", W, "Set a mailbox's password."),
    ("PATCH /api/v1/mailboxes/{mailbox_id}/note", "set_mailbox_note", W,
     "Attach a free-text note to a mailbox."),
    ("POST /api/v1/mailboxes/{mailbox_id}:pause", "pause_mailbox", W, "Stop a mailbox from sending."),
    ("POST /api/v1/mailboxes/{mailbox_id}:resume", "resume_mailbox", W, "Let a paused mailbox send again."),
    ("GET /api/v1/mailboxes/{mailbox_id}/forwarding", "get_mailbox_forwarding", R,
     "See where a mailbox forwards its mail."),
    ("PUT /api/v1/mailboxes/{mailbox_id}/forwarding", "set_mailbox_forwarding", W,
     "Replace a mailbox's forwarding targets."),
    ("POST /api/v1/mailboxes/{mailbox_id}/message-tokens", "create_message_token", D,
     "Mint a token that reads and sends as one mailbox (shown once)."),
    ("GET /api/v1/mailboxes/{mailbox_id}/message-tokens", "list_message_tokens", R,
     "List a mailbox's message tokens (never secrets)."),
    ("DELETE /api/v1/message-tokens/{token_id}", "revoke_message_token", D,
     "Revoke a message token for good."),
    ("GET /api/v1/messages/_ping", "check_message_token", R,
     "Check this message token: its mailbox, scopes and whether it can send now."),
    ("POST /api/v1/mailboxes/{mailbox_id}:delete-intent", "start_mailbox_deletion", D,
     "First step of deleting a mailbox and all its mail; confirm_mailbox_deletion finishes it."),
    ("POST /api/v1/delete-intents/{intent_id}:confirm", "confirm_mailbox_deletion", D,
     "Delete the mailbox and all its mail now. Irreversible."),
    ("GET /api/v1/delete-intents/{intent_id}", "get_mailbox_deletion", R,
     "Follow a mailbox deletion's progress."),
    # --- aliases ---
    ("GET /api/v1/aliases", "list_aliases", R, "List address aliases."),
    ("POST /api/v1/aliases", "create_alias", W, "Create an alias that delivers to mailboxes or addresses."),
    ("GET /api/v1/aliases/{alias_id}", "get_alias", R, "Read one alias."),
    ("PATCH /api/v1/aliases/{alias_id}", "update_alias", W, "Change an alias's targets or state."),
    ("DELETE /api/v1/aliases/{alias_id}", "delete_alias", D, "Delete an alias."),
    # --- sign-in (no token needed by the API) ---
    ("POST /api/v1/auth/mailbox-token", "sign_in_as_mailbox", D,
     "Trade a mailbox's address and password for a message token.", "body.address"),
    ("POST /api/v1/auth/invites:redeem", "redeem_mailbox_invite", W,
     "Redeem an invite code with a password."),
    # --- webhooks ---
    ("GET /api/v1/webhooks", "list_webhooks", R, "List webhook endpoints."),
    ("POST /api/v1/webhooks", "create_webhook", W,
     "Get events (mail received, delivered, ...) POSTed to a URL."),
    ("GET /api/v1/webhooks/{webhook_id}", "get_webhook", R, "Read one webhook."),
    ("PATCH /api/v1/webhooks/{webhook_id}", "update_webhook", W, "Change a webhook's URL, events or state."),
    ("DELETE /api/v1/webhooks/{webhook_id}", "delete_webhook", D, "Delete a webhook."),
    ("POST /api/v1/webhooks/{webhook_id}:rotate-secret", "rotate_webhook_secret", W,
     "Replace a webhook's signing secret."),
    ("POST /api/v1/webhooks/{webhook_id}:test", "test_webhook", W, "Send a test event to check a receiver."),
    ("GET /api/v1/webhooks/{webhook_id}/deliveries", "list_webhook_deliveries", R,
     "Debug a webhook: its recent deliveries and attempts."),
    ("GET /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}", "get_webhook_delivery", R,
     "Read one delivery and its attempts."),
    ("POST /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}:retry", "retry_webhook_delivery", W,
     "Deliver one failed event again now."),
    ("POST /api/v1/webhooks/{webhook_id}:replay", "replay_webhook_events", W,
     "Re-send events a webhook missed since a time."),
    # --- a mailbox's mail (message tokens) ---
    ("GET /api/v1/messages", "list_messages", R,
     "Search this mailbox's messages by folder, sender, subject, dates, flags."),
    ("POST /api/v1/messages:bulk", "bulk_update_messages", D,
     "Apply one action (move, mark, label, delete) to up to 100 messages.", "tool"),
    ("GET /api/v1/messages/folders", "list_folders", R, "List folders with unread counts."),
    ("POST /api/v1/messages/folders", "create_folder", W, "Create a custom folder."),
    ("POST /api/v1/messages/folders:empty", "empty_folder", D,
     "Permanently delete mail in Trash or Spam.", "body.folder"),
    ("PATCH /api/v1/messages/folders/{path}", "rename_folder", W, "Rename a custom folder."),
    ("DELETE /api/v1/messages/folders/{path}", "delete_folder", D, "Delete an empty custom folder."),
    ("GET /api/v1/messages/blocked-senders", "list_blocked_senders", R, "List senders this mailbox refuses."),
    ("POST /api/v1/messages/blocked-senders", "block_sender", W,
     "Refuse future mail from an address or domain."),
    ("DELETE /api/v1/messages/blocked-senders/{pattern}", "unblock_sender", D,
     "Accept a blocked sender again."),
    ("GET /api/v1/messages/{message_id}", "get_message", R, "Read one message in full (text and HTML)."),
    ("PATCH /api/v1/messages/{message_id}", "update_message", W,
     "Mark read/unread, flag, or label a message."),
    ("DELETE /api/v1/messages/{message_id}", "delete_message", D,
     "Move a message to Trash; in Trash, delete it for good."),
    ("POST /api/v1/messages/{message_id}:move", "move_message", W, "File a message in another folder."),
    ("POST /api/v1/messages/{message_id}:spam", "report_spam", W, "Report a message as spam."),
    ("POST /api/v1/messages/{message_id}:ham", "report_not_spam", W, "Rescue a message from Spam."),
    ("GET /api/v1/messages/{message_id}/raw", "get_raw_message", R,
     "Get the exact MIME source, e.g. to check headers or authentication results."),
    ("GET /api/v1/messages/{message_id}/attachments", "list_attachments", R, "List a message's attachments."),
    ("GET /api/v1/messages/{message_id}/attachments/{index}", "get_attachment", R,
     "Download one attachment's bytes."),
    ("GET /api/v1/threads", "list_threads", R, "Browse conversations, most recent first."),
    ("GET /api/v1/threads/{thread_id}", "get_thread", R, "Read a whole conversation in order."),
    ("POST /api/v1/messages/send", "send_message", W,
     "Send an email as this mailbox (new, or a reply when in_reply_to is set)."),
    ("GET /api/v1/messages/{uid}/reply", "prepare_reply", R,
     "Get recipients, subject and quoting for a reply, to pass to send_message."),
    ("GET /api/v1/messages/{uid}/reply-all", "prepare_reply_all", R,
     "Like prepare_reply, addressed to everyone on the message."),
    ("GET /api/v1/messages/{uid}/forward", "prepare_forward", R,
     "Get subject, body and attachments for a forward, to pass to send_message."),
    # --- suppressions ---
    ("GET /api/v1/suppressions", "list_suppressions", R,
     "List addresses mail is not sent to (bounces, complaints)."),
    ("GET /api/v1/suppressions/{address}", "get_suppression", R, "Check why mail to an address is not sent."),
    ("DELETE /api/v1/suppressions/{address}", "delete_suppression", D,
     "Allow sending to a suppressed address again."),
    # --- migrations ---
    ("POST /api/v1/migrations/bulk/preview", "preview_bulk_migration", R,
     "Validate bulk migration rows without starting anything."),
    ("POST /api/v1/migrations/bulk", "start_bulk_migration", D, "Import many IMAP accounts at once.", "tool"),
    ("GET /api/v1/migrations/bulk", "list_bulk_migrations", R, "List bulk migration batches."),
    ("GET /api/v1/migrations/bulk/{batch_id}", "get_bulk_migration", R,
     "Follow a batch and each of its jobs."),
    ("DELETE /api/v1/migrations/bulk/{batch_id}", "delete_bulk_migration", D,
     "Delete a finished batch's record."),
    ("POST /api/v1/migrations/bulk/{batch_id}:cancel", "cancel_bulk_migration", D, "Stop a running batch."),
    ("POST /api/v1/migrations/bulk/{batch_id}:retry", "retry_bulk_migration", D,
     "Run a batch's failed jobs again."),
    ("POST /api/v1/migrations/bulk/{batch_id}:resume", "resume_bulk_migration", D,
     "Continue a paused batch."),
    ("PATCH /api/v1/migrations/bulk/{batch_id}/jobs/{job_id}/password",
     "update_bulk_migration_job_password", D, "Fix a failed job's source password."),
    ("POST /api/v1/migrations/test-connection", "test_migration_connection", R,
     "Check IMAP credentials and list folders before a migration; stores nothing."),
    ("GET /api/v1/migrations", "list_migrations", R, "List single-mailbox migrations."),
    ("POST /api/v1/migrations", "start_migration", D,
     "Import one IMAP account into a mailbox.", "body.mailbox_id"),
    ("GET /api/v1/migrations/{migration_id}", "get_migration", R,
     "Follow a migration's per-folder progress."),
    ("DELETE /api/v1/migrations/{migration_id}", "delete_migration", D,
     "Delete a finished migration's record."),
    ("POST /api/v1/migrations/{migration_id}:cancel", "cancel_migration", D, "Stop a running migration."),
    ("POST /api/v1/migrations/{migration_id}:retry", "retry_migration", D, "Run a failed migration again."),
    # --- /api/v0: agent inboxes ---
    ("GET /api/v0/organizations", "get_organization", R, "See the organization's inbox and domain counts."),
    ("POST /api/v0/api-keys", "create_api_key", D,
     "Mint an organization-wide inai_ key (shown once).", "body.name"),
    ("GET /api/v0/api-keys", "list_api_keys", R, "List inai_ API keys (never secrets)."),
    ("DELETE /api/v0/api-keys/{keyId}", "revoke_api_key", D, "Revoke an API key for good."),
    ("POST /api/v0/inboxes", "create_inbox", W,
     "Create an agent inbox (an address that can send and receive)."),
    ("GET /api/v0/inboxes", "list_inboxes", R, "List agent inboxes."),
    ("GET /api/v0/inboxes/{inboxId}", "get_inbox", R, "Read one inbox."),
    ("PATCH /api/v0/inboxes/{inboxId}", "update_inbox", W, "Change an inbox's display name."),
    ("DELETE /api/v0/inboxes/{inboxId}", "delete_inbox", D, "Delete an inbox and all its mail."),
    ("POST /api/v0/domains", "create_inbox_domain", W, "Add a custom domain for inboxes."),
    ("GET /api/v0/domains", "list_inbox_domains", R, "List custom domains with their DNS records."),
    ("GET /api/v0/domains/{domainId}", "get_inbox_domain", R, "Read one custom domain and its records."),
    ("DELETE /api/v0/domains/{domainId}", "delete_inbox_domain", D, "Delete a custom domain."),
    ("POST /api/v0/domains/{domainId}/verify", "verify_inbox_domain", W,
     "Re-check a custom domain's DNS now."),
    ("POST /api/v0/webhooks", "create_inbox_webhook", W, "Subscribe a URL to inbox events."),
    ("GET /api/v0/webhooks", "list_inbox_webhooks", R, "List inbox webhooks."),
    ("GET /api/v0/webhooks/{webhookId}", "get_inbox_webhook", R, "Read one inbox webhook."),
    ("PATCH /api/v0/webhooks/{webhookId}", "update_inbox_webhook", W, "Change an inbox webhook."),
    ("DELETE /api/v0/webhooks/{webhookId}", "delete_inbox_webhook", D, "Delete an inbox webhook."),
    ("POST /api/v0/inboxes/{inboxId}/messages/send", "send_inbox_message", W,
     "Send a new email from an inbox."),
    ("GET /api/v0/inboxes/{inboxId}/messages", "list_inbox_messages", R,
     "List an inbox's sent and received messages, newest first."),
    ("GET /api/v0/inboxes/{inboxId}/messages/{messageId}", "get_inbox_message", R,
     "Read one inbox message in full."),
    ("PATCH /api/v0/inboxes/{inboxId}/messages/{messageId}", "label_inbox_message", W,
     "Add or remove labels on an inbox message."),
    ("POST /api/v0/inboxes/{inboxId}/messages/{messageId}/reply", "reply_to_inbox_message", W,
     "Reply to the sender, in the same thread."),
    ("POST /api/v0/inboxes/{inboxId}/messages/{messageId}/reply-all", "reply_all_to_inbox_message", W,
     "Reply to everyone on the message, in the same thread."),
    ("POST /api/v0/inboxes/{inboxId}/messages/{messageId}/forward", "forward_inbox_message", W,
     "Forward a message with its attachments."),
    ("GET /api/v0/inboxes/{inboxId}/messages/{messageId}/attachments/{attachmentId}",
     "get_inbox_attachment", R, "Get a short-lived download URL for an attachment."),
    ("GET /api/v0/inboxes/{inboxId}/threads", "list_inbox_threads", R, "List an inbox's conversations."),
    ("GET /api/v0/inboxes/{inboxId}/threads/{threadId}", "get_inbox_thread", R,
     "Read a conversation in order."),
    ("DELETE /api/v0/inboxes/{inboxId}/threads/{threadId}", "delete_inbox_thread", D,
     "Delete a conversation and its messages."),
    # --- address verification and SMTP relays (issue 17) ---
    ("POST /api/v1/verify", "verify_email_address", W,
     "Check whether an address can receive mail before sending to it (uses a credit)."),
    ("GET /api/v1/verify/credits", "get_verification_credits", R, "See how many verifications are left."),
    ("POST /api/v1/verify/bulk", "start_bulk_verification", D,
     "Verify a whole list of addresses (uses a credit each).", "tool"),
    ("GET /api/v1/verify/bulk", "list_bulk_verifications", R, "List bulk verification jobs."),
    ("POST /api/v1/verify/bulk/uploads", "create_verification_upload", W,
     "Get an upload URL for a CSV too large to pass inline."),
    ("GET /api/v1/verify/bulk/{verify_job_id}", "get_bulk_verification", R,
     "Follow a bulk verification job's progress."),
    ("DELETE /api/v1/verify/bulk/{verify_job_id}", "delete_bulk_verification", D,
     "Delete a bulk verification job and its results."),
    ("GET /api/v1/verify/bulk/{verify_job_id}/download", "download_bulk_verification", R,
     "Get a finished job's results."),
    ("POST /api/v1/verify/bulk/{verify_job_id}/cancel", "cancel_bulk_verification", D,
     "Stop a running bulk verification job."),
    ("GET /api/v1/smtp", "list_smtp_relays", R, "List the SMTP relays outgoing mail can go through."),
    ("PUT /api/v1/smtp", "set_smtp_relay", W,
     "Create or change an SMTP relay for some sender domains."),
    ("DELETE /api/v1/smtp/{relay_id}", "delete_smtp_relay", D, "Delete an SMTP relay."),
    ("POST /api/v1/smtp:test", "test_smtp_relay", W,
     "Check that an SMTP relay accepts a connection and login."),
    ("GET /api/v1/smtp:test-status/{test_job_id}", "get_smtp_relay_test", R,
     "Read the outcome of an SMTP relay test."),
    # --- rules (issue 13) ---
    ("GET /api/v1/mailboxes/{mailbox_id}/rules", "list_mailbox_rules", R,
     "List a mailbox's filter rules in the order they run."),
    ("POST /api/v1/mailboxes/{mailbox_id}/rules", "create_mailbox_rule", W,
     "Add a rule that files, labels, forwards or answers new mail."),
    ("PATCH /api/v1/mailboxes/{mailbox_id}/rules/reorder", "reorder_mailbox_rules", W,
     "Change the order a mailbox's rules run in."),
    ("GET /api/v1/mailboxes/{mailbox_id}/rules/{rule_id}", "get_mailbox_rule", R, "Read one rule."),
    ("PUT /api/v1/mailboxes/{mailbox_id}/rules/{rule_id}", "replace_mailbox_rule", W,
     "Replace a rule's conditions and actions."),
    ("DELETE /api/v1/mailboxes/{mailbox_id}/rules/{rule_id}", "delete_mailbox_rule", D, "Delete a rule."),
    ("GET /api/v1/mailboxes/{mailbox_id}/logs", "list_mailbox_rule_logs", R,
     "Debug rules: which rule did what to which message."),
    ("GET /api/v1/mailboxes/{mailbox_id}/auto-reply", "get_auto_reply", R,
     "See a mailbox's auto-reply (vacation) settings."),
    ("PUT /api/v1/mailboxes/{mailbox_id}/auto-reply", "set_auto_reply", W,
     "Turn a mailbox's auto-reply (vacation message) on, off, or change it."),
    ("GET /api/v1/mailboxes/{mailbox_id}/sieve", "get_sieve_script", R,
     "Get a mailbox's rules and auto-reply as one Sieve script."),
    ("PUT /api/v1/mailboxes/{mailbox_id}/sieve", "replace_sieve_script", D,
     "Replace ALL of a mailbox's rules and auto-reply with a Sieve script."),
    # --- events (issue 19) ---
    ("GET /api/v1/events", "list_events", R,
     "See what happened lately (mail received, delivered, bounced, ...), newest first."),
    ("GET /api/v1/events/{event_id}", "get_event", R, "Read one event with its data."),
    # --- DNS providers (issue 21) ---
    ("POST /api/v1/cloudflare/validate-token", "check_cloudflare_token", R,
     "Check a Cloudflare API token's access; stores nothing."),
    ("POST /api/v1/cloudflare/zones", "list_cloudflare_zones", R,
     "List the zones a Cloudflare token can see."),
    ("POST /api/v1/cloudflare/connect", "connect_cloudflare_zone", W,
     "Link a domain to its Cloudflare zone so its DNS records can be set for the user."),
    ("POST /api/v1/cloudflare/preview", "preview_cloudflare_dns", W,
     "Compute the DNS changes a domain needs in Cloudflare, to show the user before applying."),
    ("POST /api/v1/cloudflare/apply", "apply_cloudflare_dns", D,
     "Write a preview's DNS changes to Cloudflare.", "body.preview_id"),
    ("GET /api/v1/cloudflare/tokens", "list_cloudflare_tokens", R,
     "List stored Cloudflare tokens (never secrets)."),
    ("DELETE /api/v1/cloudflare/tokens/{cloudflare_token_id}", "delete_cloudflare_token", D,
     "Delete a stored Cloudflare token."),
    ("POST /api/v1/route53/zones", "list_route53_zones", R,
     "List the Route 53 hosted zones Mailroom can see."),
    ("POST /api/v1/route53/connect", "connect_route53_zone", W,
     "Link a domain to its Route 53 hosted zone so its DNS records can be set for the user."),
    ("POST /api/v1/route53/preview", "preview_route53_dns", W,
     "Compute the DNS changes a domain needs in Route 53, to show the user before applying."),
    ("POST /api/v1/route53/apply", "apply_route53_dns", D,
     "Write a preview's DNS changes to Route 53.", "body.preview_id"),
)
# fmt: on

CURATED: dict[tuple[str, str], Curated] = {}
for _row in _ROWS:
    _method, _path = _row[0].split(" ", 1)
    CURATED[(_method, _path)] = Curated(_row[1], _row[2], _row[3], _row[4] if len(_row) == 5 else None)
