"""Where the well-known providers' IMAP servers are, and how a migration's server settings resolve.

``security`` is how the connection is protected: ``ssl`` is TLS from the first byte (port 993),
``tls`` is STARTTLS on a plaintext connection (usually port 143; the login is refused if the server
does not offer it), ``none`` is plaintext throughout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSettings:
    host: str
    port: int
    security: str


PROVIDERS = ("gmail", "outlook", "yahoo", "icloud", "generic_imap")
SECURITY = ("ssl", "tls", "none")

PRESETS: dict[str, ServerSettings] = {
    "gmail": ServerSettings("imap.gmail.com", 993, "ssl"),
    "outlook": ServerSettings("outlook.office365.com", 993, "ssl"),
    "yahoo": ServerSettings("imap.mail.yahoo.com", 993, "ssl"),
    "icloud": ServerSettings("imap.mail.me.com", 993, "ssl"),
}


def resolve(provider: str, host: str | None, port: int | None, security: str | None) -> ServerSettings:
    """The server to connect to: what the caller gave, with a known provider's preset filling the gaps.

    ``generic_imap`` has no preset, so it needs all three. ValueError says what is wrong.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    preset = PRESETS.get(provider)
    if preset is None:
        missing = [
            name for name, value in (("host", host), ("port", port), ("security", security)) if not value
        ]
        if missing:
            raise ValueError(f"{provider} needs the source server's {', '.join(missing)}")
    resolved_host = (host or (preset.host if preset else "")).strip()
    resolved_port = port if port is not None else (preset.port if preset else 0)
    resolved_security = security or (preset.security if preset else "")
    if not resolved_host:
        raise ValueError("host must not be empty")
    if not 1 <= resolved_port <= 65535:
        raise ValueError(f"port must be between 1 and 65535, got {resolved_port}")
    if resolved_security not in SECURITY:
        raise ValueError(f"security must be one of {', '.join(SECURITY)}, got {resolved_security!r}")
    return ServerSettings(resolved_host, resolved_port, resolved_security)
