"""The organization's automation (mailtrigger-api.txt; docs/automation.md): reusable rules
(``/api/v1/rules``), actions (``/api/v1/actions``, their ``/parameters``) and the routes that join a
mailbox or domain, a rule and actions (``/api/v1/routes``). Scopes ``automation:read`` and
``automation:write``. Every path also answers with a trailing slash (``api/paths.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response

from mailroom import errors as kinds
from mailroom.api import pagination
from mailroom.api.models import ListOf, One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.automation import (
    ActionParametersView,
    AutomationActionInput,
    AutomationActionPatch,
    AutomationActionView,
    AutomationActionWithSecret,
    AutomationRuleInput,
    AutomationRulePatch,
    AutomationRuleView,
    RouteInput,
    RoutePatch,
    RouteView,
)
from mailroom.domain.principal import Principal
from mailroom.services import automation as service
from mailroom.store.table import Item, Table

router = api_router("/api/v1", tags=["automation"])
Reader = Annotated[Principal, Depends(require("automation:read"))]
Writer = Annotated[Principal, Depends(require("automation:write"))]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]
RuleId = Annotated[str, Path(max_length=64, description="The rule's id (rul_...)")]
ActionId = Annotated[str, Path(max_length=64, description="The action's id (act_...)")]
RouteId = Annotated[str, Path(max_length=64, description="The route's id (rte_...)")]

RULE_404 = errors(e404="not_found: no such rule in this organization")
ACTION_404 = errors(e404="not_found: no such action in this organization")
ROUTE_404 = errors(e404="not_found: no such route in this organization")
CONCURRENT = "concurrent_update: another change of the organization's automation won; retry"
RULE_ERRORS = (
    "validation_error, invalid_condition (e.g. a data condition without its key), invalid_regex, "
    "pattern_too_long, too_many_conditions; route_set_too_large, change_too_wide"
)
ACTION_ERRORS = (
    "validation_error, invalid_parameters (each failing parameters.* field), invalid_webhook_url, "
    "webhook_url_unresolvable, webhook_url_not_allowed, invalid_event_bus_arn, event_bus_not_allowed; "
    "route_set_too_large, change_too_wide"
)
ROUTE_ERRORS = (
    "validation_error, unknown_rule, unknown_action, unknown_target (a mailbox or domain that is not "
    "the organization's), route_limit_reached, target_route_limit_reached, route_set_too_large"
)
LIST_ERRORS = errors(e422="invalid_cursor, validation_error")


def _page(request: Request, listing: service.Listing, page_query: pagination.PageQuery) -> dict[str, Any]:
    return pagination.envelope(
        request, listing.page, listing.views, per_page=page_query.per_page, total=listing.total
    )


# ----------------------------------------------------------------------------- rules


@router.get(
    "/rules",
    name="automation.rules.list",
    response_model=ListOf[AutomationRuleView],
    summary="List rules",
    responses=LIST_ERRORS,
)
async def list_rules(request: Request, principal: Reader, page_query: PageParams) -> dict[str, Any]:
    """The organization's rule definitions in creation order; `meta.total` is the maintained count."""
    listing = service.list_of(
        Table(), principal.org_id, "rule", per_page=page_query.per_page, cursor=page_query.cursor
    )
    return _page(request, listing, page_query)


@router.post(
    "/rules",
    name="automation.rules.create",
    status_code=201,
    response_model=One[AutomationRuleView],
    summary="Create a rule",
    responses=errors(e409=CONCURRENT, e422=f"{RULE_ERRORS}, rule_limit_reached"),
)
async def create_rule(body: AutomationRuleInput, request: Request, principal: Writer) -> dict[str, Any]:
    """A reusable condition set (the mailbox rules' language plus data conditions) that routes
    name; `match` all or any of the conditions; no condition matches every message."""
    view = service.create_rule(Table(), principal.org_id, body.fields())
    audit_target(request, "automation_rule", view["id"], name=view["name"])
    return one(view)


@router.get(
    "/rules/{automation_rule_id}",
    name="automation.rules.get",
    response_model=One[AutomationRuleView],
    summary="Get a rule",
    responses=RULE_404,
)
async def get_rule(automation_rule_id: RuleId, principal: Reader) -> dict[str, Any]:
    """One rule definition with its conditions."""
    return one(service.rule_view(service.load(Table(), principal.org_id, "rule", automation_rule_id)))


@router.put(
    "/rules/{automation_rule_id}",
    name="automation.rules.replace",
    response_model=One[AutomationRuleView],
    summary="Replace a rule",
    responses={**RULE_404, **errors(e409=CONCURRENT, e422=RULE_ERRORS)},
)
async def replace_rule(
    automation_rule_id: RuleId, body: AutomationRuleInput, request: Request, principal: Writer
) -> dict[str, Any]:
    """Replace the name, description, match and conditions (fields left out take their defaults).
    Routes that use it match by the new conditions from the next message on."""
    audit_target(request, "automation_rule", automation_rule_id)
    return one(
        service.update_rule(Table(), principal.org_id, automation_rule_id, body.fields(), partial=False)
    )


