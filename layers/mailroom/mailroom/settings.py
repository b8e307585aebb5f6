"""Typed settings, read from the environment once, on first use (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Settings:
    stage: str
    table_name: str
    rate_limit_per_minute: int
    audit_retention_days: int
    region: str
    endpoint_url: str | None
    dns_resolver: str | None
    dmarc_rua: str | None
    platform_domain: str

    @property
    def is_local(self) -> bool:
        """True when AWS is emulated (the local stack sets ``AWS_ENDPOINT_URL``)."""
        return self.endpoint_url is not None


def _int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise RuntimeError(f"{name} must be >= {minimum}, got {value}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        stage=os.environ.get("MAILROOM_STAGE", "dev"),
        table_name=os.environ.get("MAILROOM_TABLE_NAME", "mailroom"),
        rate_limit_per_minute=_int("MAILROOM_RATE_LIMIT_PER_MINUTE", 600, minimum=1),
        audit_retention_days=_int("MAILROOM_AUDIT_RETENTION_DAYS", 365, minimum=1),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        dns_resolver=os.environ.get("MAILROOM_DNS_RESOLVER") or None,
        dmarc_rua=os.environ.get("MAILROOM_DMARC_RUA") or None,
        platform_domain=os.environ.get("MAILROOM_PLATFORM_DOMAIN", "mailroom.localhost"),
    )
