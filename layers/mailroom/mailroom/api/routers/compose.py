"""Compose resources of the token's mailbox (served by ComposeFunction): drafts
(``/api/v1/messages/drafts``), sending identities (``.../identities``) and message templates
(``.../templates``). A draft is a message in Drafts: read, list and delete it with the messages
endpoints; send it with ``POST /api/v1/messages/send {"draft_uid": ...}``. See docs/compose.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from mailroom import ids
from mailroom.api import pagination
from mailroom.api.mailbox_access import BoundMailbox, require_mailbox
from mailroom.api.models import ListOf, One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.schemas.messages import MessageFull
from mailroom.api.schemas.send import COMPOSE_422, SendMessageBody
from mailroom.services import drafts, identities, message_detail, message_templates
from mailroom.store.table import Table

router = api_router("/api/v1/messages", tags=["compose"])
Reader = Annotated[BoundMailbox, Depends(require_mailbox("messages:read"))]
Writer = Annotated[BoundMailbox, Depends(require_mailbox("messages:write"))]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]


def _not_null(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        raise ValueError(f"{info.field_name} cannot be null")
    return value


# --- drafts ----------------------------------------------------------------------------------------


class DraftBody(SendMessageBody):
    """The send body; nothing is required (a draft may have no recipient yet)."""

    in_reply_to: str | None = Field(
        default=None,
        max_length=998,
        description="A message of this mailbox (msg_...) this draft replies to: recipients (when none "
        "are given), `Re:` subject (when none is given), In-Reply-To and References are set as the "
        "reply helper sets them. A Message-ID (<...>) is taken as the header itself",
    )


def _save(bound: BoundMailbox, body: DraftBody, replacing: dict[str, Any] | None) -> dict[str, Any]:
    request = body.to_request()
    reply_to_message = None
    if body.in_reply_to and ids.is_id(body.in_reply_to, "msg"):
        reply_to_message, request.in_reply_to = body.in_reply_to, None
    table = Table()
    draft = drafts.save(
        table,
        bound.mailbox,
        request,
        body.compose_options(),
        reply_to_message=reply_to_message,
        replacing=replacing,
    )
    return one(message_detail.full_view(table, bound.mailbox, draft))


@router.post(
    "/drafts",
    name="draft.create",
    status_code=201,
    response_model=One[MessageFull],
    response_model_exclude_unset=True,
    summary="Save a draft in the Drafts folder (nothing is sent)",
    responses={
        201: {
            "description": "Saved in Drafts",
            "headers": {
                "Location": {
                    "description": "/api/v1/messages/{id}",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
        **errors(e422=COMPOSE_422),
    },
)
async def create_draft(
    body: DraftBody, request: Request, response: Response, bound: Writer
) -> dict[str, Any]:
    """Store a message in Drafts from the send body (recipients optional). With `in_reply_to` a
    message id, the draft is a reply to it and joins its thread. `identity_id` sets From and adds
    the signature once; `template_id` with `variables` fills subject and bodies. Send it later with
    POST /api/v1/messages/send `{"draft_uid": "<id>"}`."""
    audit_target(request, "mailbox", bound.mailbox["id"], address=bound.mailbox["address"])
    saved = _save(bound, body, None)
    audit_target(request, "message", saved["data"]["id"], mailbox_id=bound.mailbox["id"])
    response.headers["Location"] = f"/api/v1/messages/{saved['data']['id']}"
    return saved


DraftId = Annotated[str, Path(max_length=64, description="The draft's id (msg_... in Drafts)")]


@router.put(
    "/drafts/{uid}",
    name="draft.replace",
    response_model=One[MessageFull],
    response_model_exclude_unset=True,
    summary="Replace a draft (same id; nothing is sent)",
    responses=errors(
        e404="not_found: no such message in this mailbox",
        e409="draft_busy (being sent or saved by another request), draft_already_sent",
        e422=f"not_a_draft (the message is not in Drafts), {COMPOSE_422}",
    ),
)
async def replace_draft(uid: DraftId, body: DraftBody, request: Request, bound: Writer) -> dict[str, Any]:
    """Replace every field of the draft with this body (as POST /drafts takes it); the draft keeps
    its id. Attachments of the draft being replaced can be kept as `{message_id: <uid>, index}`."""
    audit_target(request, "message", uid, mailbox_id=bound.mailbox["id"])
    current = drafts.load_draft(Table(), bound.mailbox, uid)
    return _save(bound, body, current)


# --- identities ------------------------------------------------------------------------------------

Signature = Annotated[str, Field(max_length=identities.MAX_SIGNATURE_CHARS)]
ReplyTo = Annotated[list[Annotated[str, Field(max_length=320)]], Field(max_length=identities.MAX_REPLY_TO)]


class CreateIdentity(Strict):
    address: str = Field(
        min_length=3,
        max_length=320,
        description="The From address: the mailbox's, an active alias delivering to it, or an unused "
        "address on a verified domain of the organization (else 422 identity_not_allowed)",
    )
    name: str | None = Field(default=None, max_length=200, description="The From display name")
    reply_to: ReplyTo = Field(default_factory=list, description="Reply-To addresses for sends that give none")
    signature_text: Signature | None = Field(default=None, description="Appended to text bodies after '-- '")
    signature_html: Signature | None = Field(default=None, description="Appended to HTML bodies")
    default: bool = Field(default=False, description="Used by sends naming neither from nor identity_id")


class UpdateIdentity(Strict):
    """Only the fields sent change; `null` clears name, reply_to and the signatures."""

    address: str | None = Field(default=None, min_length=3, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    reply_to: ReplyTo | None = None
    signature_text: Signature | None = None
    signature_html: Signature | None = None
    default: bool | None = None

    _address_not_null = field_validator("address", "default")(_not_null)

    def changes(self) -> dict[str, Any]:
        fields = ("address", "name", "reply_to", "signature_text", "signature_html")
        return {name: getattr(self, name) for name in fields if name in self.model_fields_set}


class IdentityView(BaseModel):
    id: str = Field(description="idn_...")
    address: str
    name: str | None
    from_: str = Field(alias="from", description="The From header it sends with")
    reply_to: list[str]
    signature_text: str | None
    signature_html: str | None
    default: bool
    created_at: Timestamp
    updated_at: Timestamp


IdentityId = Annotated[str, Path(max_length=64, description="The identity's id (idn_...)")]
IDENTITY_404 = errors(e404="not_found: no such identity in this mailbox")
_BY_ALIAS: dict[str, Any] = {"response_model_by_alias": True}


@router.get(
    "/identities",
    name="identity.list",
    response_model=ListOf[IdentityView],
    summary="Sending identities of this mailbox",
    **_BY_ALIAS,
)
async def list_identities(request: Request, bound: Reader, page_query: PageParams) -> dict[str, Any]:
    """The From addresses this mailbox sends as, with their signatures; `default` marks the one a
    send uses when it names neither `from` nor `identity_id`."""
    page, total = identities.list_identities(
        Table(), bound.mailbox, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [identities.view(item, bound.mailbox) for item in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=total)


@router.post(
    "/identities",
    name="identity.create",
    status_code=201,
    response_model=One[IdentityView],
    summary="Add a sending identity (From, name, Reply-To, signatures)",
    responses=errors(
        e422="identity_not_allowed (not an address this mailbox may send as), validation_error, "
        "identity_limit_reached (50 per mailbox)"
    ),
    **_BY_ALIAS,
)
async def create_identity(body: CreateIdentity, request: Request, bound: Writer) -> dict[str, Any]:
    """A From address with its display name, Reply-To and signatures. Sends and drafts name it
    with `identity_id`; with `default: true` it replaces the current default."""
    audit_target(request, "identity", "-", address=body.address)
    view = identities.create(
        Table(),
        bound.mailbox,
        identities.IdentityFields(
            address=body.address,
            name=body.name,
            reply_to=body.reply_to,
            signature_text=body.signature_text,
            signature_html=body.signature_html,
        ),
        default=body.default,
    )
    audit_target(request, "identity", view["id"], address=view["address"])
    return one(view)


@router.patch(
    "/identities/{identity_id}",
    name="identity.update",
    response_model=One[IdentityView],
    summary="Change a sending identity",
    responses={**IDENTITY_404, **errors(e422="identity_not_allowed, validation_error")},
    **_BY_ALIAS,
)
async def update_identity(
    identity_id: IdentityId, body: UpdateIdentity, request: Request, bound: Writer
) -> dict[str, Any]:
    """Change the fields sent. `default: true` makes it the default; `false` leaves the mailbox
    without a default (if it was the default)."""
    audit_target(request, "identity", identity_id)
    table = Table()
    item = identities.load(table, bound.mailbox, identity_id)
    return one(identities.update(table, bound.mailbox, item, body.changes(), default=body.default))


@router.delete(
    "/identities/{identity_id}",
    name="identity.delete",
    status_code=204,
    summary="Delete a sending identity",
    responses=IDENTITY_404,
)
async def delete_identity(identity_id: IdentityId, request: Request, bound: Writer) -> Response:
    """Sends naming it are refused from now on (422 unknown_identity); drafts saved with it keep
    their From and signature."""
    audit_target(request, "identity", identity_id)
    table = Table()
    identities.delete(table, identities.load(table, bound.mailbox, identity_id))
    return Response(status_code=204)


# --- templates -------------------------------------------------------------------------------------

Source = Annotated[str, Field(max_length=100_000)]


class CreateTemplate(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    name: str = Field(min_length=1, max_length=message_templates.MAX_NAME_CHARS)
    description: str | None = Field(default=None, max_length=500)
    subject: Source = Field(default="", description="Jinja2: {{ variable }}, loops, simple filters")
    text: Source | None = None
    html: Source | None = Field(default=None, description="Variables are HTML-escaped here")


class UpdateTemplate(Strict):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    name: str | None = Field(default=None, min_length=1, max_length=message_templates.MAX_NAME_CHARS)
    description: str | None = Field(default=None, max_length=500)
    subject: Source | None = None
    text: Source | None = None
    html: Source | None = None

    _not_null = field_validator("name", "subject")(_not_null)

    def changes(self) -> dict[str, Any]:
        fields = ("name", "description", "subject", "text", "html")
        return {name: getattr(self, name) for name in fields if name in self.model_fields_set}


class TemplateView(BaseModel):
    id: str = Field(description="tpl_...")
    name: str
    description: str | None
    subject: str
    text: str | None
    html: str | None
    variables: list[str] = Field(description="The top-level variables it reads: what a send must give")
    created_at: Timestamp
    updated_at: Timestamp


TemplateId = Annotated[str, Path(max_length=64, description="The template's id (tpl_...)")]
TEMPLATE_404 = errors(e404="not_found: no such template in this mailbox")
TEMPLATE_422 = (
    "template_syntax_error (the part and line), template_too_large, validation_error, "
    "template_limit_reached (200 per mailbox)"
)


@router.get(
    "/templates",
    name="template.list",
    response_model=ListOf[TemplateView],
    summary="Message templates of this mailbox",
)
async def list_templates(request: Request, bound: Reader, page_query: PageParams) -> dict[str, Any]:
    """Templates with the variables each reads."""
    page, total = message_templates.list_templates(
        Table(), bound.mailbox, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [message_templates.view(item) for item in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=total)


@router.post(
    "/templates",
    name="template.create",
    status_code=201,
    response_model=One[TemplateView],
    summary="Add a message template (subject, text, HTML with variables)",
    responses=errors(e422=TEMPLATE_422),
)
async def create_template(body: CreateTemplate, request: Request, bound: Writer) -> dict[str, Any]:
    """Jinja2 in a sandbox: `{{ name }}`, `{{ order.total }}`, `{% for item in items %}`, `{% if %}`
    and simple filters (`upper`, `default`, `join`, ...); no method calls or Python internals.
    Variables in `html` are HTML-escaped. Sends and drafts use it with `template_id` + `variables`."""
    audit_target(request, "template", "-", name=body.name[:100])
    view = message_templates.create(
        Table(),
        bound.mailbox,
        message_templates.TemplateFields(
            name=body.name, subject=body.subject, text=body.text, html=body.html, description=body.description
        ),
    )
    audit_target(request, "template", view["id"])
    return one(view)


@router.patch(
    "/templates/{template_id}",
    name="template.update",
    response_model=One[TemplateView],
    summary="Change a message template",
    responses={**TEMPLATE_404, **errors(e422=TEMPLATE_422)},
)
async def update_template(
    template_id: TemplateId, body: UpdateTemplate, request: Request, bound: Writer
) -> dict[str, Any]:
    """Change the fields sent (`text: null` or `html: null` drops that part; one must remain)."""
    audit_target(request, "template", template_id)
    table = Table()
    item = message_templates.load(table, bound.mailbox, template_id)
    return one(message_templates.update(table, item, body.changes()))


@router.delete(
    "/templates/{template_id}",
    name="template.delete",
    status_code=204,
    summary="Delete a message template",
    responses=TEMPLATE_404,
)
async def delete_template(template_id: TemplateId, request: Request, bound: Writer) -> Response:
    """Sends naming it are refused from now on (422 unknown_template)."""
    audit_target(request, "template", template_id)
    table = Table()
    message_templates.delete(table, message_templates.load(table, bound.mailbox, template_id))
    return Response(status_code=204)
