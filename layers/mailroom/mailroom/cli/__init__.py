"""``mailroom``: the operator's command line (the ``mailroom`` console script).

    mailroom admin create-org --name NAME [--plan PLAN] [--limits mailboxes=50,domains=10] [--json] [TARGET]
    mailroom admin list-orgs [--json] [TARGET]
    mailroom admin set-plan ORG_ID PLAN [--json] [TARGET]
    mailroom admin plans list|show|create|edit ... [TARGET]     (cli/plans.py)
    mailroom admin tickets list|show|reply|close ... [TARGET]  (cli/tickets.py)
    mailroom admin close-month [--month YYYY-MM] [--org ORG_ID [--final]] [--json] [TARGET]  (cli/billing.py)
    mailroom admin create-api-key --org ORG_ID [--name NAME] [--json] [TARGET]
    mailroom admin platform-domain [--domain NAME] [--json] [TARGET]
    mailroom mcp [--url URL] [--read-only] [--allow-destructive]

TARGET says which deployment's table to act on:

    --table NAME         a table by name (credentials and region from the usual AWS environment)
    --stack-name NAME    the ``TableName`` output of a deployed CloudFormation stack
    --local              the local stack: loads ``$MAILROOM_STATE_DIR/local.env`` (default
                         ``.mailroom/local.env`` here or in a parent folder), which the running
                         local stack writes
    --env-file PATH      the same, for any KEY=VALUE file
    (none)               ``MAILROOM_TABLE_NAME`` from the environment

Env files are loaded into ``os.environ`` before anything reads settings or builds a client, because
both are cached for the life of the process; ``main`` puts the environment back when the command
ends. Values in the file win over the shell's: naming the file is the more explicit choice.

Exit status: 0 done; 2 nothing usable to act on (bad arguments, no table, unreachable endpoint,
missing credentials); 1 AWS refused the operation.

``create-api-key`` issues an organization-wide ``inai_`` key (the ``/api/v0`` credential; it holds
every ops scope). ``platform-domain`` registers the platform domain of ``/api/v0`` inboxes with SES
(once; run again, it only shows) and prints the DNS records to publish for it; the domain is
``--domain``, else the stack's ``PlatformDomain`` output (``--stack-name``), else
``MAILROOM_PLATFORM_DOMAIN`` (the local stack's ``local.env`` has it).

``mcp`` serves the MCP server over stdio for desktop and coding agents (docs/mcp.md): the API at
``--url`` or ``MAILROOM_URL``, with the token in ``MAILROOM_TOKEN`` (an ops token, message token or
``inai_`` key; never an argument, which other users could read in the process list).

Output goes through ``sys.stdout.write``: this is the one place an admin token is shown in
plaintext, and the package has no ``print`` (stdout is for the result, stderr for everything else).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from mailroom.store.table import Item, Table

DEFAULT_STATE_DIR = ".mailroom"
LOCAL_ENV_FILE = "local.env"
DEFAULT_PAGE_SIZE = 100
# Shown by `list-orgs` in this order, under these headings (the item's maintained counters).
COUNTER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("mailbox_count", "MAILBOXES"),
    ("domain_count", "DOMAINS"),
    ("alias_count", "ALIASES"),
    ("token_count", "TOKENS"),
    ("audit_count", "AUDIT"),
    ("storage_used_bytes", "STORAGE_BYTES"),
)


class CliError(Exception):
    """Something the operator can fix; printed as ``mailroom: error: ...`` with the exit status."""

    def __init__(self, message: str, *, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


# --- argument parsing ----------------------------------------------------------------------------


def _limits(raw: str) -> dict[str, int]:
    """``mailboxes=50,domains=10`` → ``{"mailboxes": 50, "domains": 10}`` (known limit names only)."""
    from mailroom.domain.plans import LIMITS as DEFAULT_LIMITS

    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {part!r}")
        if name not in DEFAULT_LIMITS:
            raise argparse.ArgumentTypeError(
                f"unknown limit {name!r} (known: {', '.join(sorted(DEFAULT_LIMITS))})"
            )
        try:
            number = int(value.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"limit {name} must be a whole number, got {value!r}") from None
        if number < 0:
            raise argparse.ArgumentTypeError(f"limit {name} must not be negative, got {number}")
        limits[name] = number
    return limits


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000")
    return value


TARGET_HELP = (
    "Target: --table NAME, or --stack-name NAME (its TableName output), or MAILROOM_TABLE_NAME from "
    "the environment. --local loads $MAILROOM_STATE_DIR/local.env (default .mailroom/local.env, written "
    "by the running local stack) into the environment first; --env-file PATH does the same for any file."
)


def _target_options() -> argparse.ArgumentParser:
    """Options every admin command takes. A parent parser, so they go after the command name
    (``mailroom admin list-orgs --local``), where an operator types them."""
    parent = argparse.ArgumentParser(add_help=False)
    table = parent.add_mutually_exclusive_group()
    table.add_argument("--table", metavar="NAME", help="the state table's name")
    table.add_argument("--stack-name", metavar="NAME", help="a deployed stack; its TableName output is used")
    source = parent.add_mutually_exclusive_group()
    source.add_argument("--local", action="store_true", help="act on the local stack")
    source.add_argument(
        "--env-file", metavar="PATH", type=Path, help="load KEY=VALUE lines into the environment first"
    )
    parent.add_argument("--region", help="AWS region (default: AWS_REGION, then the AWS profile's region)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    target = _target_options()
    parser = argparse.ArgumentParser(prog="mailroom", description="Mailroom operator commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin = commands.add_parser("admin", help="organizations and their first tokens")
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create-org",
        parents=[target],
        help="create an organization and its first admin ops token",
        description="Create an organization on a plan, with an admin ops token holding every ops scope "
        "the plan allows. "
        "The token is shown once, here; only its SHA-256 is stored.",
        epilog=TARGET_HELP,
    )
    create.add_argument("--name", required=True, help="the organization's display name (1 to 100 characters)")
    create.add_argument(
        "--limits",
        type=_limits,
        default={},
        metavar="NAME=N,...",
        help="override the plan's limits for this organization, e.g. mailboxes=50,domains=10",
    )
    create.add_argument(
        "--plan", default="pro", help="the organization's plan (default: pro; see 'plans list')"
    )
    create.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    create.set_defaults(run=_create_org)

    listing = actions.add_parser(
        "list-orgs",
        parents=[target],
        help="list every organization",
        description="List every organization with its maintained counters.",
        epilog=TARGET_HELP,
    )
    listing.add_argument("--json", action="store_true", help="print one JSON array instead of a table")
    listing.add_argument(
        "--page-size", type=_positive, default=DEFAULT_PAGE_SIZE, help=argparse.SUPPRESS
    )  # hidden: lets tests cross page boundaries with few organizations
    listing.set_defaults(run=_list_orgs)

    api_key = actions.add_parser(
        "create-api-key",
        parents=[target],
        help="issue an organization-wide inai_ API key (/api/v0)",
        description="Issue an API key of an organization: organization-wide, every ops scope, for "
        "/api/v0 and /api/v1. The key is shown once, here; only its SHA-256 is stored.",
        epilog=TARGET_HELP,
    )
    api_key.add_argument("--org", required=True, metavar="ORG_ID", help="the organization's id (org_...)")
    api_key.add_argument("--name", default="admin", help="the key's name (default: admin)")
    api_key.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    api_key.set_defaults(run=_create_api_key)

    platform = actions.add_parser(
        "platform-domain",
        parents=[target],
        help="register the /api/v0 platform domain with SES; print its DNS records",
        description="Register the platform domain (where /api/v0 inboxes get an address when no "
        "domain is named) with SES, with a DKIM key Mailroom generates, unless it is registered "
        "already; then print the DNS records to publish for it.",
        epilog=TARGET_HELP,
    )
    platform.add_argument(
        "--domain",
        help="the platform domain (default: the stack's PlatformDomain output, or MAILROOM_PLATFORM_DOMAIN)",
    )
    platform.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    platform.set_defaults(run=_platform_domain)

    mcp = commands.add_parser(
        "mcp",
        help="serve the MCP server over stdio (for AI agents)",
        description="Serve Mailroom's MCP server over stdin/stdout: every API operation the token "
        "may call as a tool. The token comes from MAILROOM_TOKEN.",
        epilog="Environment: MAILROOM_URL, MAILROOM_TOKEN, MAILROOM_MCP_READ_ONLY, "
        "MAILROOM_MCP_ALLOW_DESTRUCTIVE. See docs/mcp.md.",
    )
    mcp.add_argument("--url", help="the API's base URL (default: MAILROOM_URL)")
    mcp.add_argument("--read-only", action="store_true", help="offer and run read tools only")
    mcp.add_argument(
        "--allow-destructive", action="store_true", help="offer destructive tools (each still needs confirm)"
    )
    mcp.set_defaults(run=_mcp)

    from mailroom.cli import plans

    plans.add_commands(actions, target)

    from mailroom.cli import tickets

    tickets.add_commands(actions, target)

    from mailroom.cli import billing

    billing.add_commands(actions, target)
    return parser


def _mcp(args: argparse.Namespace, out: TextIO) -> None:
    import anyio

    from mailroom.mcp_server.client import ApiFailure
    from mailroom.mcp_server.gates import Flags
    from mailroom.mcp_server.transports import serve_stdio

    del out  # stdout carries the protocol
    url = (args.url or os.environ.get("MAILROOM_URL", "")).strip()
    token = os.environ.get("MAILROOM_TOKEN", "").strip()
    if not url:
        raise CliError("no API URL: pass --url or set MAILROOM_URL")
    if not token:
        raise CliError("no token: set MAILROOM_TOKEN (an ops token, message token or inai_ API key)")
    configured = Flags.from_env()
    flags = Flags(
        read_only=configured.read_only or args.read_only,
        allow_destructive=configured.allow_destructive or args.allow_destructive,
    )
    try:
        anyio.run(serve_stdio, url, token, flags)
    except ApiFailure as failure:
        hint = f" ({failure.hint})" if failure.hint else ""
        raise CliError(f"{url}: {failure.code}: {failure.message}{hint}") from None


# --- environment ---------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and ``#`` comments skipped; ``export`` and matching quotes allowed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"env file {path} does not exist") from None
    except OSError as exc:
        raise CliError(f"cannot read env file {path}: {exc.strerror}") from None
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ").lstrip()
        key, sep, value = stripped.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.replace("_", "").isalnum() or key[0].isdigit():
            raise CliError(f"{path}:{number}: expected KEY=VALUE, got {line.strip()!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key] = value
    return found


def local_env_file() -> Path:
    """``$MAILROOM_STATE_DIR/local.env``; without the variable, ``.mailroom/local.env`` in the current
    folder or the nearest parent that has one (the local stack keeps it in the repository root, and an
    operator may be anywhere below it)."""
    configured = os.environ.get("MAILROOM_STATE_DIR")
    if configured:
        candidates = [Path(configured) / LOCAL_ENV_FILE]
    else:
        here = Path.cwd()
        candidates = [folder / DEFAULT_STATE_DIR / LOCAL_ENV_FILE for folder in (here, *here.parents)]
    for path in candidates:
        if path.is_file():
            return path
    raise CliError(f"no local stack state at {candidates[0]}: start the local stack first (make run)")


def _env_file_of(args: argparse.Namespace) -> Path | None:
    if args.local:
        return local_env_file()
    path_arg: Path | None = args.env_file
    return path_arg


def _configure_environment(args: argparse.Namespace) -> None:
    """Put everything that decides the target into ``os.environ``, then drop cached settings/clients."""
    env_file = _env_file_of(args)
    if env_file is not None:
        os.environ.update(read_env_file(env_file))
    if args.region:
        os.environ["AWS_REGION"] = args.region
    elif not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        # Settings fall back to us-east-1, but an operator's AWS profile may name another region;
        # the profile is what every other AWS tool on their machine would use.
        from mailroom.store import aws

        profile_region = _aws_call("AWS profile", aws.profile_region)
        if profile_region:
            os.environ["AWS_REGION"] = profile_region
    _forget_cached_configuration()
    _check_endpoint()


def _check_endpoint() -> None:
    """Fail fast when an emulated endpoint (the local stack) is not listening: botocore would retry
    a refused connection with backoff for seconds before saying the same thing."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if not parts.hostname:
        raise CliError(f"AWS_ENDPOINT_URL is not a URL: {endpoint!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    import socket

    try:
        socket.create_connection((parts.hostname, port), timeout=2).close()
    except OSError:
        raise CliError(f"cannot reach {endpoint} (is the local stack running? make run)") from None


def _forget_cached_configuration() -> None:
    from mailroom.settings import get_settings
    from mailroom.store import aws

    get_settings.cache_clear()
    aws.reset_clients()


# --- target table --------------------------------------------------------------------------------


def _where() -> str:
    from mailroom.settings import get_settings

    settings = get_settings()
    return f"region {settings.region}" + (f" at {settings.endpoint_url}" if settings.endpoint_url else "")


def _aws_call(what: str, call: Callable[[], Any], *, missing: str | None = None) -> Any:
    """Run AWS requests (and the client creation before them), turning failures into ``CliError``:
    status 2 for what the operator's setup decides (endpoint, credentials, region, profile), 1 when
    AWS answered with a refusal."""
    from mailroom.store.errors import NotConfigured, ObjectMissing, StoreError, Unreachable

    try:
        return call()
    except ObjectMissing as exc:
        raise CliError(missing or f"{what}: {exc.message}", status=2 if missing else 1) from None
    except Unreachable as exc:
        hint = " (is the local stack running? make run)" if os.environ.get("AWS_ENDPOINT_URL") else ""
        raise CliError(f"{what}: {exc.message}{hint}") from None
    except NotConfigured as exc:
        raise CliError(f"{what}: {exc.message}") from None
    except StoreError as exc:
        code = exc.code or "error"
        raise CliError(f"{what}: {code}: {exc.message}", status=1) from None


def _stack_table_name(stack_name: str) -> str:
    name = _stack_output(stack_name, "TableName")
    if name is None:
        raise CliError(f"stack {stack_name} has no TableName output (is it a Mailroom stack?)")
    return name


def _stack_output(stack_name: str, key: str) -> str | None:
    from mailroom.store import aws

    response = _aws_call(
        f"stack {stack_name}",
        lambda: aws.client("cloudformation").describe_stacks(StackName=stack_name),
        missing=f"stack {stack_name} not found in {_where()}",
    )
    for stack in response.get("Stacks", []):
        for output in stack.get("Outputs", []):
            if output.get("OutputKey") == key and output.get("OutputValue"):
                return str(output["OutputValue"])
    return None


def _table_name(args: argparse.Namespace) -> str:
    if args.table:
        return str(args.table)
    if args.stack_name:
        return _stack_table_name(args.stack_name)
    # Read the variable itself, not settings: settings default the name, and acting on a
    # default-named table the operator never chose is worse than asking.
    from_env = os.environ.get("MAILROOM_TABLE_NAME", "").strip()
    if from_env:
        return from_env
    raise CliError(
        "no table to act on: pass --table NAME, --stack-name NAME, --local or --env-file PATH, "
        "or set MAILROOM_TABLE_NAME"
    )


def _check_table(name: str) -> None:
    from mailroom.store import aws

    _aws_call(
        f"table {name}",
        lambda: aws.dynamodb().describe_table(TableName=name),
        missing=f"table {name} does not exist in {_where()}",
    )


def open_table(args: argparse.Namespace) -> Table:
    """The table the arguments name, checked to exist. Settings see it as MAILROOM_TABLE_NAME too,
    so any code below that builds its own ``Table()`` acts on the same one."""
    from mailroom.store.table import Table

    _configure_environment(args)
    name = _table_name(args)
    os.environ["MAILROOM_TABLE_NAME"] = name
    _forget_cached_configuration()
    _check_table(name)
    return Table()


# --- commands ------------------------------------------------------------------------------------


def _create_org(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.services.organizations import create_organization
    from mailroom.services.plans import PlanNotFound

    table = open_table(args)
    try:
        created = _aws_call(
            "create organization",
            lambda: create_organization(table, name=args.name, limits=args.limits or None, plan=args.plan),
        )
    except (ValueError, PlanNotFound) as exc:  # the service's own validation (name length, plan)
        raise CliError(str(exc)) from None
    org = created.organization
    if args.json:
        out.write(json.dumps({"organization": _org_view(org), "admin_token": created.admin_token}, indent=2))
        out.write("\n")
        return
    limits = ", ".join(f"{k}={v}" for k, v in sorted(org.get("limits", {}).items()))
    out.write(
        f"organization  {org['id']}\n"
        f"name          {org['name']}\n"
        f"plan          {org.get('plan')}\n"
        f"limits        {limits}\n"
        f"admin token   {created.admin_token}\n"
    )
    sys.stderr.write("The admin token is shown only this once; store it now (only its SHA-256 is kept).\n")


def _create_api_key(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.services.tokens import issue_api_key
    from mailroom.store import organizations

    table = open_table(args)
    org = _aws_call("read organization", lambda: organizations.get(table, args.org))
    if org is None:
        raise CliError(f"no organization {args.org} in table {table.name} (see list-orgs)")
    name = args.name.strip()
    if not 1 <= len(name) <= 100:
        raise CliError("the key's name must be 1 to 100 characters")
    new = _aws_call(
        "create API key", lambda: issue_api_key(table, org_id=org["id"], name=name, created_by=None)
    )
    if args.json:
        view = {"organization": org["id"], "key_id": new.item["id"], "name": name, "key": new.plaintext}
        out.write(json.dumps(view, indent=2) + "\n")
        return
    out.write(f"organization  {org['id']}\nkey id        {new.item['id']}\napi key       {new.plaintext}\n")
    sys.stderr.write("The API key is shown only this once; store it now (only its SHA-256 is kept).\n")


def _platform_domain(args: argparse.Namespace, out: TextIO) -> None:
    from mailroom.services import platform_domain
    from mailroom.store.platform_domain import PlatformDomainHosted

    table = open_table(args)
    name = args.domain or (_stack_output(args.stack_name, "PlatformDomain") if args.stack_name else None)
    if name:
        os.environ["MAILROOM_PLATFORM_DOMAIN"] = name
        _forget_cached_configuration()
    try:
        registration = _aws_call("register platform domain", lambda: platform_domain.register_identity(table))
    except PlatformDomainHosted:
        raise CliError(
            f"{platform_domain.name()} is hosted by an organization; choose another platform domain"
        ) from None
    claim = registration.claim
    records = [r.as_dict() for r in platform_domain.required_records(claim)]
    if args.json:
        view = {"domain": claim["domain"], "registered_now": registration.registered_now, "records": records}
        out.write(json.dumps(view, indent=2) + "\n")
        return
    state = "registered with SES now" if registration.registered_now else "registered with SES"
    if not records:
        state = "being registered by another run; run this again in a minute"
    out.write(f"platform domain  {claim['domain']} ({state})\n")
    if records:
        out.write("publish these DNS records:\n")
        rows = [[r["type"], r["name"], str(r["priority"] or ""), r["value"]] for r in records]
        out.write(_format_table(["TYPE", "NAME", "PRIORITY", "VALUE"], rows))


def _org_view(item: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        "name": item["name"],
        "plan": item.get("plan"),
        "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"),
        "limits": item.get("limits", {}),
        "counters": {counter: int(item.get(counter, 0)) for counter, _ in COUNTER_COLUMNS},
    }


def iter_organizations(table: Table, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[Item]:
    """Every organization, one GSI1 Query per page, following the cursor until there is no next page."""
    from mailroom.store import organizations

    cursor: str | None = None
    while True:
        page = _aws_call(
            "list organizations", partial(organizations.list_page, table, per_page=page_size, cursor=cursor)
        )
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _list_orgs(args: argparse.Namespace, out: TextIO) -> None:
    table = open_table(args)
    views = [_org_view(item) for item in iter_organizations(table, page_size=args.page_size)]
    if args.json:
        out.write(json.dumps(views, indent=2))
        out.write("\n")
        return
    if not views:
        sys.stderr.write(f"no organizations in table {table.name}\n")
        return
    headers = ["ID", "NAME", "CREATED_AT", *(heading for _, heading in COUNTER_COLUMNS), "PLAN"]
    rows = [
        [
            v["id"],
            v["name"],
            v["created_at"] or "",
            *(str(v["counters"][c]) for c, _ in COUNTER_COLUMNS),
            v["plan"] or "-",
        ]
        for v in views
    ]
    out.write(_format_table(headers, rows))


def _format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines) + "\n"


# --- entry point ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (argparse's own exits included, so tests can call it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already explained on stderr
        return exc.code if isinstance(exc.code, int) else 2
    run: Callable[[argparse.Namespace, TextIO], None] = args.run
    # The environment a command loads (env file, --region, the resolved table) is that command's
    # only: an in-process caller (tests, a bootstrap script) gets its own environment back, and
    # settings/clients cached from the command's environment are dropped with it.
    saved_environ = dict(os.environ)
    try:
        run(args, sys.stdout)
    except CliError as exc:
        sys.stderr.write(f"mailroom: error: {exc}\n")
        return exc.status
    except KeyboardInterrupt:
        sys.stderr.write("mailroom: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`mailroom admin list-orgs | head`): not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's own flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        _forget_cached_configuration()
    return 0
