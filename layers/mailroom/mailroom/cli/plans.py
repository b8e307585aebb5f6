"""``mailroom admin plans ...`` and ``mailroom admin set-plan``: plans as the operator's data.

    mailroom admin plans list [--json] [TARGET]
    mailroom admin plans show NAME [--json] [TARGET]
    mailroom admin plans create NAME --scopes S,S|* --limits N=V,... [--from PLAN] [--description T]
    mailroom admin plans edit NAME [--scopes ...] [--limits N=V,...] [--unset-limit N] [--description T]
    mailroom admin set-plan ORG_ID PLAN [--json] [TARGET]

The default plans (nano, starter, pro, agency) are written to the table the first time plans are
listed or one is needed. An edit makes a new version of the plan and brings every organization on
it to that version before the command ends; ``set-plan`` says which tokens the new plan blocks and
which counts are over its limits (nothing is deleted: the organization cannot add more until it is
back under them). Running functions see a change within ``TokenCacheTtl`` seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from mailroom.cli import TARGET_HELP, CliError, _aws_call, _format_table, _limits, open_table

if TYPE_CHECKING:
    from mailroom.domain.plans import Plan
    from mailroom.services.plans import Assigned


def _scopes(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def add_commands(actions: Any, target: argparse.ArgumentParser) -> None:
    """Register ``plans`` and ``set-plan`` under ``mailroom admin``."""
    plans = actions.add_parser(
        "plans",
        help="list, show, create and edit plans",
        description="Plans say which scopes an organization's tokens may use and its limits.",
    )
    commands = plans.add_subparsers(dest="plans_action", required=True, metavar="ACTION")

    listing = commands.add_parser("list", parents=[target], help="every plan", epilog=TARGET_HELP)
    listing.add_argument("--json", action="store_true", help="print one JSON array instead of a table")
    listing.set_defaults(run=_list)

    show = commands.add_parser("show", parents=[target], help="one plan in full", epilog=TARGET_HELP)
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    show.set_defaults(run=_show)

    create = commands.add_parser(
        "create",
        parents=[target],
        help="create a plan",
        description="Create a plan. --from copies another plan's scopes, limits and description; "
        "--scopes and --limits then replace or change them. Without --from, both are required and "
        "--limits must name every limit.",
        epilog=TARGET_HELP,
    )
    create.add_argument("name", help="lowercase letters, digits and '-' (up to 32)")
    create.add_argument("--from", dest="base", metavar="PLAN", help="start from this plan")
    create.add_argument(
        "--scopes", type=_scopes, metavar="S,S,...", help="scope names, or '*' for every scope"
    )
    create.add_argument("--limits", type=_limits, default={}, metavar="NAME=N,...", help="limits")
    create.add_argument("--description", default=None)
    create.add_argument("--price-cents", type=int, default=None, help="monthly price in USD cents (invoices)")
    create.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    create.set_defaults(run=_create)

    edit = commands.add_parser(
        "edit",
        parents=[target],
        help="change a plan and every organization on it",
        description="Change a plan's scopes (replaced), limits (merged) or description; every "
        "organization on it gets the new version.",
        epilog=TARGET_HELP,
    )
    edit.add_argument("name")
    edit.add_argument(
        "--scopes", type=_scopes, metavar="S,S,...", help="the new scope list ('*': every scope)"
    )
    edit.add_argument("--limits", type=_limits, default={}, metavar="NAME=N,...", help="limits to change")
    edit.add_argument(
        "--unset-limit", action="append", default=[], metavar="NAME", help="drop an optional limit"
    )
    edit.add_argument("--description", default=None)
    edit.add_argument("--price-cents", type=int, default=None, help="monthly price in USD cents (invoices)")
    edit.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    edit.set_defaults(run=_edit)

    assign = actions.add_parser(
        "set-plan",
        parents=[target],
        help="put an organization on a plan",
        description="Put an organization on a plan: its scopes gate every request from the next one "
        "(within TokenCacheTtl in a deployed stack), its limits hold for everything added from now on.",
        epilog=TARGET_HELP,
    )
    assign.add_argument("org", metavar="ORG_ID")
    assign.add_argument("plan", metavar="PLAN")
    assign.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    assign.set_defaults(run=_set_plan)


def _invalid(exc: Exception) -> CliError:
    return CliError(str(exc))


def _limits_text(limits: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(limits.items()))


def _write_plan(plan: Plan, out: TextIO) -> None:
    out.write(
        f"plan          {plan.name} (version {plan.version})\n"
        f"description   {plan.description}\n"
        f"scopes        {', '.join(plan.scopes)}\n"
        f"limits        {_limits_text(dict(plan.limits))}\n"
        f"price         {plan.price_cents / 100:.2f} USD / month\n"
    )


def _list(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.services import plans

    table = open_table(args)
    found: list[Plan] = _aws_call("list plans", lambda: plans.list_plans(table))
    if args.json:
        out.write(json.dumps([p.as_dict() for p in found], indent=2) + "\n")
        return
    rows = [[p.name, str(p.version), ",".join(p.scopes), _limits_text(dict(p.limits))] for p in found]
    out.write(_format_table(["NAME", "VERSION", "SCOPES", "LIMITS"], rows))


def _show(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.services import plans

    table = open_table(args)
    try:
        plan: Plan = _aws_call("read plan", lambda: plans.get_plan(table, args.name))
    except plans.PlanNotFound as exc:
        raise _invalid(exc) from None
    if args.json:
        out.write(json.dumps(plan.as_dict(), indent=2) + "\n")
        return
    _write_plan(plan, out)


def _create(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.domain.plans import InvalidPlan
    from mailroom.services import plans

    table = open_table(args)
    try:
        base = _aws_call("read plan", lambda: plans.get_plan(table, args.base)) if args.base else None
        if base is None and (args.scopes is None or not args.limits):
            raise CliError("without --from, a plan needs --scopes and --limits")
        scopes = args.scopes if args.scopes is not None else base.scopes  # type: ignore[union-attr]
        limits = {**(dict(base.limits) if base else {}), **args.limits}
        description = args.description if args.description is not None else (base.description if base else "")
        price = args.price_cents if args.price_cents is not None else (base.price_cents if base else 0)
        plan: Plan = _aws_call(
            "create plan",
            lambda: plans.create_plan(
                table, args.name, description=description, scopes=scopes, limits=limits, price_cents=price
            ),
        )
    except (plans.PlanNotFound, plans.PlanExists, InvalidPlan) as exc:
        raise _invalid(exc) from None
    if args.json:
        out.write(json.dumps(plan.as_dict(), indent=2) + "\n")
        return
    _write_plan(plan, out)


def _edit(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.domain.plans import InvalidPlan
    from mailroom.services import plans

    table = open_table(args)
    nothing = args.scopes is None and not args.limits and not args.unset_limit and args.description is None
    if nothing and args.price_cents is None:
        raise CliError(
            "nothing to change: give --scopes, --limits, --unset-limit, --description or --price-cents"
        )
    try:
        edited: plans.Edited = _aws_call(
            "edit plan",
            lambda: plans.edit_plan(
                table,
                args.name,
                description=args.description,
                scopes=args.scopes,
                limits=args.limits,
                unset_limits=args.unset_limit,
                price_cents=args.price_cents,
            ),
        )
    except (plans.PlanNotFound, plans.ConcurrentEdit, InvalidPlan) as exc:
        raise _invalid(exc) from None
    if args.json:
        view = {
            "plan": edited.plan.as_dict(),
            "organizations_updated": edited.organizations_updated,
            "organizations_skipped": edited.organizations_skipped,
        }
        out.write(json.dumps(view, indent=2) + "\n")
        return
    _write_plan(edited.plan, out)
    out.write(f"organizations {edited.organizations_updated} updated to version {edited.plan.version}\n")
    if edited.organizations_skipped:
        sys.stderr.write(
            f"{edited.organizations_skipped} organization(s) left the plan or hold a newer version; skipped\n"
        )


def _assigned_view(result: Assigned) -> dict[str, Any]:
    return {
        "organization": result.organization["id"],
        "previous_plan": result.previous_plan,
        "plan": result.plan.name,
        "plan_version": result.plan.version,
        "limits": result.organization.get("limits", {}),
        "blocked_tokens": [
            {"id": t["id"], "name": t["name"], "type": t["token_type"], "scopes": t.get("scopes", [])}
            for t in result.blocked_tokens
        ],
        "over_limits": {k: {"count": c, "limit": limit} for k, (c, limit) in result.over_limits.items()},
    }


def _set_plan(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.services import plans

    table = open_table(args)
    try:
        result: Assigned = _aws_call("set plan", lambda: plans.set_plan(table, args.org, args.plan))
    except (plans.PlanNotFound, plans.OrganizationNotFound, plans.ConcurrentEdit) as exc:
        raise _invalid(exc) from None
    view = _assigned_view(result)
    if args.json:
        out.write(json.dumps(view, indent=2) + "\n")
        return
    out.write(
        f"organization  {view['organization']}\n"
        f"plan          {view['previous_plan'] or '-'} -> {view['plan']} (version {view['plan_version']})\n"
        f"limits        {_limits_text(view['limits'])}\n"
    )
    for token in view["blocked_tokens"]:
        sys.stderr.write(
            f"token {token['id']} ({token['name']}) is now refused with token_scope_blocked_by_plan: "
            "revoke it and create one with the plan's scopes\n"
        )
    for limit, over in view["over_limits"].items():
        sys.stderr.write(
            f"over the plan's {limit} limit: {over['count']} of {over['limit']}; nothing new until under it\n"
        )