@router.patch(
    "/rules/{automation_rule_id}",
    name="automation.rules.update",
    response_model=One[AutomationRuleView],
    summary="Change some fields of a rule",
    responses={**RULE_404, **errors(e409=CONCURRENT, e422=RULE_ERRORS)},
)
async def update_rule(
    automation_rule_id: RuleId, body: AutomationRulePatch, request: Request, principal: Writer
) -> dict[str, Any]:
    """Change only the fields sent (`conditions`, when sent, replaces the list)."""
    audit_target(request, "automation_rule", automation_rule_id)
    return one(
        service.update_rule(Table(), principal.org_id, automation_rule_id, body.fields(), partial=True)
    )


@router.delete(
    "/rules/{automation_rule_id}",
    name="automation.rules.delete",
    status_code=204,
    summary="Delete a rule",
    responses={**RULE_404, **errors(e409=f"in_use: routes use it (named in the message); {CONCURRENT}")},
)
async def delete_rule(automation_rule_id: RuleId, request: Request, principal: Writer) -> Response:
    """Delete a rule no route uses (409 in_use naming the routes otherwise)."""
    audit_target(request, "automation_rule", automation_rule_id)
    service.delete_rule(Table(), principal.org_id, automation_rule_id)
    return Response(status_code=204)


# ----------------------------------------------------------------------------- actions


def _writable_action(request: Request, principal: Writer, action_id: ActionId) -> Item:
    audit_target(request, "automation_action", action_id)
    return service.load(Table(), principal.org_id, "action", action_id)


WritableAction = Annotated[Item, Depends(_writable_action)]


@router.get(
    "/actions",
    name="automation.actions.list",
    response_model=ListOf[AutomationActionView],
    summary="List actions",
    responses=LIST_ERRORS,
)
async def list_actions(request: Request, principal: Reader, page_query: PageParams) -> dict[str, Any]:
    """The organization's action configurations in creation order (never a secret)."""
    listing = service.list_of(
        Table(), principal.org_id, "action", per_page=page_query.per_page, cursor=page_query.cursor
    )
    return _page(request, listing, page_query)


@router.post(
    "/actions",
    name="automation.actions.create",
    status_code=201,
    response_model=One[AutomationActionWithSecret],
    summary="Create an action (a webhook action's secret is returned once)",
    responses=errors(e409=CONCURRENT, e422=f"{ACTION_ERRORS}, action_limit_reached"),
)
async def create_action(body: AutomationActionInput, request: Request, principal: Writer) -> dict[str, Any]:
    """An action configuration routes run: `webhook`, `eventbridge`, `forward`, `reply` (run after
    the message is stored, from a queue, with retries) or `label`, `move`, `store_data`, `delete`
    (applied as it is stored). A webhook action's `secret` signs its requests per Standard Webhooks
    and is answered here only: keep it."""
    view = await service.create_action(Table(), principal.org_id, body.fields())
    audit_target(request, "automation_action", view["id"], action_type=view["action_type"])
    return one(view)


@router.get(
    "/actions/{action_id}",
    name="automation.actions.get",
    response_model=One[AutomationActionView],
    summary="Get an action",
    responses=ACTION_404,
)
async def get_action(action_id: ActionId, principal: Reader) -> dict[str, Any]:
    """One action configuration with its parameters (never its secret)."""
    return one(service.action_view(service.load(Table(), principal.org_id, "action", action_id)))


@router.get(
    "/actions/{action_id}/parameters",
    name="automation.actions.parameters",
    response_model=One[ActionParametersView],
    summary="The action type's parameter schema and the action's values",
    responses=ACTION_404,
)
async def get_parameters(action_id: ActionId, principal: Reader) -> dict[str, Any]:
    """The JSON Schema of the action's type (what a create or update must satisfy) and its current
    parameter values."""
    return one(service.parameters_view(service.load(Table(), principal.org_id, "action", action_id)))


@router.put(
    "/actions/{action_id}",
    name="automation.actions.replace",
    response_model=One[AutomationActionView],
    summary="Replace an action",
    responses={**ACTION_404, **errors(e409=CONCURRENT, e422=f"{ACTION_ERRORS}, action_type_immutable")},
)
async def replace_action(
    body: AutomationActionInput, action: WritableAction, principal: Writer
) -> dict[str, Any]:
    """Replace the name, description and parameters; `action_type` must be the action's own. A
    webhook action keeps its secret. Routes that run it use the new parameters from the next
    message on."""
    return one(await service.update_action(Table(), principal.org_id, action, body.fields(), partial=False))


