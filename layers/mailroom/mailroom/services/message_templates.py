"""Message templates of a mailbox: a name, a subject, a text and an HTML body with ``{{ variables }}``
(``mail.templates``: Jinja2's immutable sandbox, strict undefined, HTML autoescaped, bounded).

A template is compiled when saved (a syntax error, an unknown filter: 422 ``template_syntax_error``
naming the part and line) and rendered when a send, a draft or (later) an automation uses it with
its ``variables``: a missing one is 422 ``template_variable_missing`` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom import clock, errors, ids
from mailroom.mail import templates as engine
from mailroom.store import compose_items as store
from mailroom.store.compose_items import Kind
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table

MAX_PER_MAILBOX = 200
MAX_NAME_CHARS = 200


@dataclass(slots=True)
class TemplateFields:
    name: str
    subject: str = ""
    text: str | None = None
    html: str | None = None
    description: str | None = None


def template_error(error: engine.TemplateError) -> errors.MailroomError:
    return errors.Invalid(
        error.code,
        error.message,
        fields=[{"field": error.part, "message": error.message}],
        hint="Templates read variables ({{ name }}, {{ user.name }}), loop, and use simple filters; "
        "give every variable the template reads in `variables`.",
    )


def _checked(fields: TemplateFields) -> list[str]:
    if not fields.name.strip() or len(fields.name) > MAX_NAME_CHARS:
        raise errors.validation(f"a name is 1 to {MAX_NAME_CHARS} characters", field="name")
    if fields.text is None and fields.html is None:
        raise errors.validation("a template needs text, html or both", field="text")
    try:
        return engine.check(engine.Parts(fields.subject, fields.text, fields.html))
    except engine.TemplateError as exc:
        raise template_error(exc) from exc


def view(item: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        "name": item["name"],
        "description": item.get("description"),
        "subject": item.get("subject", ""),
        "text": item.get("text"),
        "html": item.get("html"),
        "variables": list(item.get("variables") or []),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def load(table: Table, mailbox: Item, template_id: str) -> Item:
    item = (
        store.get(table, Kind.TEMPLATE, mailbox["org_id"], mailbox["id"], template_id)
        if ids.is_id(template_id, "tpl")
        else None
    )
    if item is None:
        raise errors.not_found("Template")
    return item


def list_templates(table: Table, mailbox: Item, *, per_page: int, cursor: str | None) -> tuple[Page, int]:
    page = store.list_page(
        table, Kind.TEMPLATE, mailbox["org_id"], mailbox["id"], per_page=per_page, cursor=cursor
    )
    return page, max(0, int(mailbox.get("template_count", 0)))


def create(table: Table, mailbox: Item, fields: TemplateFields) -> dict[str, Any]:
    variables = _checked(fields)
    now = clock.now_iso()
    item: Item = {
        "id": ids.new_id("tpl"),
        "org_id": mailbox["org_id"],
        "mailbox_id": mailbox["id"],
        "name": fields.name,
        "description": fields.description,
        "subject": fields.subject,
        "text": fields.text,
        "html": fields.html,
        "variables": variables,
        "created_at": now,
        "updated_at": now,
    }
    try:
        store.create(table, Kind.TEMPLATE, item, limit=MAX_PER_MAILBOX)
    except store.LimitReached as exc:
        raise errors.LimitReached("template_limit_reached", str(exc)) from exc
    return view(item)


def update(table: Table, item: Item, changes: dict[str, Any]) -> dict[str, Any]:
    merged = TemplateFields(
        name=str(changes.get("name", item["name"])),
        subject=str(changes.get("subject", item.get("subject", ""))),
        text=changes.get("text", item.get("text")),
        html=changes.get("html", item.get("html")),
        description=changes.get("description", item.get("description")),
    )
    variables = _checked(merged)
    fields = {
        "name": merged.name,
        "subject": merged.subject,
        "text": merged.text,
        "html": merged.html,
        "description": merged.description,
        "variables": variables,
        "updated_at": clock.now_iso(),
    }
    try:
        return view(store.update(table, Kind.TEMPLATE, item, fields))
    except ConditionFailed as exc:
        raise errors.not_found("Template") from exc


def delete(table: Table, item: Item) -> None:
    if not store.remove(table, Kind.TEMPLATE, item):
        raise errors.not_found("Template")


def render(table: Table, mailbox: Item, template_id: str, variables: dict[str, Any]) -> engine.Parts:
    """The template's subject and bodies with ``variables`` (422 naming what is wrong)."""
    try:
        item = load(table, mailbox, template_id)
    except errors.NotFound as exc:
        raise errors.validation(
            f"no template {template_id[:64]} in this mailbox", field="template_id", code="unknown_template"
        ) from exc
    try:
        return engine.render(
            engine.Parts(item.get("subject", ""), item.get("text"), item.get("html")), variables
        )
    except engine.TemplateError as exc:
        raise template_error(exc) from exc
