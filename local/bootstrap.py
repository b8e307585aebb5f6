"""First-start setup: the default organization with its admin token, and ``local.env`` for the CLI."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from local.files import atomic_write

log = logging.getLogger(__name__)

TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret
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


def write_local_env(state_dir: Path, values: Mapping[str, str]) -> Path:
    """KEY=VALUE lines the operator CLI (``mailroom admin --local``) reads to reach this stack."""
    path = state_dir / ENV_FILE
    atomic_write(path, "".join(f"{k}={v}\n" for k, v in values.items()).encode(), mode=0o600)
    return path
