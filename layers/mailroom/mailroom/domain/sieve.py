"""Sieve (RFC 5228) as a view of a mailbox's rules and auto-reply: ``render`` writes them as a
script, ``translate`` reads a script (parsed by ``sievelib``) back into them. Pure.

The subset is what the rules engine can run: ``if`` with ``true``, ``false``, one test, or one
``allof``/``anyof`` of tests; ``header``, ``address``, ``envelope``, ``body``, ``size``, ``exists``
and ``not``; ``:is``, ``:contains``, ``:matches``, ``:regex`` (case-insensitive, as the default
comparator); actions ``fileinto``, ``redirect``, ``addflag``/``setflag``/``removeflag``, ``discard``,
``reject``/``ereject``, ``keep`` and ``stop``; one ``vacation``, unconditional or within a
``currentdate`` window. Anything else is refused by name (``SieveError``), never half-applied.

Conventions (Roundcube's, so its scripts and ours read each other): each rule is preceded by
``# rule:[name]``; a disabled rule is ``if false`` (Roundcube), or, as written here to keep its
tests, ``if allof (false, <tests>)``. The flag fields have no standard test, so they are written as
tests of two names Mailroom reserves: ``X-Mailroom-Spam`` and ``X-Mailroom-Attachment`` (``yes`` or
``no``); ``exists "List-Id"`` is the list field. ``move`` is ``fileinto``, ``forward`` is
``redirect :copy`` (Mailroom keeps the message: a plain ``redirect`` reads the same), labels are
IMAP keywords (``addflag``), read and flagged are ``\\Seen`` and ``\\Flagged``. The vacation is
written first: in Mailroom it answers whatever later rules do, including ``stop``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_string
from email.policy import default as default_policy
from typing import Any

from sievelib.commands import Command
from sievelib.parser import Parser

from mailroom import clock
from mailroom.domain.auto_reply import AutoReply
from mailroom.domain.rules import Action, Condition, Rule

MAX_SCRIPT_BYTES = 64 * 1024
CAPABILITIES = frozenset(
    {
        "fileinto",
        "imap4flags",
        "imapflags",
        "vacation",
        "copy",
        "body",
        "envelope",
        "regex",
        "reject",
        "ereject",
        "date",
        "relational",
        "comparator-i;ascii-casemap",
        "comparator-i;ascii-numeric",
    }
)
SPAM_HEADER, ATTACHMENT_HEADER = "X-Mailroom-Spam", "X-Mailroom-Attachment"
ADDRESS_HEADERS = {"from": "from", "to": "to", "cc": "cc"}
_RULE_NAME_RE = re.compile(r"^#\s*rule:\[(.*)\]\s*$")
_SIZE_RE = re.compile(r"^(\d+)([KMG]?)$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


class SieveError(ValueError):
    """``code``: sieve_syntax (with ``line`` and ``column``) or sieve_unsupported (naming what)."""

    def __init__(
        self, code: str, message: str, *, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column


def unsupported(what: str) -> SieveError:
    return SieveError("sieve_unsupported", f"{what} is not supported by Mailroom's rules")


@dataclass(slots=True)
class Translation:
    rules: list[Rule] = field(default_factory=list)
    auto_reply: AutoReply | None = None  # None: the script has no vacation


# --- rendering ----------------------------------------------------------------------------------------


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _glob_escape(value: str) -> str:
    return "".join("\\" + c if c in "*?\\" else c for c in value)


def _match(op: str, value: str) -> tuple[str, str]:
    """The Sieve match type and key of a (non-negated) text operator."""
    if op == "contains":
        return ":contains", value
    if op == "is":
        return ":is", value
    if op == "starts_with":
        return ":matches", _glob_escape(value) + "*"
    if op == "ends_with":
        return ":matches", "*" + _glob_escape(value)
    if op == "matches":
        return ":matches", value
    return ":regex", value


def render_condition(condition: Condition) -> str:
    name, op, value = condition.field, condition.op, condition.value
    if name == "size":
        return f"size {':over' if op == 'greater_than' else ':under'} {int(value)}"
    if name in ("spam", "has_attachment"):
        header = SPAM_HEADER if name == "spam" else ATTACHMENT_HEADER
        return f"header :is {quote(header)} {quote('yes' if value else 'no')}"
    if name == "list":
        return 'exists "List-Id"' if value else 'not exists "List-Id"'
    negated = op.startswith("not_")
    match, key = _match(op.removeprefix("not_"), str(value))
    if name in ("from", "to", "cc"):
        test = f"address :all {match} {quote(name)} {quote(key)}"
    elif name == "recipient":
        test = f'address :all {match} ["to", "cc"] {quote(key)}'
    elif name in ("envelope_from", "envelope_to"):
        test = f"envelope :all {match} {quote(name.removeprefix('envelope_'))} {quote(key)}"
    elif name == "body":
        test = f"body :text {match} {quote(key)}"
    elif name == "subject":
        test = f'header {match} "Subject" {quote(key)}'
    else:
        test = f"header {match} {quote(condition.header or '')} {quote(key)}"
    return f"not {test}" if negated else test


def render_action(action: Action) -> str:
    kind = action.type
    if kind == "move":
        return f"fileinto {quote(action.folder or '')};"
    if kind == "forward":
        return f"redirect :copy {quote(action.to or '')};"
    if kind == "add_label":
        return f"addflag {quote(action.label or '')};"
    if kind == "remove_label":
        return f"removeflag {quote(action.label or '')};"
    if kind == "mark_read":
        return 'addflag "\\\\Seen";'
    if kind == "flag":
        return 'addflag "\\\\Flagged";'
    if kind == "discard":
        return "discard;"
    return 'reject "Refused by a mailbox rule.";'


def _test(rule: Rule) -> str:
    tests = ", ".join(render_condition(c) for c in rule.conditions)
    combined = f"{'allof' if rule.match == 'all' else 'anyof'} ({tests})" if rule.conditions else "true"
    if rule.enabled:
        return combined
    return "false" if not rule.conditions else f"allof (false, {combined})"


def _text_block(text: str) -> str:
    """A multi-line string (RFC 5228 2.4.2): ``text:``, the lines dot-stuffed, a lone dot."""
    lines = text.replace("\r\n", "\n").split("\n")
    return (
        "text:\r\n"
        + "".join(("." + line if line.startswith(".") else line) + "\r\n" for line in lines)
        + ".\r\n"
    )


def _vacation_body(settings: AutoReply) -> tuple[bool, str]:
    """(``:mime``?, the reason): plain text as it is; HTML as a MIME entity (RFC 5230 5.8)."""
    if settings.html is None:
        return False, settings.text or ""
    if settings.text is None:
        return True, f"Content-Type: text/html; charset=utf-8\r\n\r\n{settings.html}"
    boundary = "mailroom-vacation-alternative"
    return True, (
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{settings.text}\r\n"
        f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{settings.html}\r\n"
        f"--{boundary}--\r\n"
    )


def render_vacation(settings: AutoReply) -> str:
    window = []
    if settings.start:
        window.append(f'currentdate :value "ge" "iso8601" {quote(settings.start)}')
    if settings.end:
        window.append(f'currentdate :value "lt" "iso8601" {quote(settings.end)}')
    test = f"allof ({', '.join(window)})" if window else "true"
    mime, body = _vacation_body(settings)
    reason = _text_block(body) if "\n" in body else quote(body) + ";\r\n"
    if reason.startswith("text:"):
        reason += ";\r\n"
    subject = f" :subject {quote(settings.subject)}" if settings.subject else ""
    return (
        f"# rule:[Auto-reply]\r\nif {test}\r\n{{\r\n"
        f"\tvacation :days {settings.interval_days}{subject}{' :mime' if mime else ''} {reason}}}\r\n"
    )


def render(rules: Sequence[Rule], auto_reply: AutoReply | None) -> str:
    vacation = auto_reply is not None and auto_reply.enabled
    needed: set[str] = set()
    for rule in rules:
        for condition in rule.conditions:
            if condition.field == "body":
                needed.add("body")
            if condition.field.startswith("envelope_"):
                needed.add("envelope")
            if condition.op.removeprefix("not_") == "regex":
                needed.add("regex")
        for action in rule.actions:
            needed.update(
                {"move": {"fileinto"}, "forward": {"copy"}, "reject": {"reject"}}.get(
                    action.type, {"imap4flags"}
                )
                if action.type != "discard"
                else set()
            )
    if vacation:
        needed.add("vacation")
        if auto_reply is not None and (auto_reply.start or auto_reply.end):
            needed.update({"date", "relational"})
    lines = [f"require [{', '.join(quote(c) for c in sorted(needed))}];\r\n"] if needed else []
    if vacation and auto_reply is not None:
        lines.append(render_vacation(auto_reply))
    for rule in rules:
        body = "".join(f"\t{render_action(a)}\r\n" for a in rule.actions)
        if rule.stop:
            body += "\tstop;\r\n"
        lines.append(f"# rule:[{rule.name}]\r\nif {_test(rule)}\r\n{{\r\n{body}}}\r\n")
    return "".join(lines)


# --- reading --------------------------------------------------------------------------------------------


def unquote(value: Any) -> str:
    """A sievelib string token as text (quoted with backslash escapes, or a ``text:`` block)."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    if text.startswith("text:"):
        lines = text.split("\n")[1:]
        if lines and lines[-1].strip() == ".":
            lines = lines[:-1]
        return "\n".join(line[1:] if line.startswith("..") else line for line in lines).replace("\r", "")
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def strings(value: Any) -> list[str]:
    return [unquote(v) for v in value] if isinstance(value, list) else [unquote(value)]


