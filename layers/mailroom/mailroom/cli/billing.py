"""``mailroom admin close-month``: close the monthly invoices by hand (docs/billing.md).

    mailroom admin close-month [--month YYYY-MM] [--json] [TARGET]
    mailroom admin close-month --org ORG_ID [--month YYYY-MM] [--final] [--json] [TARGET]

The scheduled function closes the previous month on the first of each month; this reruns it (a
month's invoices that exist are left as they are, so rerunning is safe), for every organization or
one. ``--final`` closes one organization's running month now: its last statement before it leaves.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from mailroom.cli import TARGET_HELP, CliError, _aws_call, open_table


def _month(raw: str) -> str:
    from mailroom.domain.billing import month_start

    try:
        month_start(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"month must be YYYY-MM, got {raw!r}") from None
    if len(raw) != 7:
        raise argparse.ArgumentTypeError(f"month must be YYYY-MM, got {raw!r}")
    return raw


def add_commands(actions: Any, target: argparse.ArgumentParser) -> None:
    close = actions.add_parser(
        "close-month",
        parents=[target],
        help="close a month's invoices (the scheduled close, by hand)",
        description="Write the invoices of a month that has ended (default: the previous month), "
        "for every organization or one (--org). Invoices that exist are left as they are.",
        epilog=TARGET_HELP,
    )
    close.add_argument("--month", type=_month, default=None, help="YYYY-MM (default: the previous month)")
    close.add_argument("--org", default=None, metavar="ORG_ID", help="only this organization")
    close.add_argument(
        "--final",
        action="store_true",
        help="with --org: close its running month now (its last statement before it leaves)",
    )
    close.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    close.set_defaults(run=_close)


def _close(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom import clock, errors
    from mailroom.domain.billing import month_of
    from mailroom.services import billing

    if args.final and not args.org:
        raise CliError("--final closes one organization's month: give --org")
    now = clock.utcnow()
    month = args.month or (month_of(now) if args.final else billing.month_to_close(now))
    table = open_table(args)
    if args.org:
        try:
            written = _aws_call(
                "close month", lambda: billing.close_org_month(table, args.org, month, final=args.final)
            )
        except billing.MonthNotEnded as exc:
            raise CliError(str(exc)) from None
        except errors.NotFound:
            raise CliError(f"no organization {args.org} (see 'mailroom admin list-orgs')") from None
        counts = {"closed": int(written), "already_closed": int(not written)}
    else:
        if month >= month_of(now):
            raise CliError(str(billing.MonthNotEnded(month)))
        counts = _aws_call("close month", lambda: billing.close_month(table, month)).counts()
    view = {"month": month, **counts}
    if args.json:
        out.write(json.dumps(view, indent=2) + "\n")
        return
    out.write(f"month         {month}\n" + "".join(f"{k:<14}{v}\n" for k, v in counts.items()))
