"""First-start setup: the default organization with its admin token and an ``inai_`` API key (the
``/api/v0`` credential), the platform domain's SES identity, and ``local.env`` for the CLI."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from local.files import atomic_write

log = logging.getLogger(__name__)

TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret
API_KEY_FILE = "api-key"
ENV_FILE = "local.env"
DEFAULT_ORGANIZATION = "Default"


def ensure_admin_token(state_dir: Path) -> str | None:
    """Create the default organization and its admin token unless the state folder has one.

    Returns the new token (shown once), or None when it already existed.
    """
    path = state_dir / TOKEN_FILE
    if path.exists():
        return None
    # Imported here: the mailroom package reads its settings from the environment the stack sets up.
    from mailroom.services.organizations import create_organization
    from mailroom.store.table import Table

    created = create_organization(Table(), name=DEFAULT_ORGANIZATION)
    atomic_write(path, f"{created.admin_token}\n".encode(), mode=0o600)
    log.warning(
        "\n\n  Created organization %r (%s) with an admin token holding every scope:\n\n    %s\n\n"
        "  It is shown once; it is also in %s (mode 0600).\n",
        DEFAULT_ORGANIZATION,
        created.organization["id"],
        created.admin_token,
        path,
    )
    return created.admin_token


def ensure_api_key(state_dir: Path) -> str | None:
    """An API key of the admin token's organization, in ``api-key`` (mode 0600), unless the state
    folder has one: so ``/api/v0`` works at once, on a new state folder and on one made before.

    Returns the new key (shown once), or None when it already existed or the admin token is gone.
    """
    path = state_dir / API_KEY_FILE
    token_path = state_dir / TOKEN_FILE
    if path.exists() or not token_path.exists():
        return None
    from mailroom.domain.tokens import hash_token
    from mailroom.services.tokens import issue_api_key
    from mailroom.store import tokens
    from mailroom.store.table import Table

    table = Table()
    admin = tokens.find_by_hash(table, hash_token(token_path.read_text().strip()))
    if admin is None:
        log.warning("%s holds a revoked token: no API key was created", token_path)
        return None
    new = issue_api_key(table, org_id=admin["org_id"], name="local", created_by=None)
    atomic_write(path, f"{new.plaintext}\n".encode(), mode=0o600)
    log.warning(
        "\n\n  Created an API key of organization %s for /api/v0 (organization-wide):\n\n    %s\n\n"
        "  It is shown once; it is also in %s (mode 0600).\n",
        admin["org_id"],
        new.plaintext,
        path,
    )
    return new.plaintext


def ensure_platform_domain() -> str:
    """Register the platform domain with the emulated SES (once; later starts only check), so mail
    to an inbox on it is received like mail to any hosted domain. Returns the domain."""
    from mailroom.services import platform_domain
    from mailroom.store.table import Table

    registration = platform_domain.register_identity(Table())
    if registration.registered_now:
        log.info("platform domain %s registered with SES", registration.claim["domain"])
    return str(registration.claim["domain"])


def write_local_env(state_dir: Path, values: Mapping[str, str]) -> Path:
    """KEY=VALUE lines the operator CLI (``mailroom admin --local``) reads to reach this stack."""
    path = state_dir / ENV_FILE
    atomic_write(path, "".join(f"{k}={v}\n" for k, v in values.items()).encode(), mode=0o600)
    return path
