"""What can go wrong talking to a source IMAP server, in words a person can act on."""

from __future__ import annotations

from typing import Final

from mailroom.domain.migrations import mask_email

CODES: Final = ("connection_failed", "auth_failed", "tls_failed", "timeout", "protocol_error")

_DEFAULT_MESSAGES: Final = {
    "connection_failed": "Could not connect to the IMAP server",
    "auth_failed": "The IMAP server refused the login",
    "tls_failed": "Could not establish a secure connection to the IMAP server",
    "timeout": "The IMAP server did not answer in time",
    "protocol_error": "The IMAP server sent an answer that could not be understood",
}


class SourceError(Exception):
    """A failure of the source server or the way to it.

    ``code`` is one of ``CODES``; ``str(error)`` is a readable sentence. Messages are built by this
    package from facts (host, port, masked username, the server's own response text) and never
    carry the password.
    """

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown SourceError code {code!r}")
        self.code = code
        self.message = message or _DEFAULT_MESSAGES[code]
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"SourceError({self.code!r}, {self.message!r})"


def mask_username(username: str) -> str:
    """``jane@example.com`` -> ``j***e@example.com``: enough to recognise, not enough to harvest
    (the masking the migrations API shows source addresses with)."""
    return mask_email(username)


def scrub(text: str, secret: str) -> str:
    """``text`` with ``secret`` blanked out, for server text that could echo what it was sent."""
    return text.replace(secret, "***") if secret else text
