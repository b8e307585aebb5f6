"""``/api/v0`` pagination: ``page`` (from 1) and ``page_size`` (default 20, max 100) in the query,
``{"data", "total", "page", "page_size"}`` in the response (agentmail-v0-api.txt).

v1 pages with cursors; v0 numbers its pages, so a page is found by skipping ``offset`` items of
the same ordered query. Totals come from maintained counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 10_000  # bounds the skip: page * page_size items at most are read past

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page (default 20, max 100).")
    ] = DEFAULT_PAGE_SIZE,
) -> PageParams:
    return PageParams(page=page, page_size=page_size)


class PageOf(BaseModel, Generic[T]):
    """A numbered page as the reference shows it (the response model of v0 list endpoints)."""

    data: list[T] = Field(description="This page's items; empty past the last page.")
    total: int = Field(ge=0, description="How many items there are in all pages.")
    page: int = Field(ge=1, le=MAX_PAGE, description="This page's number, as requested.")
    page_size: int = Field(ge=1, le=MAX_PAGE_SIZE, description="The page size, as requested.")


def page_body(data: list[Any], *, total: int, params: PageParams) -> dict[str, Any]:
    return {"data": data, "total": total, "page": params.page, "page_size": params.page_size}
