"""Email verification (``/api/v1/verify``): one address at a time, and the credits it consumes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field, model_validator

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain import verify_bulk as bulk_rules
from mailroom.domain.principal import Principal
from mailroom.services import verification as service
from mailroom.services import verify_bulk
from mailroom.store.table import Table

router = api_router("/api/v1/verify", tags=["verify"])
READ = "verify:read"
WRITE = "verify:write"

Status = Literal["deliverable", "undeliverable", "risky", "unknown"]
CREDITS_402 = "insufficient_credits: no verification credit is left this month (see GET /verify/credits)"


class VerifyRequest(Strict):
    email: str = Field(
        min_length=1,
        max_length=512,
        description="The address to verify, as typed (internationalized addresses are accepted). "
        "A malformed address is not an error: it is verified as undeliverable (invalid_syntax).",
        examples=["jane.doe@gmial.com"],
    )
    smtp: bool = Field(
        default=False,
        description="Also ask the domain's mail server whether it accepts the mailbox (and whether it "
        "accepts any address: catch_all), without sending mail. Slower (seconds); rate-limited per "
        "organization (429 probe_rate_limited) and per target domain; answers unknown with a reason "
        "where the deployment cannot reach port 25.",
    )


class Reason(BaseModel):
    code: str = Field(
        description="invalid_syntax, domain_not_found, null_mx, no_mail_host, mailbox_rejected, "
        "dns_unavailable, disposable, role_account, catch_all, implicit_mx, possible_typo, or why an "
        "SMTP probe had no answer: smtp_probe_disabled, smtp_unreachable, smtp_timeout, "
        "smtp_temporary_failure, smtp_rate_limited, smtp_sender_refused, smtputf8_unsupported, smtp_error"
    )
    message: str


class Checks(BaseModel):
    """Each check's result; null where it could not be made (invalid syntax, DNS unavailable, no probe)."""

    syntax: bool
    domain: bool | None = Field(description="The domain exists in DNS")
    mx: bool | None = Field(description="It publishes MX records (false with an A/AAAA fallback)")
    disposable: bool | None
    role: bool | None = Field(description="A role address (info@, support@...) rather than a person")
    free_provider: bool | None = Field(description="A consumer mailbox provider (gmail.com, outlook.com...)")
    catch_all: bool | None = Field(description="The mail server accepts any address (probe only)")
    smtp: Literal["not_requested", "accepted", "rejected", "unknown", "skipped"]


class Verification(BaseModel):
    email: str = Field(description="The address as sent")
    status: Status
    reasons: list[Reason] = Field(description="Why the status, most decisive first")
    checks: Checks
    normalized: str | None = Field(description="The address in normal form; null when it is not valid")
    suggestion: str | None = Field(
        description="The address with a common provider's domain it looks mistyped from"
    )


class VerifiedCounts(BaseModel):
    deliverable: int
    undeliverable: int
    risky: int
    unknown: int


class CreditsView(BaseModel):
    month: str = Field(description="The UTC calendar month the allowance is for (YYYY-MM)")
    allowance: int
    used: int
    remaining: int
    resets_at: Timestamp
    verified: VerifiedCounts = Field(description="This month's verifications by status")


@router.post(
    "",
    name="verify.single",
    response_model=One[Verification],
    summary="Verify an email address",
    responses=errors(
        e402=CREDITS_402,
        e429="probe_rate_limited: too many SMTP probes this minute for the organization (Retry-After)",
    ),
)
async def verify_address(
    body: VerifyRequest, request: Request, principal: Annotated[Principal, Depends(require(WRITE))]
) -> dict[str, Any]:
    """Whether mail to the address would be delivered: `deliverable`, `undeliverable`, `risky`
    (disposable, role account, catch-all) or `unknown` (DNS or the mail server gave no answer), with
    the reasons, each check's result, the normalized address and a typo suggestion. Consumes one
    credit (a replay with the same Idempotency-Key does not)."""
    audit_target(request, "verification", "-", smtp=body.smtp)
    return one(await service.verify_one(Table(), principal.org_id, body.email, smtp=body.smtp))


