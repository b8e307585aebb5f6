"""The product's errors: what went wrong, in terms a client can act on, without HTTP.

Everything below ``api/`` (services, domain logic, entry points) raises these; ``api/errors.py``
gives each kind its status code and renders it in the v1 envelope or the v0 ``{name, message}``
shape, in one place. A queue worker that raises them loads no web framework.

Each kind has a default ``code`` (the envelope's machine-readable ``error.code``); a raise site
names a more precise one where the contract has it (``domain_limit_reached``, ``invite_expired``).
"""

from __future__ import annotations

from typing import ClassVar


class MailroomError(Exception):
    """An error the caller can act on: a stable ``code``, a sentence, and what to do about it."""

    default_code: ClassVar[str] = "error"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        *,
        hint: str | None = None,
        retryable: bool | None = None,
        fields: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.hint = hint
        self.retryable = self.default_retryable if retryable is None else retryable
        self.fields = fields
        # Seconds until a retry can succeed (rate limits, cool-downs); rendered as Retry-After.
        self.retry_after = retry_after


class Invalid(MailroomError):
    """The request cannot be done as asked: a field is wrong (``fields`` names it) or a rule forbids it."""

    default_code = "validation_error"


class LimitReached(Invalid):
    """A plan or organization limit would be exceeded (mailboxes, domains, storage, tokens...)."""

    default_code = "limit_reached"


class Unauthenticated(MailroomError):
    """No usable credential: missing, malformed, unknown, revoked, expired, or wrong password."""

    default_code = "unauthenticated"


class Forbidden(MailroomError):
    """The caller is known but may not do this (scope, token type, a paused or inactive mailbox)."""

    default_code = "forbidden"


class NotFound(MailroomError):
    """No such thing for this caller. Another tenant's thing is not found either, never forbidden."""

    default_code = "not_found"


class Conflict(MailroomError):
    """The current state forbids it (already exists, already running, changed meanwhile)."""

    default_code = "conflict"


class Gone(MailroomError):
    """It existed but expired or was used up (an invite, a delete intent)."""

    default_code = "gone"


class TooManyRequests(MailroomError):
    """A rate, daily limit or cool-down: the same request succeeds later (``retry_after``)."""

    default_code = "rate_limited"
    default_retryable = True


class PaymentRequired(MailroomError):
    """A metered allowance is used up (verification credits): waiting a few seconds does not help;
    the allowance renewing (next month) or growing does."""

    default_code = "payment_required"


class Unavailable(MailroomError):
    """A dependency or capacity is unavailable for now; retrying later is the right move."""

    default_code = "service_unavailable"
    default_retryable = True


class UpstreamFailed(MailroomError):
    """A dependency answered with an unexpected failure (retryable: it was not the request's fault)."""

    default_code = "upstream_failed"
    default_retryable = True


def not_found(what: str) -> NotFound:
    return NotFound("not_found", f"{what} not found", hint="Check the id; ids are case-sensitive.")


def conflict(message: str, *, code: str = "conflict", hint: str | None = None) -> Conflict:
    return Conflict(code, message, hint=hint)


def validation(message: str, *, field: str | None = None, code: str = "validation_error") -> Invalid:
    fields = [{"field": field, "message": message}] if field else None
    return Invalid(code, message, fields=fields)


def concurrent_update() -> Conflict:
    """Another request changed the same thing at that moment (a write's condition no longer held):
    nothing was done, and the same request again will see the new state."""
    return Conflict(
        "concurrent_update",
        "Another request changed the same resource at the same time.",
        hint="Retry the request.",
        retryable=True,
    )
