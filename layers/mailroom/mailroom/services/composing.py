"""The compose options of a send, a draft (and later a scheduled send): ``template_id`` with
``variables``, and ``identity_id`` (or the mailbox's default identity), resolved into the
existing ``SendRequest`` before ``sending.send`` runs unchanged.

Order: the template fills subject, text and HTML (a request giving any of them with a template is
422: one source of content); then the identity sets From (and Reply-To when the request gives
none) and appends its signature (``mail.signatures``: once, above a quoted original).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mailroom import errors
from mailroom.mail import signatures
from mailroom.services import identities, mailbox_policy, message_templates, sending
from mailroom.services.identities import Chosen
from mailroom.services.sending import Sender, SendRequest
from mailroom.store.send_checks import ReadAhead
from mailroom.store.table import Item, Table


@dataclass(slots=True)
class ComposeOptions:
    identity_id: str | None = None
    template_id: str | None = None
    variables: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    request: SendRequest
    identity: Chosen | None
    options: ComposeOptions = field(default_factory=ComposeOptions)

    @property
    def sender(self) -> Sender | None:
        return None if self.identity is None else self.identity.sender


def prepare(table: Table, mailbox: Item, request: SendRequest, options: ComposeOptions) -> Prepared:
    if options.template_id is not None:
        if request.subject or request.text is not None or request.html is not None:
            raise errors.validation(
                "give either template_id (with variables) or subject, text and html, not both",
                field="template_id",
            )
        parts = message_templates.render(table, mailbox, options.template_id, options.variables or {})
        request = replace(request, subject=parts.subject, text=parts.text, html=parts.html)
    elif options.variables:
        raise errors.validation("variables are only used with template_id", field="variables")
    if options.identity_id is not None and request.sender:
        raise errors.validation("give either from or identity_id, not both", field="identity_id")
    chosen = None if request.sender else identities.for_send(table, mailbox, options.identity_id)
    if chosen is not None:
        text, html = request.text, request.html
        if text is None and html is None:
            text = ""  # what compose sends for an empty body: the signature is the body
        text, html = signatures.signed(
            text, html, text_signature=chosen.signature_text, html_signature=chosen.signature_html
        )
        request = replace(
            request,
            text=text,
            html=html,
            reply_to=request.reply_to or list(chosen.reply_to),
        )
    return Prepared(request=request, identity=chosen, options=options)


def send(
    table: Table,
    mailbox: Item,
    request: SendRequest,
    options: ComposeOptions,
    *,
    ahead: ReadAhead | None = None,
) -> sending.Sent:
    """``sending.send`` with the compose options applied: the seam the send endpoints call."""
    blocked = mailbox_policy.send_blocked(mailbox)
    if blocked is not None:
        raise blocked
    prepared = prepare(table, mailbox, request, options)
    return sending.send(table, mailbox, prepared.request, sender=prepared.sender, ahead=ahead)
