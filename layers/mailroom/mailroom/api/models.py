"""Shared request/response models: strict (unknown fields are refused) so typos fail loudly."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mailroom.domain.addresses import check_display_name

T = TypeVar("T")
# A mailbox's display name (the From name of its mail): domain.addresses says what it may not hold.
DisplayName = Annotated[
    str,
    AfterValidator(check_display_name),
    Field(description="The From name of the mailbox's mail: no control characters, line breaks, < > or @"),
]

# Moments stay the strings the services write (``2025-01-15T10:30:00.000Z``: UTC, milliseconds,
# ``mailroom.clock``): parsing them into datetimes would re-serialize them in another shape.
Timestamp = Annotated[
    str,
    Field(
        json_schema_extra={"format": "date-time"},
        examples=["2025-01-15T10:30:00.000Z"],
        description="UTC, with milliseconds",
    ),
]
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Links(BaseModel):
    next: str | None
    prev: str | None


class Meta(BaseModel):
    current_page: int
    last_page: int | None
    per_page: int
    total: int | None


class ListOf(BaseModel, Generic[T]):
    data: list[T]
    links: Links
    meta: Meta


class One(BaseModel, Generic[T]):
    data: T


def one(value: Any) -> dict[str, Any]:
    return {"data": value}


class Note(Strict):
    """``PATCH .../note``: an operator's free text on a domain or a mailbox."""

    note: str | None = Field(max_length=2000, description="Free text for operators; null clears it")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    hint: str | None
    request_id: str
    retryable: bool
    fields: list[FieldError] | None = None


class ErrorEnvelope(BaseModel):
    """Every ``/api/v1`` error (trekmail-api-overview.txt)."""

    error: ErrorBody


class V0Error(BaseModel):
    """Every ``/api/v0`` error (agentmail-v0-api.txt): a name such as ``NotFoundError`` and a message."""

    name: str
    message: str
    errors: list[FieldError] | None = None


class GatewayError(BaseModel):
    """What API Gateway itself answers before any function runs (e.g. 413 over the 6 MB payload limit)."""

    message: str


def errors(**described: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own error statuses, keyed ``e404="No such domain"``: the document
    gives each the envelope of the route's surface (v1 or v0), see ``api.openapi``."""
    return {int(key.removeprefix("e")): {"description": text} for key, text in described.items()}