def _tag(command: Command, name: str) -> str | None:
    value = command.arguments.get(name)
    return str(value).lower() if value is not None else None


def _rule_name(command: Command, number: int) -> str:
    for comment in reversed(getattr(command, "hash_comments", []) or []):
        text = comment.decode() if isinstance(comment, bytes) else str(comment)
        found = _RULE_NAME_RE.match(text.strip())
        if found and found.group(1).strip():
            return found.group(1).strip()[:200]
    return f"Rule {number}"


def _comparator(command: Command) -> None:
    if "comparator" not in command.arguments:
        return
    comparator = command.extra_arguments.get("comparator", '""')
    if unquote(comparator).lower() not in ("i;ascii-casemap", "i;unicode-casemap"):
        raise unsupported(f"comparator {unquote(comparator)} (Mailroom compares case-insensitively)")


def _operator(command: Command, negated: bool) -> tuple[str, bool]:
    """(operator, key is a glob) for a test's match type."""
    match = _tag(command, "match-type") or ":is"
    if match not in (":is", ":contains", ":matches", ":regex"):
        raise unsupported(f"match type {match}")
    base = match[1:]
    return (f"not_{base}" if negated else base), base == "matches"


def _flag_test(header: str, keys: list[str], op: str) -> Condition | None:
    name = header.lower()
    if name not in (SPAM_HEADER.lower(), ATTACHMENT_HEADER.lower()):
        return None
    if op not in ("is", "not_is") or len(keys) != 1 or keys[0].lower() not in ("yes", "no"):
        raise unsupported(f'{header} other than :is "yes" or "no"')
    value = (keys[0].lower() == "yes") != (op == "not_is")
    return Condition("spam" if name == SPAM_HEADER.lower() else "has_attachment", "is", value)


