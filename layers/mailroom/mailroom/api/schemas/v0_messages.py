"""The v0 message models and error texts that sending drafts shares with sending messages
(``/api/v0/inboxes/{inboxId}/messages`` and ``.../drafts``, two functions). Here rather than in the
messages router, so that the drafts function does not build the message routes at init."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailroom.api.schemas.labels import Label
from mailroom.services import sending
from mailroom.services import v0_mail as service

MAX_ADDRESSES = 100  # per field; the send caps to + cc + bcc at 50 with a precise error
MAX_ATTACHMENTS = 100

Address = Annotated[str, Field(examples=["recipient@example.com", "Name <name@example.com>"])]
Addresses = Address | Annotated[list[Address], Field(max_length=MAX_ADDRESSES)]
Labels = Annotated[
    list[Label], Field(max_length=service.MAX_LABELS, description="Labels, without control characters")
]
Base64 = Annotated[str, Field(json_schema_extra={"contentEncoding": "base64"})]
HEADER_NAME = r"^[!-9;-~]{1,76}$"  # RFC 5322 field name, as the composer checks it

SENDS = {
    "e403": "insufficient_scope, wrong_token_type; mailbox_inactive or mailbox_paused: the inbox may not "
    "send now",
    "e404": "not_found: no such inbox (for a message token: not its own inbox)",
    "e422": "validation_error (`errors` names the field: an address, a header, an attachment, an "
    "attachment url that could not be fetched), too_many_recipients, reserved_header, "
    "message_too_large, recipient_suppressed, mailbox_over_quota, send_rejected (SES refused it)",
    "e502": "ses_unavailable: SES could not be reached; nothing was sent (retry)",
    "e503": "send_throttled or sending_paused: SES is not sending now; nothing was sent (retry later)",
}
ANSWERS = {
    **SENDS,
    "e404": "not_found: no such inbox, or no such message in it",
}


class Exact(BaseModel):
    # Unknown fields are refused and nothing is stripped: a CR/LF in a header must reach the
    # injection check rather than silently disappear.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def listed(value: Addresses | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


class V0AttachmentIn(Exact):
    """An attachment: exactly one of ``content`` and ``url``."""

    filename: str | None = Field(
        default=None, max_length=255, description="Default: from the url, else 'attachment'"
    )
    content_type: str | None = Field(
        default=None,
        max_length=255,
        description="e.g. application/pdf; default: what the url served, else guessed",
    )
    content: Base64 | None = Field(default=None, description="The bytes, base64-encoded")
    url: str | None = Field(
        default=None,
        max_length=2048,
        description="Or an https URL to fetch them from (public hosts only, no redirects, 10 s, within "
        "the 10 MB message limit; at most 10 per message)",
    )

    def as_new(self) -> service.NewAttachment:
        return service.NewAttachment(
            filename=self.filename, content_type=self.content_type, content=self.content, url=self.url
        )


class V0Sent(BaseModel):
    message_id: str = Field(examples=["msg_01JABCDEF0123456789ABCDEFG"])
    thread_id: str = Field(examples=["thr_01JABCDEF0123456789ABCDEFG"])


class Aliased(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class V0AttachmentMeta(BaseModel):
    attachment_id: str = Field(examples=["att_01JABCDEF0123456789ABCDEFG"])
    filename: str | None
    size: int = Field(ge=0, description="Bytes")
    content_type: str | None
    content_disposition: Literal["attachment", "inline"]
    content_id: str | None = Field(description="For inline parts referenced from the HTML (cid:)")


def sent_view(sent: sending.Sent) -> dict[str, Any]:
    return {"message_id": sent.message_id, "thread_id": sent.thread_id}
