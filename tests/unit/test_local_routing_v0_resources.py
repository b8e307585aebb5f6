"""The template routes every /api/v0 resource to its function (the local gateway picks routes as API
Gateway does), and the inbox's own routes never take its mail subpaths."""

from pathlib import Path

import pytest

from local.routing import RouteTable
from local.stack import Stack

REPO = Path(__file__).resolve().parents[2]
INBOX = "mbx_01JAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture(scope="module")
def routes() -> RouteTable:
    return RouteTable(Stack.load(REPO / "template.yaml").routes)


@pytest.mark.parametrize(
    ("method", "path", "function"),
    [
        ("GET", "/api/v0/organizations", "AgentOrganizationsFunction"),
        ("POST", "/api/v0/api-keys", "AgentApiKeysFunction"),
        ("DELETE", "/api/v0/api-keys/key_1", "AgentApiKeysFunction"),
        ("POST", "/api/v0/inboxes", "AgentInboxesFunction"),
        ("GET", f"/api/v0/inboxes/{INBOX}", "AgentInboxesFunction"),
        ("PATCH", f"/api/v0/inboxes/{INBOX}", "AgentInboxesFunction"),
        ("DELETE", f"/api/v0/inboxes/{INBOX}", "AgentInboxesFunction"),
        ("GET", f"/api/v0/inboxes/{INBOX}/messages", "AgentMessagesFunction"),
        ("GET", f"/api/v0/inboxes/{INBOX}/threads/thr_1", "AgentMessagesFunction"),
        ("GET", "/api/v0/domains", "AgentDomainsFunction"),
        ("GET", "/api/v0/domains/example.com", "AgentDomainsFunction"),
        ("POST", "/api/v0/domains/example.com/verify", "AgentDomainsFunction"),
        ("PATCH", "/api/v0/webhooks/wh_1", "AgentWebhooksFunction"),
    ],
)
def test_each_v0_resource_reaches_its_function(
    routes: RouteTable, method: str, path: str, function: str
) -> None:
    match = routes.match(method, path)
    assert match is not None
    assert match.route.function == function
    assert match.route.authorizer is None  # the function authenticates the token (mailroom.auth)


def test_an_unknown_inbox_subpath_falls_to_the_default_route(routes: RouteTable) -> None:
    # No inbox route takes it; the $default route answers 404 in the v0 envelope (not API Gateway's own).
    match = routes.match("GET", f"/api/v0/inboxes/{INBOX}/other")
    assert match is not None
    assert match.route.path == "$default"
    assert match.route.function == "OpenApiFunction"
