"""Build the FastAPI app of one Lambda function from its routers (``entry.http`` serves it)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from mailroom import __version__
from mailroom.api import errors
from mailroom.api.paths import TrailingSlash
from mailroom.api.pipeline import MailroomRoute, Pipeline

DESCRIPTION = (
    "Mailroom: domains, mailboxes, mail, webhooks and migrations for teams and AI agents. "
    "`/api/v1` follows the TrekMail conventions (Bearer tokens, Idempotency-Key on POST/PUT, "
    "error envelope, cursor pages); `/api/v0` follows the agentmail v0 reference."
)


def create_app(*routers: APIRouter) -> FastAPI:
    app = FastAPI(
        title="Mailroom API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,  # served once, by the openapi function, for every router
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    app.middleware("http")(Pipeline(*routers))
    # Added last, so outermost: the pipeline and routing see the path without its trailing slash.
    app.add_middleware(TrailingSlash)
    for router in routers:
        # Every route must run the route half of the pipeline (auth requirement, idempotency, audit).
        unwrapped = [getattr(r, "path", r) for r in router.routes if not isinstance(r, MailroomRoute)]
        if unwrapped:
            raise TypeError(f"routes not made with api_router(): {unwrapped}")
        app.include_router(router)
    return app
