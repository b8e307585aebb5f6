"""Mailbox data: per-mailbox JSON documents (key → value) that automation conditions read and the
``store_data`` action writes (docs/automation-inbound.md). Pure: no I/O.

A document is stored as its compact JSON text (``separators=(",", ":")``, UTF-8, non-ASCII kept as
is); its size is the byte length of that text, at most ``MAX_DOCUMENT_BYTES``. A mailbox holds at most
``MAX_KEYS`` documents. Keys are ``[A-Za-z0-9_.-]{1,128}``: safe in a URL path segment and in a
DynamoDB sort key without escaping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_DOCUMENT_BYTES = 400_000
MAX_KEYS = 1_000
MAX_KEY_CHARS = 128
MAX_DEPTH = 32  # nesting of a document: deeper JSON is refused (parsers recurse on it)
KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
STORE_MODES = ("set", "merge", "append")


class DataError(ValueError):
    """A document or change that cannot be stored: ``code`` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def valid_key(key: str) -> bool:
    return bool(KEY_RE.match(key))


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``, iteratively (a deep document must not exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return deepest


def check_depth(value: Any) -> None:
    """DataError when ``value`` nests deeper than a document may (checked before anything recurses
    into it: a merge patch, the JSON encoder)."""
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise DataError("document_too_deep", f"a document nests at most {MAX_DEPTH} levels")


def encode(document: Any) -> str:
    """The document's stored form; DataError when it is too large or too deep."""
    check_depth(document)
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    size = len(text.encode())
    if size > MAX_DOCUMENT_BYTES:
        raise DataError(
            "document_too_large",
            f"the document is {size} bytes as compact JSON; at most {MAX_DOCUMENT_BYTES}",
        )
    return text


def size_of(text: str) -> int:
    return len(text.encode())


def decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge recursively, ``null`` removes a member, anything
    else replaces."""
    if not isinstance(patch, dict):
        return patch
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


ABSENT: Any = object()  # no document under the key yet


def stored(current: Any, groups: Mapping[str, str], mode: str) -> Any:
    """The document after a ``store_data`` action wrote ``groups`` (a regular expression's named
    groups) in ``mode``: set replaces it with the groups; merge updates an object (absent: a new
    one); append adds the groups to a list (absent: a new one). DataError when the document has
    the wrong shape for the mode."""
    record = dict(groups)
    if mode == "set":
        return record
    if mode == "merge":
        if current is ABSENT:
            return record
        if not isinstance(current, dict):
            raise DataError("not_an_object", "merge needs the document to be a JSON object")
        return {**current, **record}
    if mode == "append":
        if current is ABSENT:
            return [record]
        if not isinstance(current, list):
            raise DataError("not_a_list", "append needs the document to be a JSON array")
        return [*current, record]
    raise DataError("invalid_mode", f"mode is one of {', '.join(STORE_MODES)}")
