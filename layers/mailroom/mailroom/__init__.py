"""Mailroom: a self-hostable email platform API.

Layout: ``domain`` is pure logic (no AWS), ``store`` is the only code that talks to AWS,
``api`` holds the HTTP surface (routers, errors, pagination, idempotency, rate limits),
``services`` the use cases that join them, and ``events`` the domain events.
"""

__version__ = "0.1.0"
