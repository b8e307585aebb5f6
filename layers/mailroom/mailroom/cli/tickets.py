"""``mailroom admin tickets ...``: the operator's side of support tickets (docs/tickets.md).

    mailroom admin tickets list [--status open|answered|closed] [--org ORG_ID] [--limit N] [--json] [TARGET]
    mailroom admin tickets show TICKET_ID [--json] [TARGET]
    mailroom admin tickets reply TICKET_ID (--body TEXT | --body-file PATH) [--name NAME] [--close]
                                 [--json] [TARGET]
    mailroom admin tickets close TICKET_ID [--json] [TARGET]

``list`` reads every organization's tickets (one index, newest first) unless ``--org`` names one.
A reply is an operator message: the ticket becomes ``answered`` (a closed one reopens) and the
organization gets a ``ticket.replied`` event, as for an emailed answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from mailroom.cli import TARGET_HELP, CliError, _aws_call, _format_table, open_table

STATUSES = ("open", "answered", "closed")


def add_commands(actions: Any, target: argparse.ArgumentParser) -> None:
    """Register ``tickets`` under ``mailroom admin``."""
    tickets = actions.add_parser(
        "tickets",
        help="list, read, answer and close organizations' support tickets",
        description="Support tickets: organizations' threads with you, the operator.",
    )
    commands = tickets.add_subparsers(dest="tickets_action", required=True, metavar="ACTION")

    listing = commands.add_parser("list", parents=[target], help="tickets, newest first", epilog=TARGET_HELP)
    listing.add_argument("--status", choices=STATUSES, help="only tickets in this status")
    listing.add_argument("--org", metavar="ORG_ID", help="only this organization's tickets")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50, max 100)")
    listing.add_argument("--json", action="store_true", help="print one JSON array instead of a table")
    listing.set_defaults(run=_list)

    show = commands.add_parser("show", parents=[target], help="a ticket and its thread", epilog=TARGET_HELP)
    show.add_argument("ticket", metavar="TICKET_ID")
    show.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    show.set_defaults(run=_show)

    reply = commands.add_parser("reply", parents=[target], help="answer a ticket", epilog=TARGET_HELP)
    reply.add_argument("ticket", metavar="TICKET_ID")
    body = reply.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", help="the answer's text")
    body.add_argument(
        "--body-file", type=Path, metavar="PATH", help="read the answer from a file ('-': stdin)"
    )
    reply.add_argument("--name", default="Support", help="shown as the author (default: Support)")
    reply.add_argument("--close", action="store_true", help="close the ticket after answering")
    reply.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    reply.set_defaults(run=_reply)

    close = commands.add_parser("close", parents=[target], help="close a ticket", epilog=TARGET_HELP)
    close.add_argument("ticket", metavar="TICKET_ID")
    close.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    close.set_defaults(run=_close)


def _call(what: str, call: Any) -> Any:
    """An AWS call whose product errors (no such ticket, already closed) are the operator's to fix."""
    from mailroom.errors import MailroomError

    try:
        return _aws_call(what, call)
    except MailroomError as exc:
        raise CliError(f"{what}: {exc.message}") from None


def _ticket_row(view: dict[str, Any], org_id: str) -> list[str]:
    return [
        view["id"],
        org_id,
        view["status"],
        str(view["message_count"]),
        view.get("last_message_at") or "-",
        view["subject"][:60],
    ]


def _list(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.services import tickets

    if not 1 <= args.limit <= 100:
        raise CliError("--limit must be between 1 and 100")
    table = open_table(args)
    page = _call(
        "list tickets",
        lambda: tickets.list_tickets(table, args.org, per_page=args.limit, cursor=None, status=args.status),
    )
    views = [{**tickets.ticket_view(t), "org_id": t["org_id"]} for t in page.items]
    if args.json:
        out.write(json.dumps(views, indent=2) + "\n")
        return
    rows = [_ticket_row(v, v["org_id"]) for v in views]
    out.write(_format_table(["ID", "ORG", "STATUS", "MESSAGES", "LAST MESSAGE", "SUBJECT"], rows))


def _show(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.services import tickets

    table = open_table(args)
    ticket = _call("read ticket", lambda: tickets.load_any(table, args.ticket))
    messages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        read = partial(tickets.list_messages, table, ticket, per_page=100, cursor=cursor)
        page = _call("read messages", read)
        messages += [tickets.message_view(m) for m in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    view = {**tickets.ticket_view(ticket), "org_id": ticket["org_id"], "messages": messages}
    if args.json:
        out.write(json.dumps(view, indent=2) + "\n")
        return
    out.write(
        f"ticket        {view['id']} ({view['status']})\n"
        f"organization  {view['org_id']}\n"
        f"subject       {view['subject']}\n"
    )
    for message in messages:
        who = message["author_name"] or message["author"]
        out.write(f"\n--- {message['created_at']}  {message['author']}: {who} (via {message['via']})\n")
        out.write(message["body"].rstrip() + "\n")


def _body(args: argparse.Namespace) -> str:
    from mailroom.domain.tickets import MAX_BODY

    if args.body_file is not None:
        try:
            text = sys.stdin.read() if str(args.body_file) == "-" else args.body_file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {args.body_file}: {exc}") from None
    else:
        text = args.body
    text = text.strip()
    if not text or len(text) > MAX_BODY:
        raise CliError(f"the answer must be 1 to {MAX_BODY} characters")
    return str(text)


def _reply(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.domain import tickets as rules
    from mailroom.services import tickets

    body = _body(args)
    table = open_table(args)
    ticket = _call("read ticket", lambda: tickets.load_any(table, args.ticket))
    author = tickets.Author(rules.OPERATOR, rules.VIA_CLI, name=args.name)
    message = _call("reply", lambda: tickets.operator_reply(table, ticket, body=body, author=author))
    status = "answered"
    if args.close:
        reloaded = _call("read ticket", lambda: tickets.load_any(table, args.ticket))
        status = _call("close", lambda: tickets.close(table, reloaded, by=rules.OPERATOR))["status"]
    view = {"message": tickets.message_view(message), "ticket_status": status}
    if args.json:
        out.write(json.dumps(view, indent=2) + "\n")
        return
    out.write(f"message       {message['id']}\nticket        {ticket['id']} ({view['ticket_status']})\n")


def _close(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.domain import tickets as rules
    from mailroom.services import tickets

    table = open_table(args)
    ticket = _call("read ticket", lambda: tickets.load_any(table, args.ticket))
    closed = _call("close", lambda: tickets.close(table, ticket, by=rules.OPERATOR))
    view = {**tickets.ticket_view(closed), "org_id": closed["org_id"]}
    if args.json:
        out.write(json.dumps(view, indent=2) + "\n")
        return
    out.write(f"ticket        {view['id']} ({view['status']})\n")
