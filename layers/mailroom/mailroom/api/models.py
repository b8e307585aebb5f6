"""Shared request/response models: strict (unknown fields are refused) so typos fail loudly."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Links(BaseModel):
    next: str | None
    prev: str | None


class Meta(BaseModel):
    current_page: int
    last_page: int | None
    per_page: int
    total: int | None


class ListOf(BaseModel, Generic[T]):
    data: list[T]
    links: Links
    meta: Meta


class One(BaseModel, Generic[T]):
    data: T


def one(value: Any) -> dict[str, Any]:
    return {"data": value}