def _conditions(test: Command, negated: bool = False) -> list[Condition]:
    """One Sieve test as conditions (several when it names several headers or keys: any of them)."""
    name = test.name
    if name == "not":
        return _conditions(test.arguments["test"], not negated)
    if name == "size":
        if negated:
            raise unsupported("not size")
        found = _SIZE_RE.match(str(test.arguments["limit"]))
        if found is None:
            raise unsupported(f"size {test.arguments['limit']}")
        limit = int(found.group(1)) * _UNITS[found.group(2).upper()]
        return [
            Condition("size", "greater_than" if _tag(test, "comparator") == ":over" else "less_than", limit)
        ]
    if name == "exists":
        headers = strings(test.arguments["header-names"])
        if [h.lower() for h in headers] != ["list-id"]:
            raise unsupported(f'exists {", ".join(headers)} (only exists "List-Id")')
        return [Condition("list", "is", not negated)]
    if name in ("true", "false", "allof", "anyof"):
        raise unsupported(f"{name} nested inside another test")
    if name not in ("header", "address", "envelope", "body"):
        raise unsupported(f"test {name}")
    _comparator(test)
    op, _glob = _operator(test, negated)
    keys = strings(test.arguments["key-list"])
    if name == "body":
        transform = _tag(test, "body-transform")
        if transform not in (None, ":text"):
            raise unsupported(f"body {transform}")
        return [Condition("body", op, key) for key in keys]
    if name == "header":
        conditions: list[Condition] = []
        for header in strings(test.arguments["header-names"]):
            flag = _flag_test(header, keys, op)
            if flag is not None:
                conditions.append(flag)
            elif header.lower() == "subject":
                conditions += [Condition("subject", op, key) for key in keys]
            else:
                conditions += [Condition("header", op, key, header) for key in keys]
        return conditions
    part = _tag(test, "address-part") or ":all"
    headers = [h.lower() for h in strings(test.arguments["header-list"])]
    if part == ":domain" and op in ("is", "not_is"):
        # address :domain :is "x" → the address ends with "@x" (the same test on a bare address).
        op, keys = (
            ("ends_with" if op == "is" else "not_matches"),
            [
                (
                    "@" + k
                    if op == "is"
                    else "*@" + k.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
                )
                for k in keys
            ],
        )
    elif part != ":all":
        raise unsupported(f"{name} {part}")
    if name == "envelope":
        fields = []
        for header in headers:
            if header not in ("from", "to"):
                raise unsupported(f'envelope "{header}"')
            fields.append(f"envelope_{header}")
    elif sorted(headers) == ["cc", "to"]:
        fields = ["recipient"]
    else:
        fields = []
        for header in headers:
            if header not in ADDRESS_HEADERS:
                raise unsupported(f'address "{header}" (from, to and cc only)')
            fields.append(ADDRESS_HEADERS[header])
    return [Condition(f, op, key) for f in fields for key in keys]