@router.get(
    "/credits", name="verify.credits", response_model=One[CreditsView], summary="Verification credits"
)
async def get_credits(principal: Annotated[Principal, Depends(require(READ))]) -> dict[str, Any]:
    """The organization's monthly verification allowance, what was used and what is left; credits
    renew at `resets_at` (the first of next month, UTC)."""
    return one(service.credits_of(Table(), principal.org_id).view())


# --- bulk jobs --------------------------------------------------------------------------------------

JobId = Annotated[str, Path(max_length=64, description="The job's id (vjb_...)")]
JOB_404 = errors(e404="not_found: no such verification job in this organization")
Address = Annotated[str, Field(max_length=bulk_rules.MAX_ADDRESS_LENGTH)]


class BulkRequest(Strict):
    """The addresses as a JSON list (``emails``), a CSV document (``csv``) or an uploaded CSV
    (``upload_id``): exactly one of them."""

    emails: list[Address] | None = Field(
        default=None, max_length=bulk_rules.MAX_ADDRESSES, description="One address per row"
    )
    csv: str | None = Field(
        default=None,
        max_length=bulk_rules.MAX_INLINE_CSV,
        description="A CSV document: the column named email (or e-mail, email_address, address, mail) "
        "if the first row names one, else the first column. Larger files: upload_id",
    )
    upload_id: str | None = Field(
        default=None,
        pattern=r"^vup_[0-9A-Z]{26}$",
        description="A CSV uploaded through POST /api/v1/verify/bulk/uploads (up to 32 MiB)",
    )
    smtp: bool = Field(default=False, description="Probe each address's mail server too (see POST /verify)")
    name: str | None = Field(default=None, max_length=200, description="A label for the job")

    @model_validator(mode="after")
    def one_source(self) -> BulkRequest:
        if sum(source is not None for source in (self.emails, self.csv, self.upload_id)) != 1:
            raise ValueError("send exactly one of emails, csv and upload_id")
        return self


class BulkJob(BaseModel):
    id: str
    name: str | None
    status: Literal["running", "completed", "cancelled"]
    smtp: bool
    rows: int = Field(description="Rows in the input, duplicates included")
    unique: int = Field(description="Distinct addresses: each is verified once and takes one credit")
    verified: int
    counts: VerifiedCounts = Field(description="Distinct addresses verified so far, by status")
    percent: int
    eta_seconds: int | None = Field(description="Time left at the rate so far (running jobs)")
    credits_used: int
    credits_refunded: int = Field(description="Credits given back by a cancel")
    created_at: Timestamp
    finished_at: Timestamp | None


class Upload(BaseModel):
    id: str = Field(description="Pass it as upload_id to POST /api/v1/verify/bulk once uploaded")
    url: str = Field(description="A pre-signed URL: PUT the CSV file's bytes (UTF-8) to it")
    method: Literal["PUT"]
    headers: dict[str, str] = Field(description="Headers the PUT must send (they are signed)")
    max_bytes: int = Field(description="Larger uploads are refused when the job is started")
    expires_at: Timestamp = Field(description="The URL works until then")


class Download(BaseModel):
    url: str = Field(description="A pre-signed URL of the results CSV (one row per input row)")
    expires_at: Timestamp
    content_type: str


@router.post(
    "/bulk",
    name="verify.bulk_create",
    status_code=202,
    response_model=One[BulkJob],
    summary="Start a bulk verification job",
    responses=errors(e402=CREDITS_402 + " (a job needs one per distinct address)"),
)
async def create_bulk_job(
    body: BulkRequest, request: Request, principal: Annotated[Principal, Depends(require(WRITE))]
) -> dict[str, Any]:
    """Verifies up to 100,000 addresses in the background (a JSON list, a CSV document, or a CSV
    uploaded first through `POST /api/v1/verify/bulk/uploads` when it is over about 5 MB). Each
    distinct address is verified once and takes one credit, all taken when the job starts (402
    before anything starts when too few are left); duplicates get their address's result on every
    row. Follow it with `GET /api/v1/verify/bulk/{jobId}`, then download the results CSV."""
    org_id = principal.org_id
    if body.emails is not None:
        source, rows = "emails", [e.strip() for e in body.emails]
    elif body.csv is not None:
        source, rows = "csv", verify_bulk.rows_of_csv(body.csv)
    else:
        assert body.upload_id is not None
        source, rows = "upload_id", verify_bulk.rows_of_upload(org_id, body.upload_id)
    job = verify_bulk.create_job(Table(), org_id, rows, smtp=body.smtp, name=body.name, source=source)
    if body.upload_id is not None:
        verify_bulk.discard_upload(org_id, body.upload_id)
    audit_target(request, "verify_job", job["id"], rows=job["rows"])
    return one(verify_bulk.job_view(job))


