"""Lambda authorizer: classifies the bearer token; see mailroom.auth for why it never denies."""

from mailroom.entry.authorizer import handler

__all__ = ["handler"]