def _condition_set(test: Command) -> tuple[bool, str, list[Condition]]:
    """(enabled, match, conditions) of an ``if``'s test."""
    name = test.name
    if name == "true":
        return True, "all", []
    if name == "false":
        return False, "all", []
    if name not in ("allof", "anyof"):
        expanded = _conditions(test)
        return True, ("any" if len(expanded) > 1 else "all"), expanded
    tests = list(test.arguments["tests"])
    if name == "allof" and tests and tests[0].name == "false":
        # Disabled, tests kept: "allof (false, <test>)".
        rest = tests[1:]
        if len(rest) == 1:
            _enabled, match, conditions = _condition_set(rest[0])
        else:
            match, conditions = _combined("all", rest)
        return False, match, conditions
    match, conditions = _combined("all" if name == "allof" else "any", tests)
    return True, match, conditions


def _combined(match: str, tests: list[Command]) -> tuple[str, list[Condition]]:
    conditions: list[Condition] = []
    for sub in tests:
        expanded = _conditions(sub)
        if len(expanded) > 1 and match == "all":
            raise unsupported("a test of several headers or keys inside allof")
        conditions += expanded
    return match, conditions


def _actions(commands: Sequence[Command]) -> tuple[list[Action], bool]:
    actions: list[Action] = []
    stop = False
    for command in commands:
        name = command.name
        if stop:
            raise unsupported(f"{name} after stop")
        if name == "fileinto":
            actions.append(Action("move", folder=unquote(command.arguments["mailbox"])))
        elif name == "redirect":
            actions.append(Action("forward", to=unquote(command.arguments["address"])))
        elif name in ("addflag", "setflag", "removeflag"):
            for flag in " ".join(strings(command.arguments["list-of-flags"])).split():
                actions.append(_flag_action(flag, remove=name == "removeflag"))
        elif name == "discard":
            actions.append(Action("discard"))
        elif name in ("reject", "ereject"):
            actions.append(Action("reject"))
        elif name == "keep":
            continue
        elif name == "stop":
            stop = True
        else:
            raise unsupported(f"action {name}")
    return actions, stop


def _flag_action(flag: str, *, remove: bool) -> Action:
    system = {"\\seen": "mark_read", "\\flagged": "flag"}.get(flag.lower())
    if flag.startswith("\\"):
        if system is None or remove:
            raise unsupported(f"{'removeflag' if remove else 'addflag'} {flag}")
        return Action(system)
    return Action("remove_label" if remove else "add_label", label=flag)


