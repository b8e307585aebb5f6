"""A message label as the v1 and v0 message APIs take it (two functions share it)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, StringConstraints

from mailroom.mail.header_text import describe, refused_in_header
from mailroom.services.message_changes import MAX_LABEL_CHARS


def _no_breaks(value: object) -> object:
    # Before stripping: a trailing line break is refused like any other, not silently dropped.
    if isinstance(value, str):
        refused = refused_in_header(value) or ("\t" if "\t" in value else None)
        if refused:
            raise ValueError(
                "a label holds no control characters, line breaks or unpaired surrogates "
                f"({describe(refused)} is one)"
            )
    return value


Label = Annotated[
    str,
    BeforeValidator(_no_breaks),
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_LABEL_CHARS,
        pattern=r"^[^\x00-\x1f\x7f]+$",
    ),
]
