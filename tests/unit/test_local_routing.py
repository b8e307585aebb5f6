"""HTTP API route selection: API Gateway's priorities."""

import pytest

from local.routing import RouteTable
from local.stack import HttpRoute


def route(method: str, path: str, function: str | None = None) -> HttpRoute:
    return HttpRoute(
        method=method, path=path, function=function or f"{method} {path}", api="Api", authorizer=None
    )


TABLE = RouteTable(
    [
        route("ANY", "/items/{proxy+}"),
        route("GET", "/items/{id}"),
        route("GET", "/items/special"),
        route("ANY", "/items/special"),
        route("POST", "/items"),
        route("GET", "/items/{id}/parts/{part}"),
        route("GET", "/"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "expected", "params"),
    [
        ("GET", "/items/special", "GET /items/special", {}),  # literal beats {id}, method beats ANY
        ("DELETE", "/items/special", "ANY /items/special", {}),  # literal path beats a greedy one
        ("GET", "/items/42", "GET /items/{id}", {"id": "42"}),  # parameter beats greedy
        ("PUT", "/items/42", "ANY /items/{proxy+}", {"proxy": "42"}),  # no PUT /items/{id}
        ("GET", "/items/1/parts/2", "GET /items/{id}/parts/{part}", {"id": "1", "part": "2"}),
        ("GET", "/items/1/other/2", "ANY /items/{proxy+}", {"proxy": "1/other/2"}),
        ("POST", "/items", "POST /items", {}),
        ("GET", "/", "GET /", {}),
        ("GET", "/items/a%20b", "GET /items/{id}", {"id": "a b"}),  # values are decoded
        ("GET", "/items/a%2Fb", "GET /items/{id}", {"id": "a/b"}),  # an encoded / stays in its segment
    ],
)
def test_most_specific_route_wins(method, path, expected, params):
    match = TABLE.match(method, path)
    assert match is not None
    assert match.route.function == expected
    assert match.path_parameters == params


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/items"), ("GET", "/nothing"), ("DELETE", "/items"), ("GET", "/other/items/1")],
)
def test_unmatched_requests(method, path):
    # A greedy variable needs at least one segment, so GET /items matches neither {proxy+} nor POST /items.
    assert TABLE.match(method, path) is None


def test_default_route_catches_the_rest_last():
    table = RouteTable([route("ANY", "$default"), route("GET", "/a")])
    assert table.match("GET", "/a").route.path == "/a"
    assert table.match("POST", "/anything/else").route.path == "$default"


def test_duplicate_and_misplaced_greedy_routes_are_refused():
    with pytest.raises(ValueError, match="declared twice"):
        RouteTable([route("GET", "/a"), route("GET", "/a", "other")])
    with pytest.raises(ValueError, match="last segment"):
        RouteTable([route("GET", "/{proxy+}/a")])
