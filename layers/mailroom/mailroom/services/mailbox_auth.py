"""Mailbox sign-in: address + password → a short-lived message token for that mailbox.

* Every attempt is counted per address in a fixed window before the password is checked
  (``MAILROOM_SIGNIN_MAX_FAILURES`` per ``MAILROOM_SIGNIN_WINDOW_SECONDS``); past the limit the
  answer is 429 ``too_many_attempts`` with Retry-After, even for the right password. A successful
  sign-in clears the window. Unknown addresses are counted the same way.
* A wrong password and an unknown address get the same 401 ``invalid_credentials`` after the same
  work (a dummy hash is computed when there is no mailbox), so the answer reveals nothing.
* Only after the password is proven right: an inactive mailbox → 403 ``mailbox_inactive``;
  ``force_pw_update`` → 403 ``password_change_required`` (an ops token sets a new password with
  ``POST /api/v1/mailboxes/{id}/password``, which clears the flag).
* The token lives ``MAILROOM_SIGNIN_TOKEN_TTL_SECONDS`` (1 hour) and carries all message scopes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from mailroom import clock
from mailroom.domain import addresses as address_rules
from mailroom.domain import passwords
from mailroom.domain import plans as plan_rules
from mailroom.domain.scopes import MESSAGE_SCOPES
from mailroom.errors import Forbidden, MailroomError, TooManyRequests, Unauthenticated
from mailroom.services import message_tokens as token_service
from mailroom.services import plans
from mailroom.settings import get_settings
from mailroom.store import addresses, domains, message_tokens, platform_domain, signin_attempts
from mailroom.store import mailboxes as mailbox_store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table


@dataclass(frozen=True, slots=True)
class SignInResult:
    """``mailbox`` is set whenever the address is a mailbox (so failures can be audited in its
    organization); ``error`` is what to answer instead of a token."""

    mailbox: Item | None
    token: token_service.NewMessageToken | None = None
    error: MailroomError | None = None


def invalid_credentials() -> MailroomError:
    return Unauthenticated(
        "invalid_credentials",
        "The address or the password is wrong.",
        hint="Check both; repeated failures lock the address out for a while.",
    )


def find_mailbox(table: Table, address: str) -> Item | None:
    """The mailbox that owns ``address``, across organizations (through the domain's claim, or the
    address's own on the shared platform domain)."""
    claim = platform_domain.routing_claim(
        table, domains.claim_of(table, address_rules.domain_of(address)), address
    )
    if claim is None:
        return None
    owner = addresses.resolve(table, claim["org_id"], address)
    if owner is None or owner.get("kind") != "mailbox":
        return None
    return mailbox_store.get(table, claim["org_id"], owner["id"])


def sign_in(table: Table, raw_address: str, password: str) -> SignInResult:
    settings = get_settings()
    try:
        address = address_rules.normalize_hosted(raw_address)
    except address_rules.InvalidAddress:
        address = raw_address.strip().lower()
    now = int(clock.utcnow().timestamp())
    attempt = signin_attempts.begin(
        table,
        address,
        now=now,
        window=settings.signin_window_seconds,
        max_attempts=settings.signin_max_failures,
    )
    mailbox = find_mailbox(table, address) if "@" in address else None
    if not attempt.allowed:
        return SignInResult(
            mailbox=mailbox,
            error=TooManyRequests(
                "too_many_attempts",
                "Too many sign-in attempts for this address.",
                hint=f"Retry after {attempt.retry_after} seconds.",
                retryable=True,
                retry_after=attempt.retry_after,
            ),
        )
    stored = mailbox.get("password_hash") if mailbox else None
    if not passwords.verify_password(password, stored) or mailbox is None:
        return SignInResult(mailbox=mailbox, error=invalid_credentials())
    signin_attempts.succeeded(table, address, now=now, window=settings.signin_window_seconds)
    if not mailbox.get("active", True):
        return SignInResult(
            mailbox=mailbox,
            error=Forbidden(
                "mailbox_inactive",
                "This mailbox is deactivated.",
                hint="Ask an administrator to activate it.",
            ),
        )
    if mailbox.get("force_pw_update"):
        return SignInResult(
            mailbox=mailbox,
            error=Forbidden(
                "password_change_required",
                "This mailbox's password must be changed before it can sign in.",
                hint="An administrator sets a new password with POST /api/v1/mailboxes/{id}/password "
                "(ops token with mailboxes:write); that clears the requirement.",
            ),
        )
    blocked = plan_rules.blocked_scopes(MESSAGE_SCOPES, plans.gate_of(table, mailbox["org_id"]).allowed)
    if blocked:
        return SignInResult(
            mailbox=mailbox,
            error=Forbidden(
                "token_scope_blocked_by_plan",
                "The organization's plan does not include message tokens, which signing in issues.",
                hint="Ask the operator for a plan with message tokens (Pro or Agency).",
            ),
        )
    if stored and passwords.needs_rehash(stored):
        # Cost parameters were raised since this hash was made: upgrade it while the password is known.
        with contextlib.suppress(ConditionFailed):
            mailbox_store.update(mailbox["org_id"], mailbox["id"]).set(
                password_hash=passwords.hash_password(password)
            ).apply(table)
    expires = clock.utcnow() + timedelta(seconds=settings.signin_token_ttl_seconds)
    token = token_service.issue(
        table,
        mailbox,
        name="sign-in",
        scopes=MESSAGE_SCOPES,
        kind=message_tokens.SESSION,
        created_by=None,
        expires_at=expires,
    )
    return SignInResult(mailbox=mailbox, token=token)
