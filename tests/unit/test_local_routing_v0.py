"""The local gateway routes ``/api/v0/inboxes/{inboxId}/...`` the way API Gateway does: a route with
an ``{inboxId}`` parameter and a greedy tail wins over one with fewer literal segments, the inbox's
own routes keep the inbox, and the path parameters come out decoded. Checked on the repository's
template (the wiring that deploys) and on the shapes alone."""

from pathlib import Path

import pytest

from local.routing import RouteTable
from local.stack import HttpRoute, Stack

REPO = Path(__file__).resolve().parents[2]
INBOX = "mbx_01JAAAAAAAAAAAAAAAAAAAAAAA"


def route(method: str, path: str, function: str) -> HttpRoute:
    return HttpRoute(method=method, path=path, function=function, api="Api", authorizer="A")


SHAPES = RouteTable(
    [
        route("ANY", "/api/v0/inboxes", "inboxes"),
        route("ANY", "/api/v0/inboxes/{inboxId}", "inbox"),
        route("ANY", "/api/v0/inboxes/{proxy+}", "inbox-greedy"),
        route("ANY", "/api/v0/inboxes/{inboxId}/messages", "mail"),
        route("ANY", "/api/v0/inboxes/{inboxId}/messages/{proxy+}", "mail"),
        route("ANY", "/api/v0/inboxes/{inboxId}/threads", "mail"),
        route("ANY", "/api/v0/inboxes/{inboxId}/threads/{proxy+}", "mail"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "function", "params"),
    [
        ("POST", "/api/v0/inboxes", "inboxes", {}),
        ("GET", f"/api/v0/inboxes/{INBOX}", "inbox", {"inboxId": INBOX}),
        ("GET", f"/api/v0/inboxes/{INBOX}/messages", "mail", {"inboxId": INBOX}),
        ("POST", f"/api/v0/inboxes/{INBOX}/messages/send", "mail", {"inboxId": INBOX, "proxy": "send"}),
        (
            "GET",
            f"/api/v0/inboxes/{INBOX}/messages/msg_1/attachments/att_2",
            "mail",
            {"inboxId": INBOX, "proxy": "msg_1/attachments/att_2"},
        ),
        ("DELETE", f"/api/v0/inboxes/{INBOX}/threads/thr_1", "mail", {"inboxId": INBOX, "proxy": "thr_1"}),
        ("GET", f"/api/v0/inboxes/{INBOX}/threads", "mail", {"inboxId": INBOX}),
        # Nothing more specific: the greedy inbox route, never the mail function.
        ("GET", f"/api/v0/inboxes/{INBOX}/other", "inbox-greedy", {"proxy": f"{INBOX}/other"}),
        ("GET", "/api/v0/inboxes/a%2Fb/messages", "mail", {"inboxId": "a/b"}),
    ],
)
def test_inbox_parameter_routes_beat_greedy_ones(
    method: str, path: str, function: str, params: dict[str, str]
) -> None:
    match = SHAPES.match(method, path)
    assert match is not None
    assert (match.route.function, match.path_parameters) == (function, params)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/api/v0/inboxes/{INBOX}/messages/send"),
        ("GET", f"/api/v0/inboxes/{INBOX}/messages"),
        ("GET", f"/api/v0/inboxes/{INBOX}/messages/msg_1"),
        ("PATCH", f"/api/v0/inboxes/{INBOX}/messages/msg_1"),
        ("POST", f"/api/v0/inboxes/{INBOX}/messages/msg_1/reply-all"),
        ("GET", f"/api/v0/inboxes/{INBOX}/messages/msg_1/attachments/att_1"),
        ("GET", f"/api/v0/inboxes/{INBOX}/threads"),
        ("GET", f"/api/v0/inboxes/{INBOX}/threads/thr_1"),
        ("DELETE", f"/api/v0/inboxes/{INBOX}/threads/thr_1"),
    ],
)
def test_the_template_routes_inbox_mail_to_the_agent_messages_function(method: str, path: str) -> None:
    stack = Stack.load(REPO / "template.yaml")
    match = RouteTable(stack.routes).match(method, path)
    assert match is not None
    assert match.route.function == "AgentMessagesFunction"
    assert match.path_parameters["inboxId"] == INBOX
    assert match.route.authorizer is None  # every API function authenticates the token itself
