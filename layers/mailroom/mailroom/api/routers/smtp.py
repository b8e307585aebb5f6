"""Outbound SMTP relays (``/api/v1/smtp``): the organization's own mail servers, used instead of SES
for the sender domains they claim."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, EmailStr, Field

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import smtp_relays as service
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["smtp"])
READ = "smtp:read"
WRITE = "smtp:write"

Security = Literal["ssl", "starttls", "none"]
RelayId = Annotated[str, Path(max_length=64, description="The relay's id (rly_...)")]
TestJobId = Annotated[str, Path(max_length=64, description="The test job's id (smt_...)")]
RELAY_404 = errors(e404="not_found: no such SMTP relay in this organization")


class PutRelay(Strict):
    """A relay to create (no ``id``) or the new settings of one (``id``)."""

    id: str | None = Field(default=None, max_length=64, description="The relay to update; omit to create one")
    host: str = Field(
        min_length=1,
        max_length=253,
        description="Host name or IP address; it must resolve to public addresses (422 invalid_host)",
    )
    port: int = Field(ge=1, le=65535, description="Usually 465 (ssl), 587 (starttls) or 25")
    security: Security = Field(
        description="ssl: implicit TLS; starttls: upgrade after EHLO (refused if not offered); none: "
        "plain text, only without credentials. Certificates are always verified."
    )
    username: str | None = Field(default=None, min_length=1, max_length=320)
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Sealed with the stack's KMS key and never returned. On update, omit it to keep "
        "the stored one (same username only).",
    )
    sender_domains: list[Annotated[str, Field(max_length=253)]] = Field(
        min_length=1,
        max_length=service.MAX_SENDER_DOMAINS,
        description="Domains of this organization whose mail this relay sends (422 unknown_domain); a "
        "domain belongs to one relay at most (409 domain_has_relay)",
    )


class RelayView(BaseModel):
    id: str
    host: str
    port: int
    security: Security
    username: str | None
    password_set: bool = Field(description="A password is stored (it is never returned)")
    sender_domains: list[str]
    created_at: Timestamp
    updated_at: Timestamp


class StartTest(Strict):
    relay_id: str = Field(max_length=64, description="The relay to test (rly_...)")
    send_to: EmailStr | None = Field(
        default=None, description="Also send a short test message to this address through the relay"
    )
    from_: EmailStr | None = Field(
        default=None,
        alias="from",
        description="The test message's sender; default the username if it is an address, else "
        "postmaster@ the relay's first sender domain",
    )


class TestStep(BaseModel):
    step: Literal["resolve", "connect", "tls", "auth", "send"]
    ok: bool
    reply: str | None = Field(description="The server's reply at this step (passwords are never echoed)")
    detail: str | None


class TestJob(BaseModel):
    id: str
    relay_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    send_to: str | None
    steps: list[TestStep] = Field(description="In order; the last one failed when the status is failed")
    created_at: Timestamp
    finished_at: Timestamp | None


@router.get("/smtp", name="smtp.list", response_model=ListOf[RelayView], summary="List SMTP relays")
async def list_relays(
    request: Request,
    principal: Annotated[Principal, Depends(require(READ))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """The organization's outbound SMTP relays, with the sender domains each sends for."""
    page = service.list_relays(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [service.relay_view(r) for r in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=None)


@router.put(
    "/smtp",
    name="smtp.put",
    response_model=One[RelayView],
    summary="Create or update an SMTP relay",
    responses={
        **RELAY_404,
        **errors(
            e409="domain_has_relay: a sender domain already sends through another relay",
            e422="invalid_host, unknown_domain, insecure_auth (credentials over security none), "
            "password_required, relay_limit_reached, validation_error",
        ),
    },
)
async def put_relay(
    body: PutRelay,
    request: Request,
    principal: Annotated[Principal, Depends(require(WRITE))],
) -> dict[str, Any]:
    """Mail from the sender domains goes through this server instead of SES from now on, with the
    same Sent copy, threading, events and suppression checks. Without `id` a relay is created."""
    audit_target(request, "smtp_relay", body.id or "-", host=body.host)
    relay, _created = service.put_relay(
        Table(),
        principal.org_id,
        service.RelayInput(
            relay_id=body.id,
            host=body.host,
            port=body.port,
            security=body.security,
            username=body.username,
            password=body.password,
            sender_domains=body.sender_domains,
        ),
    )
    audit_target(request, "smtp_relay", relay["id"], host=relay["host"])
    return one(service.relay_view(relay))


@router.delete(
    "/smtp/{relay_id}",
    name="smtp.delete",
    status_code=204,
    summary="Delete an SMTP relay",
    responses=RELAY_404,
)
async def delete_relay(
    request: Request, relay_id: RelayId, principal: Annotated[Principal, Depends(require(WRITE))]
) -> Response:
    """Delete the relay; its sender domains send through SES again."""
    table = Table()
    relay = service.load(table, principal.org_id, relay_id)
    audit_target(request, "smtp_relay", relay["id"], host=relay["host"])
    service.delete_relay(table, relay)
    return Response(status_code=204)


@router.post(
    "/smtp:test",
    name="smtp.test",
    status_code=202,
    response_model=One[TestJob],
    summary="Test an SMTP relay",
    responses=errors(e404="not_found: no such SMTP relay in this organization"),
)
async def start_test(
    body: StartTest, request: Request, principal: Annotated[Principal, Depends(require(WRITE))]
) -> dict[str, Any]:
    """Starts an asynchronous test of the relay: resolve (public addresses only), connect, TLS with
    certificate verification, AUTH, and with `send_to` a test message. Follow it with
    `GET /api/v1/smtp:test-status/{jobId}`."""
    table = Table()
    relay = service.load(table, principal.org_id, body.relay_id)
    audit_target(request, "smtp_relay", relay["id"], host=relay["host"])
    job = service.start_test(
        table,
        relay,
        send_to=str(body.send_to) if body.send_to else None,
        sender=str(body.from_) if body.from_ else None,
    )
    return one(service.test_view(job))


@router.get(
    "/smtp:test-status/{test_job_id}",
    name="smtp.test_status",
    response_model=One[TestJob],
    summary="An SMTP relay test's outcome",
    responses=errors(e404="not_found: no such test in this organization (tests are kept 7 days)"),
)
async def test_status(
    test_job_id: TestJobId, principal: Annotated[Principal, Depends(require(READ))]
) -> dict[str, Any]:
    """Each step's outcome and the server's replies; `queued` or `running` until the test ends."""
    return one(service.test_view(service.load_test(Table(), principal.org_id, test_job_id)))
