"""GET /api/openapi.json (no auth)."""

from mailroom.entry.http import openapi as handler

__all__ = ["handler"]
