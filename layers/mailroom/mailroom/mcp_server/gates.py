"""The safety gates: which tools a server offers, what a call must carry, and its Idempotency-Key.

Settings (read when a server is built, never at import):

* ``MAILROOM_MCP_READ_ONLY=true``: only read tools are offered or run.
* ``MAILROOM_MCP_ALLOW_DESTRUCTIVE=true``: destructive tools are offered; each call still needs
  ``confirm`` equal to its target.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailroom.mcp_server.curation import Gate
from mailroom.mcp_server.tools import OperationTool, describe_target

READ_ONLY_ENV = "MAILROOM_MCP_READ_ONLY"
ALLOW_DESTRUCTIVE_ENV = "MAILROOM_MCP_ALLOW_DESTRUCTIVE"
_TRUE = frozenset({"1", "true", "yes", "on"})


class Refused(Exception):
    """A gate refused the call; ``code``, ``message`` and ``hint`` go back as the tool error."""

    def __init__(self, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


@dataclass(frozen=True, slots=True)
class Flags:
    read_only: bool = False
    allow_destructive: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Flags:
        env = os.environ if environ is None else environ
        return cls(
            read_only=env.get(READ_ONLY_ENV, "").strip().lower() in _TRUE,
            allow_destructive=env.get(ALLOW_DESTRUCTIVE_ENV, "").strip().lower() in _TRUE,
        )

    def offers(self, gate: Gate) -> bool:
        if gate is Gate.READ:
            return True
        if self.read_only:
            return False
        return gate is Gate.WRITE or self.allow_destructive


def check(flags: Flags, tool: OperationTool, arguments: Mapping[str, Any]) -> None:
    """Raise ``Refused`` unless the gates let this call through (the tool may not even be listed:
    a client can call a name it guessed)."""
    if tool.gate is not Gate.READ and flags.read_only:
        raise Refused(
            "read_only",
            f"{tool.name} changes data and this MCP server is read-only.",
            f"Unset {READ_ONLY_ENV} in the server's configuration to allow writes.",
        )
    if tool.gate is not Gate.DESTRUCTIVE:
        return
    if not flags.allow_destructive:
        raise Refused(
            "destructive_disabled",
            f"{tool.name} is destructive or costly and this MCP server does not allow such tools.",
            f"Set {ALLOW_DESTRUCTIVE_ENV}=true in the server's configuration to offer them.",
        )
    expected = confirm_value(tool, arguments)
    given = arguments.get("confirm")
    if not isinstance(given, str) or not expected or given != expected:
        raise Refused(
            "confirmation_mismatch",
            f"{tool.name} needs `confirm` equal to {describe_target(tool.confirm_target)}"
            + ("" if given is None else "; the one given does not match")
            + ".",
            "Check the target with the user, then call again with confirm set to it exactly.",
        )


def confirm_value(tool: OperationTool, arguments: Mapping[str, Any]) -> str | None:
    kind, _, name = tool.confirm_target.partition(".")
    if kind == "tool":
        return tool.name
    source = arguments.get("body") if kind == "body" else arguments
    value = source.get(name) if isinstance(source, Mapping) else None
    return value if isinstance(value, str) else None


def idempotency_key(tool_name: str, arguments: Mapping[str, Any]) -> str:
    """The key of a write: the caller's ``idempotency_key``, else one derived from the tool and its
    arguments, so the same call retried (by a client, an agent loop, a flaky connection) replays
    the first answer instead of acting twice. The API keeps keys per token for 24 hours."""
    given = arguments.get("idempotency_key")
    if isinstance(given, str) and given:
        return f"mcp-{given}"
    canonical = json.dumps(
        {"tool": tool_name, "arguments": {k: v for k, v in arguments.items() if k != "idempotency_key"}},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return "mcp-" + hashlib.sha256(canonical.encode()).hexdigest()