@router.patch(
    "/actions/{action_id}",
    name="automation.actions.update",
    response_model=One[AutomationActionView],
    summary="Change some fields of an action",
    responses={**ACTION_404, **errors(e409=CONCURRENT, e422=f"{ACTION_ERRORS}, action_type_immutable")},
)
async def update_action(
    body: AutomationActionPatch, action: WritableAction, principal: Writer
) -> dict[str, Any]:
    """Change only the fields sent; `parameters`, when sent, replaces them whole."""
    return one(await service.update_action(Table(), principal.org_id, action, body.fields(), partial=True))


@router.delete(
    "/actions/{action_id}",
    name="automation.actions.delete",
    status_code=204,
    summary="Delete an action",
    responses={**ACTION_404, **errors(e409=f"in_use: routes run it (named in the message); {CONCURRENT}")},
)
async def delete_action(action_id: ActionId, request: Request, principal: Writer) -> Response:
    """Delete an action no route runs (409 in_use naming the routes otherwise)."""
    audit_target(request, "automation_action", action_id)
    service.delete_action(Table(), principal.org_id, action_id)
    return Response(status_code=204)


# ----------------------------------------------------------------------------- routes


@router.get(
    "/routes",
    name="automation.routes.list",
    response_model=ListOf[RouteView],
    summary="List routes",
    responses=LIST_ERRORS,
)
async def list_routes(
    request: Request,
    principal: Reader,
    page_query: PageParams,
    mailbox_id: Annotated[
        str | None,
        Query(max_length=64, description="Only the routes of this mailbox (its own, not its domain's)"),
    ] = None,
    domain_id: Annotated[
        str | None, Query(max_length=64, description="Only the routes of this domain")
    ] = None,
) -> dict[str, Any]:
    """The organization's routes in creation order (each target runs its own by position), or one
    mailbox's or domain's (`meta.total` is then null)."""
    if mailbox_id and domain_id:
        raise kinds.validation("filter by mailbox_id or by domain_id, not both", field="domain_id")
    target = ("mailbox", mailbox_id) if mailbox_id else ("domain", domain_id) if domain_id else None
    listing = service.list_of(
        Table(),
        principal.org_id,
        "route",
        per_page=page_query.per_page,
        cursor=page_query.cursor,
        target=target,
    )
    return _page(request, listing, page_query)


@router.post(
    "/routes",
    name="automation.routes.create",
    status_code=201,
    response_model=One[RouteView],
    summary="Create a route",
    responses=errors(e409=CONCURRENT, e422=ROUTE_ERRORS),
)
async def create_route(body: RouteInput, request: Request, principal: Writer) -> dict[str, Any]:
    """Connect a mailbox (or every mailbox of a domain), a rule (null: every message) and an ordered
    list of actions. Incoming mail of the target runs its enabled routes by position; a matching
    route with `stop` ends the run. Effective for the next message received."""
    view = service.create_route(Table(), principal.org_id, body.fields())
    audit_target(request, "automation_route", view["id"], **view["target"])
    return one(view)


@router.get(
    "/routes/{route_id}",
    name="automation.routes.get",
    response_model=One[RouteView],
    summary="Get a route",
    responses=ROUTE_404,
)
async def get_route(route_id: RouteId, principal: Reader) -> dict[str, Any]:
    """One route: its target, rule, actions, position, stop and enabled."""
    return one(service.route_view(service.load(Table(), principal.org_id, "route", route_id)))


@router.put(
    "/routes/{route_id}",
    name="automation.routes.replace",
    response_model=One[RouteView],
    summary="Replace a route",
    responses={**ROUTE_404, **errors(e409=CONCURRENT, e422=ROUTE_ERRORS)},
)
async def replace_route(
    route_id: RouteId, body: RouteInput, request: Request, principal: Writer
) -> dict[str, Any]:
    """Replace every field (fields left out take their defaults; `position` left out keeps the
    route's place when the target stays)."""
    audit_target(request, "automation_route", route_id)
    return one(service.update_route(Table(), principal.org_id, route_id, body.fields(), partial=False))


@router.patch(
    "/routes/{route_id}",
    name="automation.routes.update",
    response_model=One[RouteView],
    summary="Change some fields of a route",
    responses={**ROUTE_404, **errors(e409=CONCURRENT, e422=ROUTE_ERRORS)},
)
async def update_route(
    route_id: RouteId, body: RoutePatch, request: Request, principal: Writer
) -> dict[str, Any]:
    """Change only the fields sent: e.g. `{"enabled": false}` pauses it, `{"position": 0}` runs it
    first."""
    audit_target(request, "automation_route", route_id)
    return one(service.update_route(Table(), principal.org_id, route_id, body.fields(), partial=True))


@router.delete(
    "/routes/{route_id}",
    name="automation.routes.delete",
    status_code=204,
    summary="Delete a route",
    responses={**ROUTE_404, **errors(e409=CONCURRENT)},
)
async def delete_route(route_id: RouteId, request: Request, principal: Writer) -> Response:
    """Delete the route; its target's next message runs without it."""
    audit_target(request, "automation_route", route_id)
    service.delete_route(Table(), principal.org_id, route_id)
    return Response(status_code=204)
