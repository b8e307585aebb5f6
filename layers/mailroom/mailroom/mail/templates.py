"""Message templates: a subject, a text and an HTML body with ``{{ variables }}``, rendered by
Jinja2's immutable sandbox.

What a template may do, and why:

* no attribute of Python internals (the sandbox: ``{{ ''.__class__ }}`` is a ``SecurityError``),
  no mutation of the variables (the immutable sandbox), and no method calls at all: a template
  reads variables (``{{ user.name }}``, ``{{ items[0] }}``), loops, tests and applies the filters
  of ``SAFE_FILTERS`` (those whose output is bounded by their input);
* every variable must be given (``StrictUndefined``): a missing one is an error naming it, never
  an empty string in a mail that went out;
* the HTML body is autoescaped (a variable holding ``<script>`` is shown, not run), the text body
  and the subject are not (they are not HTML);
* bounded output (``MAX_OUTPUT_CHARS`` per part), bounded time (``MAX_RENDER_SECONDS`` for the
  three parts, checked on every line the template's code runs, so nested loops that print
  nothing stop too), and ``*``/``**``/``%`` on values are checked before they allocate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailroom import lazy_imports

MAX_SOURCE_CHARS = 100_000  # per part
MAX_OUTPUT_CHARS = 1_000_000  # per part, rendered
MAX_RENDER_SECONDS = 1.0
MAX_PRODUCT_CHARS = 100_000  # 'x' * n, [..] * n: larger results are refused before they are built
JSON_PART = "body_template"  # the part name a JSON body template's errors carry
TEMPLATE_FILENAME = "<template>"  # what Jinja names the code of a template compiled from a string


class TemplateError(ValueError):
    """A template that cannot be stored or rendered: ``code``, the ``part`` and a message."""

    def __init__(self, code: str, part: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.part = part
        self.message = message


@dataclass(frozen=True, slots=True)
class Parts:
    subject: str
    text: str | None
    html: str | None


# The engine (Jinja2 and the sandbox built on it, template_sandbox.py) is imported on the first
# check or render, not with this module: the functions whose services import this module (send,
# compose, automation, MailTrigger's mailbox) render a template only on some requests, and Jinja2
# is 20-40 ms of their cold start. Declared, so that with SnapStart it is loaded before the snapshot.
_ENGINE = "mailroom.mail.template_sandbox"
lazy_imports.declare(_ENGINE)


def variables_of(parts: Parts) -> list[str]:
    """The top-level variables the template reads, sorted (what a send must give)."""
    from mailroom.mail import template_sandbox

    return template_sandbox.variables_of(parts)


def check(parts: Parts) -> list[str]:
    """Compile every part (a syntax error is a ``TemplateError``); returns the variables read."""
    from mailroom.mail import template_sandbox

    return template_sandbox.check(parts)


def render(parts: Parts, variables: Mapping[str, Any]) -> Parts:
    """The three parts rendered with ``variables``. A variable the template reads and ``variables``
    lacks is ``template_variable_missing`` naming every one of them; see the module docstring."""
    from mailroom.mail import template_sandbox

    return template_sandbox.render(parts, variables)


def check_json(source: str) -> list[str]:
    """Compile a JSON body template (``TemplateError`` on a syntax error); the variables it reads."""
    from mailroom.mail import template_sandbox

    return template_sandbox.check_json(source)


def render_json(source: str, variables: Mapping[str, Any]) -> Any:
    """Render a template that writes a JSON document (strings through ``tojson``) and parse it: the
    value, or ``TemplateError`` (``template_not_json`` when the output is not one JSON document).
    Bounded like the message templates (time, size, the sandbox)."""
    from mailroom.mail import template_sandbox

    return template_sandbox.render_json(source, variables)
