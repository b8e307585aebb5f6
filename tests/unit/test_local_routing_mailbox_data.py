"""``/api/v1/mailbox/{mailboxId}/data`` reaches the mailbox data function, with or without a trailing
slash, also beside a greedy ``/api/v1/mailbox/{proxy+}`` (the MailTrigger mailbox view's): API
Gateway prefers a ``{param}`` segment over a greedy one, and so does the local gateway. Checked on the
repository's template and on the shapes alone."""

from pathlib import Path

import pytest

from local.routing import RouteTable
from local.stack import HttpRoute, Stack

REPO = Path(__file__).resolve().parents[2]
MAILBOX = "mbx_01JAAAAAAAAAAAAAAAAAAAAAAA"


def route(path: str, function: str) -> HttpRoute:
    return HttpRoute(method="ANY", path=path, function=function, api="Api", authorizer=None)


SHAPES = RouteTable(
    [
        route("/api/v1/mailbox", "view"),
        route("/api/v1/mailbox/{proxy+}", "view"),
        route("/api/v1/mailbox/{mailboxId}/data", "data"),
        route("/api/v1/mailbox/{mailboxId}/data/{proxy+}", "data"),
    ]
)


@pytest.mark.parametrize(
    ("path", "function", "params"),
    [
        (f"/api/v1/mailbox/{MAILBOX}/data", "data", {"mailboxId": MAILBOX}),
        (f"/api/v1/mailbox/{MAILBOX}/data/", "data", {"mailboxId": MAILBOX}),
        (f"/api/v1/mailbox/{MAILBOX}/data/vip", "data", {"mailboxId": MAILBOX, "proxy": "vip"}),
        (f"/api/v1/mailbox/{MAILBOX}/data/vip/", "data", {"mailboxId": MAILBOX, "proxy": "vip"}),
        (f"/api/v1/mailbox/{MAILBOX}/", "view", {"proxy": MAILBOX}),
        (f"/api/v1/mailbox/{MAILBOX}/logs/", "view", {"proxy": f"{MAILBOX}/logs"}),
        (f"/api/v1/mailbox/{MAILBOX}/database", "view", {"proxy": f"{MAILBOX}/database"}),
        ("/api/v1/mailbox/", "view", {}),
    ],
)
def test_the_data_routes_beat_the_greedy_mailbox_route(
    path: str, function: str, params: dict[str, str]
) -> None:
    match = SHAPES.match("GET", path)
    assert match is not None
    assert (match.route.function, match.path_parameters) == (function, params)


@pytest.mark.parametrize("tail", ["data", "data/", "data/vip", "data/vip/"])
def test_the_template_routes_mailbox_data_to_its_function(tail: str) -> None:
    match = RouteTable(Stack.load(REPO / "template.yaml").routes).match(
        "PUT", f"/api/v1/mailbox/{MAILBOX}/{tail}"
    )
    assert match is not None
    assert match.route.function == "MailboxDataFunction"
