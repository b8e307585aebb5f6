"""Mailbox data (``/api/v1/mailbox/{mailboxId}/data/``, mailtrigger-api.txt): per-mailbox JSON
documents that automation rules test and ``store_data`` actions write (docs/automation-inbound.md).

Ops tokens need ``automation:read`` / ``automation:write``; the mailbox's own message token reads
with ``messages:read`` and writes with ``messages:write`` (another mailbox's id is 404 for it, as
for one that does not exist). Each path answers with or without its trailing slash: the page writes
it, clients often leave it out (api/paths.py strips it before routing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from mailroom import errors as kinds
from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import ACCESS_ATTRIBUTE, current, require
from mailroom.domain import mailbox_data as model
from mailroom.domain.tokens import TokenType
from mailroom.services import mailbox_data as service
from mailroom.services import mailboxes as mailbox_service
from mailroom.store.table import Item, Table

router = api_router("/api/v1/mailbox", tags=["mailbox data"])

READ, WRITE = "automation:read", "automation:write"
LIMITS = (
    f"A document is at most {model.MAX_DOCUMENT_BYTES:,} bytes as compact JSON (UTF-8) and nests at "
    f"most {model.MAX_DEPTH} levels; a mailbox holds at most {model.MAX_KEYS:,} keys."
)

MailboxId = Annotated[str, Path(alias="mailboxId", max_length=64, description="The mailbox's id (mbx_...)")]
DataKey = Annotated[
    str,
    Path(
        max_length=model.MAX_KEY_CHARS,
        pattern=model.KEY_RE.pattern,
        description="The document's key: 1 to 128 of A-Z a-z 0-9 _ . -",
    ),
]
NOT_FOUND = errors(e404="not_found: no such mailbox in this organization")
KEY_NOT_FOUND = errors(e404="not_found: no such mailbox, or no document under this key")
CONCURRENT = errors(e409="concurrent_update: the document kept changing meanwhile; read and retry")


class DocumentInput(BaseModel):
    # Not Strict: the document's strings are the caller's, whitespace included.
    model_config = ConfigDict(extra="forbid")

    value: JsonValue = Field(description=f"Any JSON value. {LIMITS}")


class PatchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: JsonValue = Field(
        description="A JSON Merge Patch (RFC 7386) applied to the document: object members merge, "
        "null removes a member, anything else replaces it. An absent document is patched from null."
    )


class DocumentSummary(BaseModel):
    key: str
    bytes: int = Field(description="Size of the stored document (compact JSON, UTF-8)")
    version: int = Field(description="Moves by one on every change")
    updated_at: Timestamp


class Document(DocumentSummary):
    value: JsonValue


@dataclass(frozen=True, slots=True)
class LoadedMailbox:
    item: Item


def _mailbox_for(ops_scope: str, message_scope: str) -> Callable[[Request, str], LoadedMailbox]:
    """The mailbox the path names, for an ops token with ``ops_scope`` or that mailbox's own message
    token with ``message_scope``."""

    def load(request: Request, mailbox_id: MailboxId) -> LoadedMailbox:
        principal = current(request)
        if principal.token_type is TokenType.MESSAGE:
            require(message_scope, token_type=TokenType.MESSAGE)(request)
            if principal.mailbox_id != mailbox_id:
                raise kinds.not_found("Mailbox")
        else:
            require(ops_scope)(request)
        return LoadedMailbox(mailbox_service.load(Table(), principal.org_id, mailbox_id))

    access = {TokenType.OPS.value: [ops_scope], TokenType.MESSAGE.value: [message_scope]}
    setattr(load, ACCESS_ATTRIBUTE, access)
    return load


Reader = Annotated[LoadedMailbox, Depends(_mailbox_for(READ, "messages:read"))]
Writer = Annotated[LoadedMailbox, Depends(_mailbox_for(WRITE, "messages:write"))]


def _audit(request: Request, mailbox: LoadedMailbox, key: str) -> None:
    audit_target(request, "mailbox_data", key, mailbox_id=mailbox.item["id"])


def _route(path: str, endpoint: Callable[..., Any], method: str, **options: Any) -> None:
    """One operation per path; the page's trailing-slash spelling reaches it too (api/paths.py)."""
    router.add_api_route(path, endpoint, methods=[method], **options)


LIST, ONE = "/{mailboxId}/data", "/{mailboxId}/data/{key}"


async def list_documents(
    request: Request,
    mailbox: Reader,
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """The mailbox's data keys in key order, each with its size, version and last change (not the
    values: read a key for its document). `meta.total` is the number of keys."""
    page, totals = service.list_documents(
        Table(), mailbox.item, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [service.summary(item) for item in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=totals["keys"])


async def get_document(key: DataKey, mailbox: Reader) -> dict[str, Any]:
    """The JSON document stored under `key`, with its size and version."""
    return one(service.get_document(Table(), mailbox.item, key))


async def put_document(
    key: DataKey, body: DocumentInput, request: Request, mailbox: Writer
) -> dict[str, Any]:
    """Store `value` under `key`, creating or replacing the document. Rules read it at once: the next
    message's conditions see the new value. The answer is the document's key, size and version (not
    the value you sent: a document may be 400 KB)."""
    _audit(request, mailbox, key)
    document, _created = service.put_document(Table(), mailbox.item, key, body.value)
    return one(document)


async def patch_document(key: DataKey, body: PatchInput, request: Request, mailbox: Writer) -> dict[str, Any]:
    """Change the document under `key` with a JSON Merge Patch (RFC 7386); an absent key is created.
    The answer is the document's key, size and version: GET it for the merged value."""
    _audit(request, mailbox, key)
    return one(service.patch_document(Table(), mailbox.item, key, body.value))


async def delete_document(key: DataKey, request: Request, mailbox: Writer) -> Response:
    """Delete the document under `key` (a rule that reads it then sees no value)."""
    _audit(request, mailbox, key)
    service.delete_document(Table(), mailbox.item, key)
    return Response(status_code=204)


WRITE_ERRORS = errors(
    e404="not_found: no such mailbox in this organization",
    e409="concurrent_update: the document kept changing meanwhile; read and retry",
    e422="validation_error, invalid_data_key, document_too_deep; limits: document_too_large, "
    "data_key_limit_reached",
)

_route(
    LIST,
    list_documents,
    "GET",
    name="mailbox.data.list",
    response_model=ListOf[DocumentSummary],
    summary="List a mailbox's data keys",
    responses=NOT_FOUND,
)
_route(
    ONE,
    get_document,
    "GET",
    name="mailbox.data.get",
    response_model=One[Document],
    summary="Read a data document",
    responses=KEY_NOT_FOUND,
)
_route(
    ONE,
    put_document,
    "PUT",
    name="mailbox.data.put",
    response_model=One[DocumentSummary],
    summary="Create or replace a data document",
    description=f"{put_document.__doc__} {LIMITS}",
    responses=WRITE_ERRORS,
)
_route(
    ONE,
    patch_document,
    "PATCH",
    name="mailbox.data.patch",
    response_model=One[DocumentSummary],
    summary="Merge-patch a data document",
    description=f"{patch_document.__doc__} {LIMITS}",
    responses=WRITE_ERRORS,
)
_route(
    ONE,
    delete_document,
    "DELETE",
    name="mailbox.data.delete",
    status_code=204,
    summary="Delete a data document",
    responses={**KEY_NOT_FOUND, **CONCURRENT},
)
