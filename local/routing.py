"""HTTP API route selection, with API Gateway's priorities.

API Gateway picks the most specific route: a literal path segment beats a ``{param}``, which beats
a greedy ``{proxy+}`` (matched last); for the same path a route for the request's method beats
``ANY``; ``$default`` catches what nothing else matches. Greedy variables match one or more
segments, so ``/a/{proxy+}`` does not match ``/a``. Matching works on the percent-encoded path
(an encoded ``/`` stays inside its segment); path parameter values are URL-decoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from local.stack import HttpRoute

_LITERAL, _PARAM, _GREEDY = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Match:
    route: HttpRoute
    path_parameters: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Compiled:
    route: HttpRoute
    segments: tuple[tuple[int, str], ...]  # (kind, literal text or parameter name)

    @property
    def priority(self) -> tuple[int, tuple[int, ...], int]:
        # Sorted ascending: most specific first. Segment kinds compare left to right, so the first
        # position where one route is literal and the other is not decides.
        is_default = 1 if self.route.path == "$default" else 0
        return (
            is_default,
            (*(kind for kind, _ in self.segments), _LITERAL - 1),
            int(self.route.method == "ANY"),
        )


def _compile(route: HttpRoute) -> _Compiled:
    if route.path == "$default":
        return _Compiled(route, ())
    segments = []
    parts = route.path.strip("/").split("/") if route.path.strip("/") else []
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            if index != len(parts) - 1:
                raise ValueError(f"{route.route_key}: a greedy path variable must be the last segment")
            segments.append((_GREEDY, part[1:-2]))
        elif part.startswith("{") and part.endswith("}"):
            segments.append((_PARAM, part[1:-1]))
        else:
            segments.append((_LITERAL, part))
    return _Compiled(route, tuple(segments))


class RouteTable:
    def __init__(self, routes: Iterable[HttpRoute]) -> None:
        compiled = [_compile(r) for r in routes]
        seen: set[str] = set()
        for c in compiled:
            if c.route.route_key in seen:
                raise ValueError(f"route {c.route.route_key} is declared twice")
            seen.add(c.route.route_key)
        self._routes = sorted(compiled, key=lambda c: c.priority)

    @property
    def routes(self) -> list[HttpRoute]:
        return [c.route for c in self._routes]

    def match(self, method: str, path: str) -> Match | None:
        method = method.upper()
        parts = path.strip("/").split("/") if path.strip("/") else []
        for compiled in self._routes:
            if compiled.route.method not in (method, "ANY"):
                continue
            if compiled.route.path == "$default":
                return Match(compiled.route, {})
            params = _match_segments(compiled.segments, parts)
            if params is not None:
                return Match(compiled.route, params)
        return None


def _match_segments(segments: tuple[tuple[int, str], ...], parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, (kind, text) in enumerate(segments):
        if kind == _GREEDY:
            rest = parts[index:]
            if not rest:
                return None
            params[text] = unquote("/".join(rest))
            return params
        if index >= len(parts):
            return None
        if kind == _LITERAL:
            if unquote(parts[index]) != text:
                return None
        else:
            if parts[index] == "":
                return None
            params[text] = unquote(parts[index])
    return params if len(parts) == len(segments) else None
