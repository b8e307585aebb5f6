"""What every step of the migration state machine works with: the execution's state, the job it
must still be running for (else ``JobInactive``: the machine's ``Stopped``), the target mailbox,
the sealed source password, a source session with the stack's network policy, and the errors a
step ends with (statemachines/migration.asl.json retries or catches them by name).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from mailroom import clock
from mailroom.domain import migrations as rules
from mailroom.services import migration_jobs as jobs
from mailroom.settings import get_settings
from mailroom.store import kms, mailboxes
from mailroom.store import migrations as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table

if TYPE_CHECKING:
    from mailroom.imap.source import SourceAccount, SourceError, SourceSession

T = TypeVar("T")


class MigrationFailed(Exception):
    """Ends the job as failed: the failure step reads ``code[/reason]: message`` back."""

    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(rules.error_payload(code, message, reason))


class SourceUnavailable(Exception):
    """A source problem that may pass (timeout, dropped connection): Step Functions retries the
    step with backoff; if it persists the job fails with its message."""

    def __init__(self, error: SourceError) -> None:
        super().__init__(rules.error_payload("connection_failed", jobs.readable(error), error.code))


class JobInactive(Exception):
    """The job was cancelled, retried or deleted: this execution has nothing left to do."""


class BatchIncomplete(Exception):
    """The batch ran short of time; what it did is checkpointed and the next run continues."""


@dataclass(frozen=True, slots=True)
class State:
    org_id: str
    job_id: str
    attempt: int
    segment: int = 0
    cursor: int = 0
    windows_run: int = 0

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> State:
        state = event.get("state") or {}
        return cls(
            org_id=str(state["org_id"]),
            job_id=str(state["job_id"]),
            attempt=int(state["attempt"]),
            segment=int(state.get("segment", 0)),
            cursor=int(state.get("cursor", 0)),
            windows_run=int(state.get("windows_run", 0)),
        )

    def identity(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "segment": self.segment,
        }


def active_job(table: Table, state: State, statuses: frozenset[str] = rules.ACTIVE) -> Item:
    return still_active(store.get(table, state.org_id, state.job_id), state, statuses)


def still_active(job: Item | None, state: State, statuses: frozenset[str] = rules.ACTIVE) -> Item:
    """``job`` (as read) if it is still running in the state's attempt, else ``JobInactive``."""
    if job is None or int(job.get("attempt", 1)) != state.attempt or job["status"] not in statuses:
        raise JobInactive(f"{state.job_id} attempt {state.attempt} is no longer running")
    return job


def advance(table: Table, state: State, from_statuses: list[str], **fields: Any) -> Item:
    try:
        return store.advance(
            table,
            state.org_id,
            state.job_id,
            attempt=state.attempt,
            from_statuses=from_statuses,
            fields={**fields, "updated_at": clock.now_iso()},
        )
    except ConditionFailed as exc:
        raise JobInactive(f"{state.job_id} moved on") from exc


def source_password(table: Table, job: Item) -> str:
    return unsealed_password(job, store.get_secret(table, job["org_id"], job["id"]))


def unsealed_password(job: Item, sealed: bytes | None) -> str:
    """The source password from its sealed copy (``None``: expired, the migration fails)."""
    if sealed is None:
        raise MigrationFailed(
            rules.SECRET_EXPIRED,
            "The stored source password has expired; retry the migration with source_password.",
        )
    return kms.decrypt(sealed, jobs.secret_context(job["org_id"], job["id"])).decode()


def target_mailbox(table: Table, job: Item) -> Item:
    mailbox = mailboxes.get(table, job["org_id"], job["mailbox_id"])
    if mailbox is None or not mailbox.get("active", True):
        raise MigrationFailed(rules.TARGET_UNAVAILABLE, "The target mailbox was deleted or deactivated.")
    return mailbox


def _account(job: Item, password: str) -> SourceAccount:
    source = jobs.Source(
        provider=str(job["provider"]),
        email=str(job["source_email"]),
        password=password,
        username=job.get("source_username"),
    )
    server = jobs.Server(str(job["source_host"]), int(job["source_port"]), str(job["source_security"]))
    return jobs.source_account(source, server)


@contextlib.asynccontextmanager
async def source_session(job: Item, password: str) -> AsyncIterator[SourceSession]:
    """A logged-in source session with the stack's network policy (``MAILROOM_IMAP_*``)."""
    from mailroom.imap.source import SourceSession

    settings = get_settings()
    session = await SourceSession.open(
        _account(job, password), allow_private=settings.imap_allow_private, ca_file=settings.imap_ca_file
    )
    try:
        yield session
    finally:
        await session.close()


def source_failure(error: SourceError) -> Exception:
    if error.code in ("timeout", "connection_failed"):
        return SourceUnavailable(error)
    return MigrationFailed("connection_failed", jobs.readable(error), error.code)


def run_source(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on this thread's loop; a source problem becomes the step's error: a
    timeout or dropped connection is retried by Step Functions, anything else (wrong password,
    TLS failure, a server that cannot be understood) ends the job with ``connection_failed``."""
    from mailroom.imap.source import SourceError
    from mailroom.loops import run_on_thread_loop

    try:
        return run_on_thread_loop(coro)
    except SourceError as exc:
        raise source_failure(exc) from None