@router.post(
    "/bulk/uploads",
    name="verify.bulk_upload",
    status_code=201,
    response_model=One[Upload],
    summary="Get an upload URL for a large CSV",
)
async def create_bulk_upload(
    request: Request, principal: Annotated[Principal, Depends(require(WRITE))]
) -> dict[str, Any]:
    """For a CSV too large for a request body (over about 5 MB, up to 32 MiB and 100,000 addresses):
    PUT the file to the returned pre-signed URL with the returned headers, then start the job with
    `POST /api/v1/verify/bulk` `{"upload_id": ...}`. An upload no job reads is deleted after a day."""
    upload = verify_bulk.new_upload(principal.org_id)
    audit_target(request, "verify_upload", upload["id"])
    return one(upload)


@router.get(
    "/bulk", name="verify.bulk_list", response_model=ListOf[BulkJob], summary="List bulk verification jobs"
)
async def list_bulk_jobs(
    request: Request,
    principal: Annotated[Principal, Depends(require(READ))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """The organization's bulk verification jobs, newest first."""
    page = verify_bulk.list_jobs(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [verify_bulk.job_view(j) for j in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=None)


@router.get(
    "/bulk/{verify_job_id}",
    name="verify.bulk_get",
    response_model=One[BulkJob],
    summary="A bulk verification job's progress",
    responses=JOB_404,
)
async def get_bulk_job(
    verify_job_id: JobId, principal: Annotated[Principal, Depends(require(READ))]
) -> dict[str, Any]:
    """Counts per status, percent and ETA; `completed` when the results CSV is ready."""
    return one(verify_bulk.job_view(verify_bulk.load(Table(), principal.org_id, verify_job_id)))


@router.get(
    "/bulk/{verify_job_id}/download",
    name="verify.bulk_download",
    response_model=One[Download],
    summary="Download a bulk job's results",
    responses={**JOB_404, **errors(e409="job_not_completed: the results are not ready yet")},
)
async def download_bulk_results(
    verify_job_id: JobId, principal: Annotated[Principal, Depends(require(READ))]
) -> dict[str, Any]:
    """A pre-signed URL (valid one hour) of the results CSV: one line per input row, in input order,
    with the status, reasons, normalized address, suggestion and every check."""
    return one(verify_bulk.download(verify_bulk.load(Table(), principal.org_id, verify_job_id)))


@router.post(
    "/bulk/{verify_job_id}/cancel",
    name="verify.bulk_cancel",
    response_model=One[BulkJob],
    summary="Cancel a bulk verification job",
    responses={**JOB_404, **errors(e409="job_not_running: it completed or was cancelled already")},
)
async def cancel_bulk_job(
    verify_job_id: JobId, request: Request, principal: Annotated[Principal, Depends(require(WRITE))]
) -> dict[str, Any]:
    """Stops the job; the credits of the addresses it had not verified yet are given back."""
    table = Table()
    job = verify_bulk.load(table, principal.org_id, verify_job_id)
    audit_target(request, "verify_job", job["id"])
    return one(verify_bulk.job_view(verify_bulk.cancel(table, job)))


@router.delete(
    "/bulk/{verify_job_id}",
    name="verify.bulk_delete",
    status_code=204,
    summary="Delete a bulk verification job",
    responses={**JOB_404, **errors(e409="job_running: cancel it first")},
)
async def delete_bulk_job(
    verify_job_id: JobId, request: Request, principal: Annotated[Principal, Depends(require(WRITE))]
) -> Response:
    """Deletes the job and its files (input, results)."""
    table = Table()
    job = verify_bulk.load(table, principal.org_id, verify_job_id)
    audit_target(request, "verify_job", job["id"])
    verify_bulk.delete(table, job)
    return Response(status_code=204)
