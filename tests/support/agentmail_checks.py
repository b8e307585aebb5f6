"""Field-by-field checks of agentmail v0 responses against the page's examples
(``tests.support.agentmail_examples``), and small helpers for the end-to-end tests that use them.

``assert_matches_example(actual, example, path=...)`` demands the same keys (none missing, none
extra), the same JSON type per key, timestamps in the example's exact shape
(``2025-01-15T10:30:00.000Z``) and ids that are non-empty strings; where the example shows null, the
value may be null or one of the shapes ``NULLABLE`` lists for that key. Values are compared only
where the caller says what the request determined (``expect``). Every mismatch is reported, each
with its key path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from email.utils import getaddresses
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.agentmail_examples import NULLABLE

T = TypeVar("T")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ID_KEYS = frozenset({"key", "secret", "prefix", "download_url", "name", "email_address", "username"})
MISSING = object()


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _check(
    actual: Any,
    example: Any,
    path: str,
    key: str | None,
    errors: list[str],
    optional_keys: Collection[str],
) -> None:
    nullable = NULLABLE.get(key, ()) if key is not None else ()
    if example is None or (actual is None and nullable):
        if actual is None:
            return
        for alternative in nullable:
            attempt: list[str] = []
            _check(actual, alternative, path, None, attempt, optional_keys)
            if not attempt:
                return
        shapes = " or ".join(["null", *(json_type(a) for a in nullable)])
        errors.append(f"{path}: expected {shapes}, got {json_type(actual)} {_short(actual)}")
        return
    expected_type = json_type(example)
    if json_type(actual) != expected_type:
        errors.append(f"{path}: expected {expected_type}, got {json_type(actual)} {_short(actual)}")
        return
    if isinstance(example, str):
        if TIMESTAMP.match(example) and not TIMESTAMP.match(actual):
            errors.append(f"{path}: expected a timestamp shaped like {example!r}, got {actual!r}")
        elif key is not None and (key.endswith("_id") or key in ID_KEYS) and not actual:
            errors.append(f"{path}: expected a non-empty string, got ''")
    elif isinstance(example, list):
        template = example[0] if example else "string"
        for index, item in enumerate(actual):
            _check(item, template, f"{path}[{index}]", None, errors, optional_keys)
    elif isinstance(example, dict):
        if not example:  # "headers": {} -- any object
            return
        missing = sorted(set(example) - set(actual))
        extra = sorted(set(actual) - set(example) - set(optional_keys))
        for name in missing:
            errors.append(f"{path}.{name}: missing (the example has it)")
        for name in extra:
            errors.append(f"{path}.{name}: not in the example (value {_short(actual[name])})")
        for name in sorted(set(example) & set(actual)):
            _check(actual[name], example[name], f"{path}.{name}", name, errors, optional_keys)
        for name in sorted(set(optional_keys) & set(actual) - set(example)):
            _check_optional(actual[name], f"{path}.{name}", name, errors)


def _check_optional(actual: Any, path: str, key: str, errors: list[str]) -> None:
    """Keys the page implies but never shows: only ``attachments`` (see the examples module)."""
    if key == "attachments":
        if not isinstance(actual, list):
            errors.append(f"{path}: expected a list, got {json_type(actual)}")
            return
        for index, item in enumerate(actual):
            if not (
                isinstance(item, dict)
                and isinstance(item.get("attachment_id"), str)
                and item["attachment_id"]
            ):
                errors.append(f"{path}[{index}]: expected an object with a non-empty attachment_id")


def assert_matches_example(
    actual: Any,
    example: Any,
    *,
    path: str,
    expect: Mapping[str, Any] | None = None,
    optional_keys: Collection[str] = (),
    open_from: Mapping[str, Any] | None = None,
) -> None:
    """``actual`` has ``example``'s keys and types; top-level ``expect`` keys have exactly those values.

    ``open_from``: the example ends in ``"..."`` (the rest of that object): keys beyond ``example``
    are allowed if ``open_from`` has them, and are checked against it.
    """
    errors = example_mismatches(
        actual, example, path=path, expect=expect, optional_keys=optional_keys, open_from=open_from
    )
    if errors:
        pytest.fail(f"{path} does not match the page's example:\n  " + "\n  ".join(errors), pytrace=False)


def example_mismatches(
    actual: Any,
    example: Any,
    *,
    path: str,
    expect: Mapping[str, Any] | None = None,
    optional_keys: Collection[str] = (),
    open_from: Mapping[str, Any] | None = None,
) -> list[str]:
    """What ``assert_matches_example`` would report, as a list (empty: it matches)."""
    errors: list[str] = []
    if open_from is not None and isinstance(actual, dict):
        extra = {k: v for k, v in open_from.items() if k in actual and k not in example}
        _check(actual, {**example, **extra}, path, None, errors, optional_keys)
    else:
        _check(actual, example, path, None, errors, optional_keys)
    for name, value in (expect or {}).items():
        got = actual.get(name, MISSING) if isinstance(actual, dict) else MISSING
        if got is MISSING:
            if not any(e.startswith(f"{path}.{name}:") for e in errors):
                errors.append(f"{path}.{name}: missing, expected {value!r}")
        elif got != value:
            errors.append(f"{path}.{name}: expected {value!r} (what was sent), got {got!r}")
    return errors


def differences(what: str, got: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """One line per key whose value is not the wanted one."""
    return [
        f"{what}.{key}: expected {wanted[key]!r}, got {got.get(key)!r}"
        for key in wanted
        if got.get(key) != wanted[key]
    ]


def assert_none(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what}:\n  " + "\n  ".join(problems), pytrace=False)


def body(response: httpx.Response, *statuses: int) -> Any:
    """The JSON body of a response whose status must be one of ``statuses``."""
    request = f"{response.request.method} {response.request.url.path}"
    if response.status_code not in statuses:
        pytest.fail(
            f"{request}: expected HTTP {' or '.join(map(str, statuses))}, got {response.status_code}: "
            f"{response.text[:500]}",
            pytrace=False,
        )
    try:
        return response.json()
    except ValueError:
        pytest.fail(f"{request}: the body is not JSON: {response.text[:300]!r}", pytrace=False)


def assert_no_content(response: httpx.Response) -> None:
    """ "Returns 204 No Content": the status, and an empty body."""
    request = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 204, (
        f"{request}: expected 204, got {response.status_code}: {response.text}"
    )
    assert response.content == b"", f"{request}: 204 with a body: {response.content[:200]!r}"


def assert_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """An error answer: one of ``statuses`` and a body with string ``name`` and ``message``.

    The page defines no error body; agentmail's is ``{"name", "message"}`` (an ``errors`` detail
    may come with it), so those two must be strings and further keys are allowed.
    """
    request = f"{response.request.method} {response.request.url.path}"
    assert response.status_code in statuses, (
        f"{request}: expected HTTP {' or '.join(map(str, statuses))}, got {response.status_code}: "
        f"{response.text[:300]}"
    )
    try:
        error = response.json()
    except ValueError:
        pytest.fail(f"{request}: the error body is not JSON: {response.text[:300]!r}", pytrace=False)
    problems = [
        f"{request} error body: {name!r} missing or not a string"
        for name in ("name", "message")
        if not isinstance(error, dict) or not isinstance(error.get(name), str) or not error[name]
    ]
    assert not problems, "\n".join(problems) + f"\n  body: {response.text[:300]}"
    return dict(error)


def assert_page(
    page: Any,
    list_example: Mapping[str, Any],
    *,
    path: str,
    page_number: int = 1,
    page_size: int = 20,
    optional_keys: Collection[str] = (),
) -> list[dict[str, Any]]:
    """A list answer: exactly data/total/page/page_size, each item checked against the item example."""
    assert_matches_example(
        page,
        list_example,
        path=path,
        expect={"page": page_number, "page_size": page_size},
        optional_keys=optional_keys,
    )
    assert page["total"] >= len(page["data"]), f"{path}: total {page['total']} < {len(page['data'])} items"
    assert len(page["data"]) <= page_size, f"{path}: {len(page['data'])} items on a page of {page_size}"
    return list(page["data"])


def parse_timestamp(value: str) -> datetime:
    assert TIMESTAMP.match(value), f"not a timestamp shaped like 2025-01-15T10:30:00.000Z: {value!r}"
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def assert_descending(items: list[dict[str, Any]], key: str, path: str) -> None:
    stamps = [parse_timestamp(item[key]) for item in items]
    assert stamps == sorted(stamps, reverse=True), f"{path}: not ordered by {key} descending: {stamps}"


def addresses(value: Any) -> list[str]:
    """The bare addresses, lower case, of ``"Name <a@b>"`` strings, a list of them, or null."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    return [address.lower() for _name, address in getaddresses([str(v) for v in values]) if address]


def bare_message_id(value: Any) -> str:
    return str(value).strip().removeprefix("<").removesuffix(">")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something; mail flows through the stack asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}", pytrace=False)
        time.sleep(0.25)
