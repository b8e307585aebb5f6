"""List envelopes: ``{"data", "links": {"next", "prev"}, "meta": {...}}`` over cursor pages."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query, Request

from mailroom.store.table import Page

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


@dataclass(frozen=True, slots=True)
class PageQuery:
    per_page: int
    cursor: str | None


def page_query(
    per_page: Annotated[
        int, Query(ge=1, le=MAX_PER_PAGE, description="Items per page (max 100).")
    ] = DEFAULT_PER_PAGE,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="Opaque cursor from links.next/prev.")
    ] = None,
) -> PageQuery:
    return PageQuery(per_page=per_page, cursor=cursor)


def envelope(
    request: Request, page: Page, data: list[Any], *, per_page: int, total: int | None
) -> dict[str, Any]:
    """``total`` is a maintained count; None where a filter makes it unknowable without reading everything."""

    def link(cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return str(request.url.include_query_params(cursor=cursor, per_page=per_page))

    last_page = max(1, math.ceil(total / per_page)) if total is not None else None
    return {
        "data": data,
        "links": {"next": link(page.next_cursor), "prev": link(page.prev_cursor)},
        "meta": {"current_page": page.number, "last_page": last_page, "per_page": per_page, "total": total},
    }
