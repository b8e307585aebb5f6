"""Every example of ``agentmail-v0-api.txt``, transcribed by hand: for each endpoint the method, the
path (relative to ``/api/v0``), the curl example's request body, the "Request Body" documentation
(where the page gives one) and the example response.

The values are the page's, verbatim (``"nk8x2j..."`` placeholders included): the checks in
``tests.support.agentmail_checks`` compare *shapes* (keys and JSON types) against them, and only the
values a request determines against what was sent. Two of the page's examples are not JSON:

- the PATCH message response ``{"message_id", "labels", "..."}``: the two keys, then "the rest of
  the message" (``MESSAGE_PATCH_OPEN``: any further key must be one of the full message's keys);
- ``"records": [...]`` of the domain list and get: a list of the records shown in full by the
  create example (``DOMAIN_RECORD``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = Any


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # relative to /api/v0, the page's ":name" placeholders kept
    example_request: JSON = None  # the curl example's -d body (None: no body)
    documented_request: JSON = None  # the "Request Body" block, comments dropped
    example_response: JSON = None  # None: "Returns 204 No Content"
    no_content: bool = False
    notes: list[str] = field(default_factory=list)


# --- Organizations -----------------------------------------------------------------------------

ORGANIZATION: dict[str, JSON] = {
    "org_id": "org_abc",
    "name": "My Org",
    "inbox_count": 5,
    "inbox_limit": 50,
    "domain_count": 2,
    "domain_limit": 10,
    "created_at": "2025-01-01T00:00:00.000Z",
    "updated_at": "2025-01-10T00:00:00.000Z",
}
GET_ORGANIZATION = Endpoint("GET", "/organizations", example_response=ORGANIZATION)

# --- Inboxes ---------------------------------------------------------------------------------------

INBOX_CREATED: dict[str, JSON] = {
    "inbox_id": "nk8x2j...",
    "email_address": "agent-1@yourdomain.com",
    "username": "agent-1",
    "domain": "yourdomain.com",
    "display_name": "Agent One",
    "client_id": "my-agent",
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-15T10:30:00.000Z",
}
INBOX: dict[str, JSON] = {
    "inbox_id": "nk8x2j...",
    "email_address": "agent-1@yourdomain.com",
    "username": "agent-1",
    "domain": "yourdomain.com",
    "display_name": "Agent One",
    "client_id": None,
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-15T10:30:00.000Z",
}
INBOX_PATCHED: dict[str, JSON] = {
    "inbox_id": "nk8x2j...",
    "email_address": "agent-1@yourdomain.com",
    "username": "agent-1",
    "domain": "yourdomain.com",
    "display_name": "Updated Name",
    "client_id": None,
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-15T12:00:00.000Z",
}
CREATE_INBOX = Endpoint(
    "POST",
    "/inboxes",
    example_request={"username": "agent-1", "display_name": "Agent One"},
    documented_request={
        "username": "agent-1",
        "domain": "yourdomain.com",
        "display_name": "Agent One",
        "client_id": "my-agent",
    },
    example_response=INBOX_CREATED,
)
LIST_INBOXES = Endpoint(
    "GET", "/inboxes", example_response={"data": [INBOX], "total": 1, "page": 1, "page_size": 20}
)
GET_INBOX = Endpoint("GET", "/inboxes/:inboxId", example_response=INBOX)
UPDATE_INBOX = Endpoint(
    "PATCH",
    "/inboxes/:inboxId",
    example_request={"display_name": "Updated Name"},
    documented_request={"display_name": "Updated Name"},
    example_response=INBOX_PATCHED,
)
DELETE_INBOX = Endpoint("DELETE", "/inboxes/:inboxId", no_content=True)

# --- Messages ----------------------------------------------------------------------------------

SENT = {"message_id": "msg_abc123", "thread_id": "thr_xyz789"}
SEND_MESSAGE = Endpoint(
    "POST",
    "/inboxes/:inboxId/messages/send",
    example_request={
        "to": "recipient@example.com",
        "subject": "Hello from agentmail",
        "text": "This is a test email.",
    },
    documented_request={
        "to": "recipient@example.com",
        "cc": "cc@example.com",
        "bcc": "bcc@example.com",
        "reply_to": "reply@example.com",
        "subject": "Hello",
        "text": "Plain text body",
        "html": "<h1>HTML body</h1>",
        "labels": ["important"],
        "attachments": [
            {
                "filename": "doc.pdf",
                "content_type": "application/pdf",
                "content": "<base64>",
                "url": "https://...",
            }
        ],
        "headers": {"X-Custom": "value"},
    },
    example_response=SENT,
)
MESSAGE_ITEM: dict[str, JSON] = {
    "inbox_id": "nk8x2j...",
    "thread_id": "thr_xyz789",
    "message_id": "msg_abc123",
    "direction": "outbound",
    "labels": [],
    "timestamp": "2025-01-15T10:32:00.000Z",
    "from": "Agent One <agent-1@yourdomain.com>",
    "to": ["recipient@example.com"],
    "cc": None,
    "subject": "Hello from agentmail",
    "preview": "This is a test email.",
    "size": 156,
}
LIST_MESSAGES = Endpoint(
    "GET",
    "/inboxes/:inboxId/messages",
    example_response={"data": [MESSAGE_ITEM], "total": 1, "page": 1, "page_size": 20},
)
MESSAGE: dict[str, JSON] = {
    "inbox_id": "nk8x2j...",
    "thread_id": "thr_xyz789",
    "message_id": "msg_abc123",
    "direction": "outbound",
    "labels": [],
    "timestamp": "2025-01-15T10:32:00.000Z",
    "from": "Agent One <agent-1@yourdomain.com>",
    "reply_to": None,
    "to": ["recipient@example.com"],
    "cc": None,
    "bcc": None,
    "subject": "Hello from agentmail",
    "preview": "This is a test email.",
    "text": "This is a test email.",
    "html": None,
    "in_reply_to": None,
    "references": None,
    "headers": {},
    "size": 156,
    "created_at": "2025-01-15T10:32:00.000Z",
    "updated_at": "2025-01-15T10:32:00.000Z",
}
GET_MESSAGE = Endpoint("GET", "/inboxes/:inboxId/messages/:messageId", example_response=MESSAGE)
# The page: {"message_id": "msg_abc123", "labels": [...], "..."} -- "..." is the rest of the message.
MESSAGE_PATCHED = {"message_id": "msg_abc123", "labels": ["important", "follow-up"]}
MESSAGE_PATCH_OPEN = True
UPDATE_MESSAGE = Endpoint(
    "PATCH",
    "/inboxes/:inboxId/messages/:messageId",
    example_request={"labels": ["important", "follow-up"]},
    documented_request={"labels": ["important", "follow-up"]},
    example_response=MESSAGE_PATCHED,
)
REPLY = Endpoint(
    "POST",
    "/inboxes/:inboxId/messages/:messageId/reply",
    example_request={"text": "Thanks for your email!"},
    documented_request={
        "text": "Thanks for your email!",
        "html": "<p>Thanks!</p>",
        "cc": "cc@example.com",
        "labels": ["replied"],
        "attachments": [{"filename": "doc.pdf", "content_type": "application/pdf", "content": "<base64>"}],
    },
    example_response={"message_id": "msg_reply123", "thread_id": "thr_xyz789"},
)
REPLY_ALL = Endpoint(
    "POST",
    "/inboxes/:inboxId/messages/:messageId/reply-all",
    example_request={"text": "Thanks, everyone!"},
    documented_request={
        "text": "Thanks, everyone!",
        "html": "<p>Thanks, everyone!</p>",
        "cc": "extra-cc@example.com",
        "labels": ["replied"],
        "attachments": [{"filename": "doc.pdf", "content_type": "application/pdf", "content": "<base64>"}],
    },
    example_response={"message_id": "msg_replyall123", "thread_id": "thr_xyz789"},
)
FORWARD = Endpoint(
    "POST",
    "/inboxes/:inboxId/messages/:messageId/forward",
    example_request={"to": "forward@example.com", "text": "FYI, see below."},
    documented_request={
        "to": "forward@example.com",
        "cc": "cc@example.com",
        "text": "FYI, see below.",
        "html": "<p>FYI</p>",
        "labels": ["forwarded"],
    },
    example_response={"message_id": "msg_fwd123", "thread_id": "thr_new456"},
)
ATTACHMENT: dict[str, JSON] = {
    "attachment_id": "att_abc123",
    "filename": "document.pdf",
    "size": 245000,
    "content_type": "application/pdf",
    "content_disposition": "attachment",
    "content_id": None,
    "download_url": "https://storage.../presigned-url",
    "expires_at": "2025-01-15T11:30:00.000Z",
}
GET_ATTACHMENT = Endpoint(
    "GET", "/inboxes/:inboxId/messages/:messageId/attachments/:attachmentId", example_response=ATTACHMENT
)

# --- Threads -----------------------------------------------------------------------------------

THREAD_ITEM: dict[str, JSON] = {
    "inbox_id": "nk8x2j...",
    "thread_id": "thr_xyz789",
    "labels": [],
    "timestamp": "2025-01-15T10:32:00.000Z",
    "received_timestamp": "2025-01-15T10:30:00.000Z",
    "sent_timestamp": "2025-01-15T10:32:00.000Z",
    "senders": ["sender@example.com"],
    "recipients": ["agent-1@yourdomain.com"],
    "subject": "Hello",
    "preview": "This is a test...",
    "last_message_id": "msg_abc123",
    "message_count": 3,
    "size": 1200,
}
LIST_THREADS = Endpoint(
    "GET",
    "/inboxes/:inboxId/threads",
    example_response={"data": [THREAD_ITEM], "total": 1, "page": 1, "page_size": 20},
)
THREAD: dict[str, JSON] = {
    "inbox_id": "nk8x2j...",
    "thread_id": "thr_xyz789",
    "subject": "Hello",
    "message_count": 2,
    "preview": "Thanks for your email!",
    "messages": [
        {
            "message_id": "msg_abc123",
            "direction": "inbound",
            "from": "sender@example.com",
            "to": ["agent-1@yourdomain.com"],
            "subject": "Hello",
            "text": "Hi there!",
            "timestamp": "2025-01-15T10:30:00.000Z",
        },
        {
            "message_id": "msg_reply123",
            "direction": "outbound",
            "from": "Agent One <agent-1@yourdomain.com>",
            "to": ["sender@example.com"],
            "subject": "Re: Hello",
            "text": "Thanks for your email!",
            "timestamp": "2025-01-15T10:32:00.000Z",
        },
    ],
}
GET_THREAD = Endpoint("GET", "/inboxes/:inboxId/threads/:threadId", example_response=THREAD)
DELETE_THREAD = Endpoint("DELETE", "/inboxes/:inboxId/threads/:threadId", no_content=True)

# --- Domains -----------------------------------------------------------------------------------

DOMAIN_CREATED: dict[str, JSON] = {
    "domain_id": "yourdomain.com",
    "status": "PENDING",
    "feedback_enabled": True,
    "records": [
        {
            "type": "MX",
            "name": "yourdomain.com",
            "value": "mail.yourdomain.com",
            "status": "MISSING",
            "priority": 10,
        },
        {
            "type": "TXT",
            "name": "yourdomain.com",
            "value": "v=spf1 include:_spf.yourdomain.com ~all",
            "status": "MISSING",
            "priority": None,
        },
        {
            "type": "TXT",
            "name": "dkim._domainkey.yourdomain.com",
            "value": "v=DKIM1; k=rsa; p=...",
            "status": "MISSING",
            "priority": None,
        },
        {
            "type": "TXT",
            "name": "_dmarc.yourdomain.com",
            "value": "v=DMARC1; p=none; rua=mailto:...",
            "status": "MISSING",
            "priority": None,
        },
    ],
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-15T10:30:00.000Z",
}
DOMAIN_RECORD = DOMAIN_CREATED["records"][0]
# "records": [...] on the list and get examples: the records the create example shows in full.
DOMAIN_LISTED: dict[str, JSON] = {
    "domain_id": "yourdomain.com",
    "status": "VERIFIED",
    "feedback_enabled": True,
    "records": DOMAIN_CREATED["records"],
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-16T08:00:00.000Z",
}
DOMAIN: dict[str, JSON] = {
    "domain_id": "yourdomain.com",
    "status": "PENDING",
    "feedback_enabled": True,
    "records": DOMAIN_CREATED["records"],
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-15T10:30:00.000Z",
}
DOMAIN_VERIFIED: dict[str, JSON] = {
    "domain_id": "yourdomain.com",
    "status": "VERIFIED",
    "feedback_enabled": True,
    "records": [
        {
            "type": "MX",
            "name": "yourdomain.com",
            "value": "mail.yourdomain.com",
            "status": "VALID",
            "priority": 10,
        },
        {"type": "TXT", "name": "yourdomain.com", "value": "v=spf1 ...", "status": "VALID", "priority": None},
    ],
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-16T09:00:00.000Z",
}
CREATE_DOMAIN = Endpoint(
    "POST",
    "/domains",
    example_request={"domain": "yourdomain.com"},
    documented_request={"domain": "yourdomain.com", "feedback_enabled": True},
    example_response=DOMAIN_CREATED,
)
LIST_DOMAINS = Endpoint(
    "GET", "/domains", example_response={"data": [DOMAIN_LISTED], "total": 1, "page": 1, "page_size": 20}
)
GET_DOMAIN = Endpoint("GET", "/domains/:domainId", example_response=DOMAIN)
DELETE_DOMAIN = Endpoint("DELETE", "/domains/:domainId", no_content=True)
VERIFY_DOMAIN = Endpoint("POST", "/domains/:domainId/verify", example_response=DOMAIN_VERIFIED)
DOMAIN_STATUSES = {"PENDING", "VERIFIED"}
RECORD_STATUSES = {"MISSING", "VALID"}

# --- Webhooks ----------------------------------------------------------------------------------

EVENT_TYPES = [
    "message.received",
    "message.sent",
    "message.delivered",
    "message.bounced",
    "message.complained",
    "message.rejected",
    "domain.verified",
]
WEBHOOK_CREATED: dict[str, JSON] = {
    "webhook_id": "wh_abc123",
    "url": "https://your-app.com/webhooks/email",
    "event_types": ["message.received"],
    "inbox_ids": ["nk8x2j..."],
    "enabled": True,
    "client_id": "my-integration",
    "secret": "a1b2c3d4...",
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-15T10:30:00.000Z",
}
WEBHOOK: dict[str, JSON] = {
    "webhook_id": "wh_abc123",
    "url": "https://your-app.com/webhooks/email",
    "event_types": ["message.received"],
    "inbox_ids": [],
    "enabled": True,
    "client_id": None,
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-15T10:30:00.000Z",
}
WEBHOOK_PATCHED: dict[str, JSON] = {
    "webhook_id": "wh_abc123",
    "url": "https://new-url.com/hook",
    "event_types": ["message.received"],
    "inbox_ids": [],
    "enabled": False,
    "client_id": None,
    "created_at": "2025-01-15T10:30:00.000Z",
    "updated_at": "2025-01-15T12:00:00.000Z",
}
CREATE_WEBHOOK = Endpoint(
    "POST",
    "/webhooks",
    example_request={
        "url": "https://your-app.com/webhooks/email",
        "event_types": ["message.received", "message.sent"],
    },
    documented_request={
        "url": "https://your-app.com/webhooks/email",
        "event_types": ["message.received"],
        "inbox_ids": ["nk8x2j..."],
        "client_id": "my-integration",
    },
    example_response=WEBHOOK_CREATED,
)
LIST_WEBHOOKS = Endpoint(
    "GET", "/webhooks", example_response={"data": [WEBHOOK], "total": 1, "page": 1, "page_size": 20}
)
GET_WEBHOOK = Endpoint("GET", "/webhooks/:webhookId", example_response=WEBHOOK)
UPDATE_WEBHOOK = Endpoint(
    "PATCH",
    "/webhooks/:webhookId",
    example_request={"enabled": False},
    documented_request={
        "url": "https://new-url.com/hook",
        "event_types": ["message.received"],
        "inbox_ids": [],
        "enabled": False,
    },
    example_response=WEBHOOK_PATCHED,
)
DELETE_WEBHOOK = Endpoint("DELETE", "/webhooks/:webhookId", no_content=True)

# --- API keys ----------------------------------------------------------------------------------

API_KEY_CREATED: dict[str, JSON] = {
    "key_id": "key_abc123",
    "name": "my-agent-key",
    "prefix": "inai_xxxx_...",
    "key": "inai_xxxx_full_key_here",
    "used_at": None,
    "created_at": "2025-01-15T10:30:00.000Z",
}
API_KEY: dict[str, JSON] = {
    "key_id": "key_abc123",
    "name": "my-agent-key",
    "prefix": "inai_xxxx_...",
    "used_at": "2025-01-15T12:00:00.000Z",
    "created_at": "2025-01-15T10:30:00.000Z",
}
CREATE_API_KEY = Endpoint(
    "POST",
    "/api-keys",
    example_request={"name": "my-agent-key"},
    documented_request={"name": "my-agent-key"},
    example_response=API_KEY_CREATED,
)
LIST_API_KEYS = Endpoint(
    "GET", "/api-keys", example_response={"data": [API_KEY], "total": 1, "page": 1, "page_size": 20}
)
DELETE_API_KEY = Endpoint("DELETE", "/api-keys/:keyId", no_content=True)

ENDPOINTS = [
    GET_ORGANIZATION,
    CREATE_INBOX,
    LIST_INBOXES,
    GET_INBOX,
    UPDATE_INBOX,
    DELETE_INBOX,
    SEND_MESSAGE,
    LIST_MESSAGES,
    GET_MESSAGE,
    UPDATE_MESSAGE,
    REPLY,
    REPLY_ALL,
    FORWARD,
    GET_ATTACHMENT,
    LIST_THREADS,
    GET_THREAD,
    DELETE_THREAD,
    CREATE_DOMAIN,
    LIST_DOMAINS,
    GET_DOMAIN,
    DELETE_DOMAIN,
    VERIFY_DOMAIN,
    CREATE_WEBHOOK,
    LIST_WEBHOOKS,
    GET_WEBHOOK,
    UPDATE_WEBHOOK,
    DELETE_WEBHOOK,
    CREATE_API_KEY,
    LIST_API_KEYS,
    DELETE_API_KEY,
]

# --- What the checks accept beyond the literal example -------------------------------------------

# Keys whose value may be null or one of these (examples of the non-null shapes). The page shows
# null where a value "may legitimately" be there (client_id, cc, ...), or a value where null is as
# legitimate (a record's priority: TXT records have null; used_at of a key never used; a thread
# with no inbound message has no received_timestamp). ``references`` and ``reply_to`` are null on
# the page and never shown filled: the request side takes "string or string[]" for reply_to, and
# References is a header of Message-IDs, so both readings (one string, a list) are accepted.
NULLABLE: dict[str, tuple[JSON, ...]] = {
    "client_id": ("my-agent",),
    "cc": (["cc@example.com"],),
    "bcc": (["bcc@example.com"],),
    "reply_to": ("reply@example.com", ["reply@example.com"]),
    "html": ("<h1>HTML body</h1>",),
    "text": ("Plain text body",),
    "preview": ("This is a test email.",),
    "subject": ("Hello",),
    "in_reply_to": ("<parent@example.com>",),
    "references": ("<parent@example.com>", ["<parent@example.com>"]),
    "content_id": ("<part1@example.com>",),
    "priority": (10,),
    "used_at": ("2025-01-15T12:00:00.000Z",),
    "received_timestamp": ("2025-01-15T10:30:00.000Z",),
    "sent_timestamp": ("2025-01-15T10:32:00.000Z",),
}

# The page has GET .../attachments/:attachmentId but shows no field that lists a message's
# attachment ids. A message (and a list item, a thread's message) may therefore carry
# ``attachments``, a list of objects (agentmail's own shape); it is required on a message that has
# attachments, since otherwise the attachment endpoint cannot be reached by a client written from
# the page. Only ``attachment_id`` (a non-empty string) is required of each item.
MESSAGE_OPTIONAL_KEYS = frozenset({"attachments"})
