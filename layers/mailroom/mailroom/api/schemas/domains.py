"""The request bodies of ``/api/v1/domains`` (api/routers/domains.py): mailcow's domain fields
(mailcow-style-management-api.txt) for create, bulk add, PATCH (the fields sent) and PUT (the
whole domain), and the catch-all."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from mailroom.api.models import Strict
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain
from mailroom.services import domains as service

MAX_BULK = 50

DOMAIN_NAME_PATTERN = r"^[^\s@]+\.[^\s@.]+\.?$"
DOMAIN_NAME_RULES = (
    "A domain name with at least two labels, e.g. example.com; internationalized names (bücher.example) "
    "are accepted and stored as punycode, case and a trailing dot are ignored. Refused with 422: IP "
    "addresses, labels over 63 characters or with characters other than letters, digits and inner "
    "hyphens, numeric top-level labels, reserved names (localhost, test, example, invalid, local, "
    "internal)."
)


class _NamedDomain(Strict):
    """The checks of a domain's name and backup-MX flag, shared by create and full replace (each
    declares the fields with its own defaults and descriptions)."""

    @field_validator("domain", check_fields=False)
    @classmethod
    def valid_name(cls, value: str) -> str:
        try:
            return normalize_domain(value)
        except InvalidDomainName as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("backupmx", check_fields=False)
    @classmethod
    def no_backup_mx(cls, value: bool) -> bool:
        if value:
            raise ValueError("Mailroom receives through SES; it cannot act as a backup MX")
        return value


class DomainLimits(Strict):
    """The mailcow domain limits (MB for quotas)."""

    mailboxes: int | None = Field(default=None, ge=0, le=1_000_000, description="Max mailboxes (default 50)")
    aliases: int | None = Field(default=None, ge=0, le=1_000_000, description="Max aliases (default 400)")
    defquota: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Default mailbox quota, MB (default 3072)"
    )
    maxquota: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Max quota of one mailbox, MB (default 10240)"
    )
    quota: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        description="Total of the domain's mailbox quotas, MB (default 10240); at most the organization's "
        "storage",
    )

    def given(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if k in service.DEFAULT_LIMITS and v is not None}


class CreateDomain(DomainLimits, _NamedDomain):
    """A domain to host. Its limits must be consistent: defquota ≤ maxquota ≤ quota (missing ones
    take their defaults: 3072, 10240, 10240 MB); a quota above the organization's storage is 422."""

    # The pattern is documented; the validator below gives the precise reason a name is refused.
    domain: str = Field(
        min_length=1,
        max_length=300,
        json_schema_extra={"pattern": DOMAIN_NAME_PATTERN},
        description=DOMAIN_NAME_RULES,
    )
    active: bool = True
    description: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=2000)
    feedback_enabled: bool = Field(default=True, description="Bounce and complaint feedback to the sender")
    backupmx: bool = Field(
        default=False,
        json_schema_extra={"enum": [False]},
        description="Backup MX is not supported (mail is received through SES): only false",
    )

    @model_validator(mode="after")
    def quotas_consistent(self) -> CreateDomain:
        inconsistent = service.check_quotas(self.given())
        if inconsistent:
            raise ValueError(inconsistent)
        return self

    def request(self) -> service.NewDomain:
        return service.NewDomain(
            domain=self.domain,
            active=self.active,
            description=self.description,
            note=self.note,
            feedback_enabled=self.feedback_enabled,
            limits=self.given(),
        )


class UpdateDomain(DomainLimits):
    """Only the fields sent change (a null limit or flag leaves it as it is). Limits cannot go below
    what the domain uses (mailboxes, aliases, the sum of its mailbox quotas), and the quotas merged
    with the current ones must stay consistent: defquota ≤ maxquota ≤ quota."""

    active: bool | None = None
    description: str | None = Field(default=None, max_length=500, description="null clears it")
    feedback_enabled: bool | None = None

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name in ("active", "feedback_enabled"):
            if getattr(self, name) is not None:
                fields[name] = getattr(self, name)
        if "description" in self.model_fields_set:
            fields["description"] = self.description
        return fields


class ReplaceDomain(_NamedDomain):
    """mailcow's domain update (PUT): the page's required fields are all required, and an optional
    field left out takes its default (description: none, feedback_enabled: true). The domain's
    note and catch-all have their own endpoints and are kept. Quotas must be consistent
    (defquota ≤ maxquota ≤ quota) and limits cannot go below what the domain uses."""

    domain: str = Field(
        min_length=1,
        max_length=300,
        description="The domain's name, as in the path (a domain cannot be renamed: another name is 422)",
    )
    active: bool = Field(
        description="false: the domain sends and receives nothing and gets no new addresses; its "
        "mailboxes and aliases stay"
    )
    aliases: int = Field(ge=0, le=1_000_000, description="Max aliases")
    backupmx: bool = Field(
        default=False,
        json_schema_extra={"enum": [False]},
        description="Backup MX is not supported (mail is received through SES): only false",
    )
    defquota: int = Field(ge=1, le=10_000_000, description="Default mailbox quota, MB")
    description: str | None = Field(default=None, max_length=500, description="Left out or null: none")
    mailboxes: int = Field(ge=0, le=1_000_000, description="Max mailboxes")
    maxquota: int = Field(ge=1, le=10_000_000, description="Max quota of one mailbox, MB")
    quota: int = Field(
        ge=1, le=100_000_000, description="Total of the domain's mailbox quotas, MB; at most the storage"
    )
    feedback_enabled: bool = Field(default=True, description="Bounce and complaint feedback to the sender")

    @model_validator(mode="after")
    def quotas_consistent(self) -> ReplaceDomain:
        inconsistent = service.check_quotas(self.limits())
        if inconsistent:
            raise ValueError(inconsistent)
        return self

    def limits(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in service.DEFAULT_LIMITS}

    def fields(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "description": self.description,
            "feedback_enabled": self.feedback_enabled,
        }


class BulkAdd(Strict):
    domains: list[CreateDomain] = Field(min_length=1, max_length=MAX_BULK)


class CatchAll(Strict):
    catch_all: str | None = Field(
        max_length=320,
        description="Address that receives mail for unknown recipients of the domain (a-zA-Z0-9._%+- local "
        "part); on one of the organization's domains it must be an existing mailbox or alias. null disables.",
    )
