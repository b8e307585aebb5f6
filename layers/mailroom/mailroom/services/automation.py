"""The organization's automation resources (``/api/v1/rules``, ``/api/v1/actions``,
``/api/v1/routes``; docs/automation.md): validation beyond the pure model (URLs that must resolve
to public addresses, event buses the stack may deliver to, a route's rule, actions and target),
the webhook action's secret, and every change written through ``automation_changes`` so the route
sets inbound reads follow it in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import automation as model
from mailroom.domain import webhooks as webhook_rules
from mailroom.mail import folders
from mailroom.mail import templates as message_templates
from mailroom.services import webhooks as webhook_service
from mailroom.services.automation_changes import Plan, Snapshot, change, in_use
from mailroom.store import automation as store
from mailroom.store import kms
from mailroom.store.table import Item, Page, Table

# ----------------------------------------------------------------------------- common


def _invalid(exc: model.AutomationError) -> errors.Invalid:
    kind = (
        errors.LimitReached
        if exc.code.endswith("_limit_reached") or exc.code.startswith("too_many")
        else errors.Invalid
    )
    return kind(exc.code, exc.message, fields=[{"field": f, "message": m} for f, m in exc.fields])


def load(table: Table, org_id: str, kind: str, item_id: str) -> Item:
    found = store.get(table, org_id, kind, item_id)
    if found is None:
        raise errors.not_found({"rule": "Rule", "action": "Action", "route": "Route"}[kind])
    return found


@dataclass(frozen=True, slots=True)
class Listing:
    page: Page
    views: list[dict[str, Any]]
    total: int | None


def list_of(
    table: Table,
    org_id: str,
    kind: str,
    *,
    per_page: int,
    cursor: str | None,
    target: tuple[str, str] | None = None,
) -> Listing:
    """A page of the organization's rules, actions or routes in creation order (routes: of one
    mailbox or domain, when ``target`` names it); the total is the HEAD item's maintained count
    (None for one target's routes: it is not counted)."""
    page = store.list_page(table, org_id, kind, per_page=per_page, cursor=cursor, target=target)
    view = {"rule": rule_view, "action": action_view, "route": route_view}[kind]
    total = None if target else int(store.head(table, org_id).get(store.COUNTER[kind], 0))
    return Listing(page, [view(item) for item in page.items], total)


def _stamped(item: Item, previous: Mapping[str, Any] | None, now_iso: str) -> Item:
    return {
        **item,
        "version": int(previous.get("version", 0)) + 1 if previous else 1,
        "created_at": previous["created_at"] if previous else now_iso,
        "updated_at": now_iso,
    }


# ----------------------------------------------------------------------------- rules


def rule_view(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "name": item["name"],
        "description": item.get("description"),
        "match": item["match"],
        "conditions": [dict(c) for c in item.get("conditions") or []],
        "version": int(item.get("version", 1)),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def validated_rule(fields: Mapping[str, Any]) -> model.RuleDefinition:
    try:
        return model.validate_rule(
            str(fields.get("name", "")),
            str(fields.get("match", "all")),
            list(fields.get("conditions") or []),
            fields.get("description"),
        )
    except model.AutomationError as exc:
        raise _invalid(exc) from exc


def _rule_item(org_id: str, rule_id: str, definition: model.RuleDefinition) -> Item:
    return {
        "id": rule_id,
        "org_id": org_id,
        "name": definition.name,
        "description": definition.description,
        "match": definition.match,
        "conditions": definition.conditions,
    }


def create_rule(table: Table, org_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    definition = validated_rule(fields)
    rule_id = ids.new_id("rul")

    def plan(_: Snapshot) -> Plan:
        item = _stamped(_rule_item(org_id, rule_id, definition), None, clock.now_iso())
        return Plan(item, [store.put_item("rule", item, new=True)], counts={"rule_count": 1})

    return rule_view(change(table, org_id, plan).result)


def update_rule(
    table: Table, org_id: str, rule_id: str, fields: Mapping[str, Any], *, partial: bool
) -> dict[str, Any]:
    """PUT (``partial`` False: every field as sent, defaults for the rest) or PATCH (the fields sent
    over the stored ones). The route sets of the targets whose enabled routes use it follow."""

    def plan(snapshot: Snapshot) -> Plan:
        previous = snapshot.item("rule", rule_id)
        merged = {**rule_view(previous), **fields} if partial else dict(fields)
        definition = validated_rule(merged)
        item = _stamped(_rule_item(org_id, rule_id, definition), previous, clock.now_iso())
        users = [r for r in snapshot.routes_using("rule", rule_id) if r.get("enabled", True)]
        return Plan(
            item,
            [store.put_item("rule", item, new=False)],
            targets={model.target_of(r) for r in users},
            rules={rule_id: item},
        )

    return rule_view(change(table, org_id, plan).result)


def delete_rule(table: Table, org_id: str, rule_id: str) -> None:
    """409 ``in_use`` while a route names it."""

    def plan(snapshot: Snapshot) -> Plan:
        previous = snapshot.item("rule", rule_id)
        users = snapshot.routes_using("rule", rule_id)
        if users:
            raise in_use("rule", rule_id, users)
        return Plan(previous, [store.delete_item("rule", org_id, rule_id)], counts={"rule_count": -1})

    change(table, org_id, plan)


# ----------------------------------------------------------------------------- actions


def action_view(item: Mapping[str, Any]) -> dict[str, Any]:
    action_type = str(item["action_type"])
    return {
        "id": item["id"],
        "name": item["name"],
        "description": item.get("description"),
        "action_type": action_type,
        "mode": model.mode_of(action_type),
        "parameters": dict(item.get("parameters") or {}),
        "secret_last_four": item.get("secret_last_four"),
        "version": int(item.get("version", 1)),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def parameters_view(item: Mapping[str, Any]) -> dict[str, Any]:
    action_type = str(item["action_type"])
    return {
        "action_id": item["id"],
        "action_type": action_type,
        "schema": model.parameters_schema(action_type),
        "values": dict(item.get("parameters") or {}),
    }


async def validated_parameters(action_type: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters in canonical form, checked as the pure model says and, for the types that
    reach outside, as the stack allows: a webhook's URL resolves to public addresses only (the
    webhooks' own check, repeated on every connection), an event bus is in an allowed account."""
    try:
        parameters = model.validate_parameters(action_type, raw)
    except model.AutomationError as exc:
        raise _invalid(exc) from exc
    for name in model.TEMPLATE_PARAMETERS.get(action_type, ()):
        if parameters.get(name) is not None:
            _check_template(name, parameters[name])
    if action_type == "move":
        try:
            parameters["folder"] = folders.canonical(parameters["folder"])
        except folders.InvalidFolder as exc:
            raise _parameter_error("parameters.folder", str(exc)) from exc
    if action_type == "webhook":
        try:
            await webhook_service.check_url(parameters["url"], allow_private=_allow_private())
        except webhook_service.UrlNotAllowed as exc:
            raise errors.validation(str(exc), field="parameters.url", code=exc.code) from exc
    elif action_type == "eventbridge":
        try:
            webhook_service.valid_event_bus(parameters["event_bus_arn"])
        except errors.Invalid as exc:
            raise errors.validation(exc.message, field="parameters.event_bus_arn", code=exc.code) from exc
    return parameters


def _parameter_error(field: str, message: str) -> errors.Invalid:
    return errors.Invalid(
        "invalid_parameters", f"{field}: {message}", fields=[{"field": field, "message": message}]
    )


def _check_template(name: str, source: str) -> None:
    """A template as the executors render it (mail/templates.py's sandbox: a webhook body in its JSON
    environment, with ``tojson``), reading only the template context's variables (a misspelt one
    would fail every message, not this request)."""
    try:
        if name == "body_template":
            used = message_templates.check_json(source)
        else:
            used = message_templates.check(message_templates.Parts(subject="", text=source, html=None))
    except message_templates.TemplateError as exc:
        message = exc.message.removeprefix(f"{exc.part}, ")
        raise _parameter_error(f"parameters.{name}", message) from exc
    unknown = sorted(set(used) - model.TEMPLATE_VARIABLES)
    if unknown:
        readable = ", ".join(sorted(model.TEMPLATE_VARIABLES))
        raise _parameter_error(
            f"parameters.{name}", f"reads {', '.join(unknown)}; a template reads {readable}"
        )


def _allow_private() -> bool:
    from mailroom.settings import get_settings

    return get_settings().webhook_allow_private


def _action_item(org_id: str, action_id: str, fields: Mapping[str, Any], parameters: dict[str, Any]) -> Item:
    return {
        "id": action_id,
        "org_id": org_id,
        "name": str(fields["name"]).strip(),
        "description": fields.get("description"),
        "action_type": fields["action_type"],
        "parameters": parameters,
    }


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > model.MAX_NAME_CHARS:
        raise errors.validation(f"a name is 1 to {model.MAX_NAME_CHARS} characters", field="name")


async def create_action(table: Table, org_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The action's view; a webhook action's with its ``secret`` (answered here only: it is kept
    KMS-sealed, bound to the organization and the action)."""
    _check_name(fields.get("name"))
    parameters = await validated_parameters(str(fields["action_type"]), fields.get("parameters") or {})
    action_id = ids.new_id("act")
    secret: str | None = None
    sealed: dict[str, Any] = {}
    if fields["action_type"] == "webhook":
        secret = webhook_rules.new_secret()
        sealed = {
            "secret_ciphertext": kms.encrypt(secret.encode(), model.secret_context(org_id, action_id)),
            "secret_last_four": secret[-4:],
        }

    def plan(_: Snapshot) -> Plan:
        item = _stamped(
            {**_action_item(org_id, action_id, fields, parameters), **sealed}, None, clock.now_iso()
        )
        return Plan(item, [store.put_item("action", item, new=True)], counts={"action_count": 1})

    view = action_view(change(table, org_id, plan).result)
    return {**view, "secret": secret} if secret is not None else view


async def update_action(
    table: Table, org_id: str, action: Item, fields: Mapping[str, Any], *, partial: bool
) -> dict[str, Any]:
    """PUT or PATCH. The type stays (a webhook keeps its secret; another type is another action);
    the route sets of the targets whose enabled routes run it follow."""
    merged = {**action_view(action), **fields} if partial else {**fields}
    if partial and "parameters" in fields:
        merged["parameters"] = fields["parameters"]  # replaced as a whole, then checked as a whole
    if merged.get("action_type", action["action_type"]) != action["action_type"]:
        raise errors.validation(
            "an action keeps its type; create another action for another type",
            field="action_type",
            code="action_type_immutable",
        )
    merged["action_type"] = action["action_type"]
    _check_name(merged.get("name"))
    parameters = await validated_parameters(str(action["action_type"]), merged.get("parameters") or {})
    action_id = str(action["id"])

    def plan(snapshot: Snapshot) -> Plan:
        previous = snapshot.item("action", action_id)
        kept: dict[str, Any] = {
            k: previous[k] for k in ("secret_ciphertext", "secret_last_four") if k in previous
        }
        item = _stamped(
            {**_action_item(org_id, action_id, merged, parameters), **kept}, previous, clock.now_iso()
        )
        users = [r for r in snapshot.routes_using("action", action_id) if r.get("enabled", True)]
        return Plan(
            item,
            [store.put_item("action", item, new=False)],
            targets={model.target_of(r) for r in users},
            actions={action_id: item},
        )

    return action_view(change(table, org_id, plan).result)


def delete_action(table: Table, org_id: str, action_id: str) -> None:
    """409 ``in_use`` while a route or a task config runs it."""

    def plan(snapshot: Snapshot) -> Plan:
        previous = snapshot.item("action", action_id)
        tasks = [t for t in store.all_of(table, org_id, "task") if t.get("action_id") == action_id]
        users = [*snapshot.routes_using("action", action_id), *tasks]
        if users:
            raise in_use("action", action_id, users)
        return Plan(previous, [store.delete_item("action", org_id, action_id)], counts={"action_count": -1})

    change(table, org_id, plan)


# ----------------------------------------------------------------------------- routes


def route_view(item: Mapping[str, Any]) -> dict[str, Any]:
    kind, target_id = model.target_of(item)
    return {
        "id": item["id"],
        "name": item["name"],
        "target": {f"{kind}_id": target_id},
        "rule_id": item.get("rule_id"),
        "action_ids": list(item.get("action_ids") or []),
        "position": int(item["position"]),
        "stop": bool(item.get("stop", False)),
        "enabled": bool(item.get("enabled", True)),
        "version": int(item.get("version", 1)),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def _route_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The route's own checks (no reads): name, target, action ids."""
    _check_name(fields.get("name"))
    target = fields.get("target") or {}
    chosen = [k for k in ("mailbox_id", "domain_id") if target.get(k)]
    if len(chosen) != 1:
        raise errors.validation("a route targets one mailbox_id or one domain_id", field="target")
    try:
        action_ids = model.check_action_ids(list(fields.get("action_ids") or []))
    except model.AutomationError as exc:
        raise _invalid(exc) from exc
    return {**fields, "target": {chosen[0]: str(target[chosen[0]])}, "action_ids": action_ids}


def _check_references(snapshot: Snapshot, fields: Mapping[str, Any]) -> None:
    """422 naming a rule or action that is not the organization's."""
    rule_id = fields.get("rule_id")
    if rule_id and store.get(snapshot.table, snapshot.org_id, "rule", str(rule_id)) is None:
        raise errors.validation(
            f"no rule {rule_id} in this organization", field="rule_id", code="unknown_rule"
        )
    found = store.many(snapshot.table, snapshot.org_id, "action", fields["action_ids"])
    missing = [a for a in fields["action_ids"] if a not in found]
    if missing:
        raise errors.validation(
            f"no action {', '.join(missing)} in this organization", field="action_ids", code="unknown_action"
        )


def _route_plan(snapshot: Snapshot, fields: Mapping[str, Any], previous: Item | None, route_id: str) -> Plan:
    _check_references(snapshot, fields)
    target = model.target_of(fields)
    others = [r for r in snapshot.routes() if r["id"] != route_id]
    on_target = [r for r in others if model.target_of(r) == target]
    if len(on_target) >= model.MAX_ROUTES_PER_TARGET:
        raise errors.LimitReached(
            "target_route_limit_reached",
            f"at most {model.MAX_ROUTES_PER_TARGET} routes per mailbox or domain",
            fields=[{"field": "target", "message": "this target has the most routes it may have"}],
        )
    position = fields.get("position")
    if position is None:
        position = max((int(r["position"]) for r in on_target), default=-1) + 1
    item = _stamped(
        {
            "id": route_id,
            "org_id": snapshot.org_id,
            "name": str(fields["name"]).strip(),
            "target": dict(fields["target"]),
            "rule_id": fields.get("rule_id") or None,
            "action_ids": list(fields["action_ids"]),
            "position": min(int(position), model.MAX_POSITION),
            "stop": bool(fields.get("stop", False)),
            "enabled": bool(fields.get("enabled", True)),
        },
        previous,
        clock.now_iso(),
    )
    targets = {target} | ({model.target_of(previous)} if previous else set())
    operations = [
        store.put_item("route", item, new=previous is None),
        store.target_exists(snapshot.org_id, *target),
    ]
    return Plan(
        item,
        operations,
        counts={} if previous else {"route_count": 1},
        targets=targets,
        routes=[*others, item],
    )


def create_route(table: Table, org_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The route, and its target's route set rebuilt with it."""
    checked = _route_fields(fields)
    route_id = ids.new_id("rte")
    return route_view(
        change(table, org_id, lambda snapshot: _route_plan(snapshot, checked, None, route_id)).result
    )


def update_route(
    table: Table, org_id: str, route_id: str, fields: Mapping[str, Any], *, partial: bool
) -> dict[str, Any]:
    """PUT or PATCH; the route sets of its old and new target are rebuilt."""

    def plan(snapshot: Snapshot) -> Plan:
        previous = snapshot.item("route", route_id)
        merged = {**route_view(previous), **fields} if partial else dict(fields)
        checked = _route_fields(merged)
        if "position" not in checked and model.target_of(checked) == model.target_of(previous):
            checked["position"] = int(previous["position"])  # a full replace keeps the route's place
        return _route_plan(snapshot, checked, previous, route_id)

    return route_view(change(table, org_id, plan).result)


def delete_route(table: Table, org_id: str, route_id: str) -> None:
    def plan(snapshot: Snapshot) -> Plan:
        previous = snapshot.item("route", route_id)
        others = [r for r in snapshot.routes() if r["id"] != route_id]
        return Plan(
            previous,
            [store.delete_item("route", org_id, route_id)],
            counts={"route_count": -1},
            targets={model.target_of(previous)},
            routes=others,
        )

    change(table, org_id, plan)