def _vacation(command: Command, window: Command | None) -> AutoReply:
    extra = command.extra_arguments
    for unsupported_tag in ("seconds", "from", "handle"):
        if unsupported_tag in command.arguments:
            raise unsupported(f"vacation :{unsupported_tag}")
    days = int(str(extra.get("days", "7")))
    reason = unquote(command.arguments["reason"])
    text: str | None = reason
    html: str | None = None
    if "mime" in command.arguments:
        text, html = _mime_reason(reason)
    start = end = None
    if window is not None:
        start, end = _window(window)
    return AutoReply(
        enabled=True,
        subject=unquote(extra["subject"]) if "subject" in extra else None,
        text=text or None,
        html=html,
        start=start,
        end=end,
        interval_days=min(max(days, 1), 365),
    )


def _mime_reason(reason: str) -> tuple[str | None, str | None]:
    entity = message_from_string(reason.replace("\r\n", "\n"), policy=default_policy)
    text = html = None
    for part in entity.walk() if entity.is_multipart() else [entity]:
        kind = part.get_content_type()
        if kind == "text/plain" and text is None:
            text = str(part.get_content()).rstrip("\n")
        elif kind == "text/html" and html is None:
            html = str(part.get_content()).rstrip("\n")
    return text, html


def _window(test: Command) -> tuple[str | None, str | None]:
    """A vacation's ``currentdate`` window: ``ge``/``gt`` a start, ``le``/``lt`` an end."""
    tests = list(test.arguments["tests"]) if test.name == "allof" else [test]
    start = end = None
    for sub in tests:
        if sub.name != "currentdate":
            raise unsupported(f"vacation under the test {sub.name}")
        if _tag(sub, "match-type") != ":value":
            raise unsupported("currentdate other than :value")
        relation = unquote(sub.extra_arguments.get("match-type", '""')).lower()
        part = unquote(sub.arguments["date-part"]).lower()
        (value,) = strings(sub.arguments["key-list"])
        if part == "date":
            value += "T23:59:59.999Z" if relation in ("le", "gt") else "T00:00:00Z"
        elif part != "iso8601":
            raise unsupported(f'currentdate "{part}" (date or iso8601 only)')
        try:
            moment = clock.isoformat(clock.parse_iso(value))
        except ValueError as exc:
            raise unsupported(f"currentdate value {value}") from exc
        if relation in ("ge", "gt"):
            start = moment
        elif relation in ("le", "lt"):
            end = moment
        else:
            raise unsupported(f'currentdate :value "{relation}"')
    return start, end


def parse(script: str) -> list[Command]:
    if len(script.encode()) > MAX_SCRIPT_BYTES:
        raise SieveError("sieve_too_large", f"a script is at most {MAX_SCRIPT_BYTES} bytes")
    parser = Parser()
    if not parser.parse(script):
        line, column, _length = getattr(parser, "error_pos", (None, None, 0))
        raise SieveError("sieve_syntax", str(parser.error), line=line, column=column)
    return list(parser.result)


def translate(script: str) -> Translation:
    """The rules (ids left empty) and auto-reply a script describes (SieveError if it cannot)."""
    translation = Translation()
    number = 0
    for command in parse(script):
        name = command.name
        if name == "require":
            for capability in strings(command.arguments["capabilities"]):
                if capability.lower() not in CAPABILITIES:
                    raise unsupported(f'extension "{capability}"')
            continue
        if name in ("elsif", "else"):
            raise unsupported(name)
        if name == "vacation" or (name == "if" and [c.name for c in command.children] == ["vacation"]):
            if translation.auto_reply is not None:
                raise unsupported("more than one vacation")
            window = command.arguments["test"] if name == "if" else None
            if window is not None and window.name == "true":
                window = None
            vacation = command if name == "vacation" else command.children[0]
            translation.auto_reply = _vacation(vacation, window)
            continue
        number += 1
        if name == "if":
            enabled, match, conditions = _condition_set(command.arguments["test"])
            children = list(command.children)
        else:
            enabled, match, conditions = True, "all", []
            children = [command]
        if any(c.name == "vacation" for c in children):
            raise unsupported("vacation together with other actions")
        actions, stop = _actions(children)
        if not actions and not stop:
            continue  # "keep;" alone: nothing to do
        translation.rules.append(
            Rule(
                id="",
                name=_rule_name(command, number),
                enabled=enabled,
                match=match,
                conditions=tuple(conditions),
                actions=tuple(actions),
                stop=stop,
            )
        )
    return translation
