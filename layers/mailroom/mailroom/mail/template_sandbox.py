"""The engine behind ``mail.templates``: Jinja2's immutable sandbox with the limits that module's
docstring lists. Imported by ``mail.templates`` on the first check or render, never at init."""

from __future__ import annotations

import json
import operator
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import do_replace, sync_do_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mailroom.mail.templates import (
    JSON_PART,
    MAX_OUTPUT_CHARS,
    MAX_PRODUCT_CHARS,
    MAX_RENDER_SECONDS,
    MAX_SOURCE_CHARS,
    TEMPLATE_FILENAME,
    Parts,
    TemplateError,
)

SAFE_FILTERS = frozenset(
    {
        "abs",
        "capitalize",
        "default",
        "d",
        "dictsort",
        "e",
        "escape",
        "first",
        "float",
        "int",
        "join",
        "last",
        "length",
        "count",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "replace",
        "reverse",
        "round",
        "select",
        "reject",
        "selectattr",
        "rejectattr",
        "sort",
        "string",
        "striptags",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "wordcount",
        "batch",
        "slice",
        "items",
    }
)


class _Deadline(Exception):
    pass


def _bounded(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT_CHARS:
        raise SecurityError(f"a value longer than {MAX_OUTPUT_CHARS} is refused")
    return value


class _Generator(CodeGenerator):
    """``a ~ b`` (string concatenation) checked like ``+``: no value outgrows ``MAX_OUTPUT_CHARS``."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 - Jinja's visitor name
        self.write("environment.bounded(")
        super().visit_Concat(node, frame)
        self.write(")")


@pass_eval_context
def _join(eval_ctx: Any, value: Any, separator: str = "", attribute: Any = None) -> Any:
    items = list(value)
    estimate = sum(len(str(item)) for item in items) + len(separator) * max(len(items) - 1, 0)
    if estimate > MAX_OUTPUT_CHARS:
        raise SecurityError(f"a value longer than {MAX_OUTPUT_CHARS} is refused")
    return _ORIGINAL_JOIN(eval_ctx, items, separator, attribute)


@pass_eval_context
def _replace(eval_ctx: Any, value: Any, old: str, new: str, count: int | None = None) -> Any:
    text = str(value)
    occurrences = len(text) + 1 if old == "" else text.count(str(old))
    if len(text) + occurrences * max(len(str(new)) - len(str(old)), 0) > MAX_OUTPUT_CHARS:
        raise SecurityError(f"a value longer than {MAX_OUTPUT_CHARS} is refused")
    return _ORIGINAL_REPLACE(eval_ctx, value, old, new, count)


_ORIGINAL_JOIN: Any = sync_do_join
_ORIGINAL_REPLACE: Any = do_replace


class _Sandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def bounded(self, value: Any) -> Any:
        return _bounded(value)

    intercepted_unops = frozenset()

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Data only: no method of any value is callable from a template (str.format, str.ljust,
        # dict.update...): what a mail template needs is reading the variables it was given.
        if callable(value):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for sized, count in ((left, right), (right, left)):
                if (
                    isinstance(sized, str | list | tuple)
                    and isinstance(count, int)
                    and len(sized) * max(count, 0) > MAX_PRODUCT_CHARS
                ):
                    raise SecurityError(f"a repetition longer than {MAX_PRODUCT_CHARS} is refused")
            return left * right
        if operator_name == "+":
            return _bounded(left + right)
        if operator_name == "**":
            if isinstance(right, int) and isinstance(left, int) and abs(right) > 64:
                raise SecurityError("an exponent above 64 is refused")
            return operator.pow(left, right)
        if isinstance(left, str):
            raise SecurityError("string formatting with % is not available in templates")
        return left % right


def _environment(*, html: bool) -> _Sandbox:
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=html,
        auto_reload=False,
        cache_size=0,
        keep_trailing_newline=True,
    )
    env.filters = {name: env.filters[name] for name in SAFE_FILTERS if name in env.filters}
    env.filters["join"] = _join
    env.filters["replace"] = _replace
    env.globals = {"range": env.globals["range"]}  # the sandbox's bounded range
    return env


_TEXT = _environment(html=False)
_HTML = _environment(html=True)
# JSON bodies (automation webhooks, docs/automation-execution.md): the text environment plus
# ``tojson``, which quotes and escapes a value as JSON (its indent bounded: output grows with it).
_JSON = _environment(html=False)


def _tojson(value: Any, indent: int | None = None) -> Any:
    if indent is not None and not 0 <= int(indent) <= 8:
        raise SecurityError("tojson's indent is 0 to 8")
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=str)
    return _bounded(text)


_JSON.filters["tojson"] = _tojson


def _env_for(part: str) -> _Sandbox:
    if part == JSON_PART:
        return _JSON
    return _HTML if part == "html" else _TEXT


def _parse(part: str, source: str) -> nodes.Template:
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError("template_too_large", part, f"{part}: at most {MAX_SOURCE_CHARS} characters")
    try:
        return _env_for(part).parse(source, filename=TEMPLATE_FILENAME)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            "template_syntax_error", part, f"{part}, line {exc.lineno}: {exc.message or 'syntax error'}"
        ) from exc


def variables_of(parts: Parts) -> list[str]:
    """The top-level variables the template reads, sorted (what a send must give)."""
    found: set[str] = set()
    for part, source in (("subject", parts.subject), ("text", parts.text), ("html", parts.html)):
        if source is not None:
            found |= meta.find_undeclared_variables(_parse(part, source))
    return sorted(found - set(_TEXT.globals))


def _compiled(part: str, source: str) -> Any:
    _parse(part, source)  # the size limit first
    try:
        return _env_for(part).from_string(source)
    except TemplateSyntaxError as exc:  # and an unknown filter or test (TemplateAssertionError)
        raise TemplateError(
            "template_syntax_error", part, f"{part}, line {exc.lineno}: {exc.message or 'syntax error'}"
        ) from exc


def check(parts: Parts) -> list[str]:
    """Compile every part (a syntax error is a ``TemplateError``); returns the variables read."""
    for part, source in (("subject", parts.subject), ("text", parts.text), ("html", parts.html)):
        if source is not None:
            _compiled(part, source)
    return variables_of(parts)


def _tracer(deadline: float) -> Callable[[FrameType, str, Any], Any]:
    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise _Deadline
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        # Only the template's own code is traced: a line event per line it runs, whatever it is.
        if frame.f_code.co_filename == TEMPLATE_FILENAME:
            return local(frame, event, arg)
        return None

    return global_


def _render_part(part: str, source: str, variables: Mapping[str, Any], deadline: float) -> str:
    template = _compiled(part, source)
    chunks: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(_tracer(deadline))
    try:
        for chunk in template.generate(dict(variables)):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateError(
                    "template_output_too_large",
                    part,
                    f"{part}: renders to more than {MAX_OUTPUT_CHARS} characters",
                )
            chunks.append(chunk)
    except TemplateError:
        raise
    except _Deadline as exc:
        raise TemplateError(
            "template_timeout", part, f"{part}: rendering took longer than {MAX_RENDER_SECONDS} s"
        ) from exc
    except UndefinedError as exc:
        raise TemplateError("template_variable_missing", part, f"{part}: {exc.message}") from exc
    except SecurityError as exc:
        raise TemplateError("template_refused", part, f"{part}: {exc}") from exc
    except (TypeError, ValueError, ArithmeticError, LookupError, OverflowError) as exc:
        raise TemplateError("template_render_error", part, f"{part}: {exc}") from exc
    finally:
        sys.settrace(previous)
    return "".join(chunks)


def render(parts: Parts, variables: Mapping[str, Any]) -> Parts:
    """The three parts rendered with ``variables``. A variable the template reads and ``variables``
    lacks is ``template_variable_missing`` naming every one of them; see the module docstring."""
    missing = [name for name in variables_of(parts) if name not in variables]
    if missing:
        raise TemplateError(
            "template_variable_missing",
            "variables",
            f"missing template variable{'s' if len(missing) > 1 else ''}: {', '.join(missing)}",
        )
    deadline = time.monotonic() + MAX_RENDER_SECONDS
    subject = _render_part("subject", parts.subject, variables, deadline)
    text = None if parts.text is None else _render_part("text", parts.text, variables, deadline)
    html = None if parts.html is None else _render_part("html", parts.html, variables, deadline)
    return Parts(subject=subject, text=text, html=html)


def check_json(source: str) -> list[str]:
    """Compile a JSON body template (``TemplateError`` on a syntax error); the variables it reads."""
    _compiled(JSON_PART, source)
    return sorted(meta.find_undeclared_variables(_parse(JSON_PART, source)) - set(_JSON.globals))


def render_json(source: str, variables: Mapping[str, Any]) -> Any:
    """Render a template that writes a JSON document (strings through ``tojson``) and parse it: the
    value, or ``TemplateError`` (``template_not_json`` when the output is not one JSON document).
    Bounded like the message templates (time, size, the sandbox)."""
    text = _render_part(JSON_PART, source, variables, time.monotonic() + MAX_RENDER_SECONDS)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TemplateError(
            "template_not_json", JSON_PART, f"{JSON_PART}: the rendered body is not JSON ({exc})"
        ) from exc
