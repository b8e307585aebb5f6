"""Invitations by mail: the calendar side of a stored message, and answering an invitation.

``on_stored`` is the one call the inbound path makes after a message is stored in a mailbox: a
``text/calendar`` (or ``application/ics``) part with an iTIP method is applied to the mailbox's
calendar (``domain.itip``):

- REQUEST adds the event (TENTATIVE, ``source: invitation``, linked to the message) or updates the
  event of its UID (an older SEQUENCE than the one stored is ignored);
- CANCEL cancels the event of its UID (or the occurrences it names);
- REPLY sets the answering attendee's PARTSTAT on the mailbox's own event of that UID.

Only the organizer changes an event by mail: a REQUEST or CANCEL for an event the mailbox has is
applied when its ORGANIZER is the one stored and the message is from that address; a REPLY when it
is from the attendee it answers for. Nothing here may fail the delivery: problems are logged.

``respond`` (``POST .../calendar/events/{id}/respond``) sends the organizer an iTIP REPLY through the
normal send path (``services.sending.send``: the Sent copy, suppression list and quota checks) and
records the answer on the mailbox's copy.
"""

from __future__ import annotations

import base64
from typing import Any

from mailroom import errors
from mailroom.domain import itip
from mailroom.domain.calendar import InvalidEvent
from mailroom.mail.parse import ParsedMessage
from mailroom.observability import logger
from mailroom.services import calendar as events
from mailroom.store import calendar as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table


def _calendar_parts(parsed: ParsedMessage) -> list[str]:
    parts = []
    for attachment in parsed.attachments:
        if attachment.content_type.lower() in itip.CALENDAR_TYPES and attachment.size <= itip.MAX_ITIP_BYTES:
            parts.append(attachment.payload.decode("utf-8", "replace"))
    return parts


def on_stored(table: Table, mailbox: Item, message: Item, parsed: ParsedMessage) -> None:
    """Apply the message's iTIP part(s), if any, to the mailbox's calendar. Never raises."""
    try:
        texts = _calendar_parts(parsed)
        # Mail filed as spam does not reach the calendar (invitation spam is a known abuse).
        if not texts or message.get("folder_key") == "spam":
            return
        seen: set[tuple[str, str]] = set()
        for text in texts:  # Google sends the same calendar twice (alternative and invite.ics)
            for found in itip.read(text):
                if (found.method, found.uid) in seen:
                    continue
                seen.add((found.method, found.uid))
                _apply(table, mailbox, message, parsed, found)
    except InvalidEvent as exc:
        logger().info(
            "calendar part not applied", extra={"message_id": message.get("id"), "reason": exc.message}
        )
    except Exception:
        logger().exception("calendar part not applied", extra={"message_id": message.get("id")})


def _apply(table: Table, mailbox: Item, message: Item, parsed: ParsedMessage, found: itip.Itip) -> None:
    org_id, mailbox_id = str(mailbox["org_id"]), str(mailbox["id"])
    me = str(mailbox["address"]).lower()
    sender = (parsed.from_address or "").lower()
    current = store.by_uid(table, org_id, mailbox_id, found.uid)
    organizer = ((current or {}).get("fields") or {}).get("organizer") or {}
    outcome = "ignored"
    if found.method == "REQUEST":
        if current is None:
            source = itip.invited_copy(found, me, None)
            values = events.indexed_values(source)
            store.create(
                table, org_id, mailbox_id, {**values, "source": "invitation", "message_id": message["id"]}
            )
            outcome = "added"
        elif (
            current.get("source") == "invitation"
            and organizer.get("email") == found.organizer == sender
            and found.sequence >= int(current.get("sequence", 0))
        ):
            source = itip.invited_copy(found, me, str(current["ics"]))
            values = events.indexed_values(source)
            store.replace(table, org_id, mailbox_id, current, {**values, "message_id": message["id"]})
            outcome = "updated"
    elif found.method == "CANCEL":
        if current is not None and organizer.get("email") == sender and current.get("source") == "invitation":
            values = events.indexed_values(itip.cancelled_copy(found, str(current["ics"])))
            store.replace(table, org_id, mailbox_id, current, {**values, "message_id": message["id"]})
            outcome = "cancelled"
    elif found.method == "REPLY" and current is not None and organizer.get("email") in (me, None) and sender:
        # The organizer's own event (made here, or an invitation it organizes from this mailbox).
        source, answer = itip.replied_copy(found, str(current["ics"]), sender)
        if answer is not None:
            store.replace(table, org_id, mailbox_id, current, events.indexed_values(source))
            outcome = f"reply {answer.lower()}"
    logger().info(
        "calendar message applied",
        extra={"method": found.method, "outcome": outcome, "message_id": message.get("id")},
    )


def respond(table: Table, mailbox: Item, event: Item, answer: str, comment: str | None) -> dict[str, Any]:
    """Send the organizer the iTIP REPLY and record the answer; returns the event's view and the
    id of the reply's Sent copy."""
    from mailroom.services import sending

    me = str(mailbox["address"]).lower()
    organizer = ((event.get("fields") or {}).get("organizer") or {}).get("email")
    if not organizer or organizer == me:
        raise errors.Invalid(
            "not_an_invitation",
            "only an event this mailbox was invited to (it has another organizer) can be answered",
        )
    if itip.partstat_of(str(event["ics"]), me) is None:
        raise errors.Invalid("not_an_attendee", f"{me} is not an attendee of this event")
    try:
        reply = itip.reply(str(event["ics"]), me, answer, comment=comment)
    except InvalidEvent as exc:
        raise errors.validation(exc.message, field=exc.field) from exc
    summary = str((event.get("fields") or {}).get("summary") or "")
    verb = {"accepted": "Accepted", "tentative": "Tentatively accepted", "declined": "Declined"}[answer]
    text = f"{mailbox.get('name') or me} has {verb.lower()} this invitation: {summary}"
    if comment:
        text += f"\n\n{comment}"
    sent = sending.send(
        table,
        mailbox,
        sending.SendRequest(
            to=[organizer],
            subject=f"{verb}: {summary}"[:900],
            text=text,
            attachments=[
                sending.AttachmentInput(
                    filename="invite.ics",
                    content_type="text/calendar; method=REPLY",
                    content=base64.b64encode(reply.encode("utf-8")).decode(),
                )
            ],
        ),
    )
    source = itip.answered_copy(str(event["ics"]), me, answer)
    try:
        updated = store.replace(
            table, str(mailbox["org_id"]), str(mailbox["id"]), event, events.indexed_values(source)
        )
    except ConditionFailed as exc:
        # The reply is out; the copy changed meanwhile (another invitation update): the next
        # request reads it again.
        raise errors.concurrent_update() from exc
    return {"event": events.event_view(updated), "reply_message_id": sent.message_id}
