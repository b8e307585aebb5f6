"""Build the FastAPI app of one Lambda function from its routers, and its Lambda handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI

from mailroom import __version__
from mailroom.api import errors
from mailroom.api.pipeline import MailroomRoute, Pipeline

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

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
    app.middleware("http")(Pipeline())
    for router in routers:
        # Every route must run the route half of the pipeline (auth requirement, idempotency, audit).
        unwrapped = [getattr(r, "path", r) for r in router.routes if not isinstance(r, MailroomRoute)]
        if unwrapped:
            raise TypeError(f"routes not made with api_router(): {unwrapped}")
        app.include_router(router)
    return app


def lambda_handler(*routers: APIRouter) -> LambdaHandler:
    """The ``handler`` of an API function: Mangum over the app, with the Powertools logger's context."""
    from mangum import Mangum

    from mailroom.observability import logger, metrics

    adapter = Mangum(create_app(*routers), lifespan="off")
    wrapped: LambdaHandler | None = None

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal wrapped
        if wrapped is None:
            # Built on the first event, not at import: the logger reads the environment.
            wrapped = logger().inject_lambda_context(adapter, clear_state=True)
        try:
            return wrapped(event, context)
        finally:
            # Flush only what was recorded: an empty flush warns on every request.
            if metrics().metric_set:
                metrics().flush_metrics()

    return handler
