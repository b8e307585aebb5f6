"""Explicit limits on inbound mail. A message that breaks one is quarantined, never lost."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_message_bytes: int = 40 * 1024 * 1024  # SES's own receiving limit
    max_header_bytes: int = 256 * 1024  # the top-level header block
    max_depth: int = 32  # multipart nesting
    max_parts: int = 1000  # MIME parts in total
    max_body_chars: int = 2 * 1024 * 1024  # decoded text or HTML kept for the API


DEFAULT_LIMITS = ParseLimits()
