"""What a function imports at init (bench/cold_start.py measures what it costs).

Each case imports one function's handler module in a fresh interpreter, the way Lambda does (the
function's folder, then the layer, on ``sys.path``), and reads ``sys.modules``: a library that only
some requests need must not be loaded at init, and must be declared so that SnapStart's
before-snapshot hook loads it (it is then in the snapshot, free on every restore). That routers do
not import each other is an import contract (``routers-independent`` in pyproject.toml).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "mailroom"

# function -> libraries its routes use on some requests only (deferred to first use)
DEFERRED = {
    "send": ["jinja2"],
    "compose": ["jinja2"],
    "automation": ["jinja2"],
    "mailtrigger_mailbox": ["jinja2", "icalendar", "mailroom.services.inbound"],
    "calendar": ["recurring_ical_events"],
    "contacts": ["vobject"],
}

CHILD = """
import json, sys
import app
from mailroom import lazy_imports
loaded = sorted(name for name, module in sys.modules.items() if module is not None)
before = {"loaded": loaded, "declared": list(lazy_imports.declared())}
from mailroom.entry import snapstart
snapstart.before_snapshot()
after = sorted(name for name, module in sys.modules.items() if module is not None)
print(json.dumps({**before, "after_snapshot_hook": after}))
"""


def _init(function: str) -> dict[str, list[str]]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        # Lambda's order: the function's code, then the layer; the virtualenv for the packages.
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(LAYER)]),
        "AWS_REGION": "us-east-1",  # the before-snapshot hook primes a DynamoDB client (no request)
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    process = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    result: dict[str, list[str]] = json.loads(process.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("function", sorted(DEFERRED))
def test_libraries_of_some_requests_are_not_imported_at_init_but_are_in_the_snapshot(function: str) -> None:
    result = _init(function)
    for library in DEFERRED[function]:
        assert library not in result["loaded"], f"{function} imports {library} at init"
        assert library in result["after_snapshot_hook"], f"{function}'s snapshot would lack {library}"
    assert "pydantic.v1" not in result["loaded"]  # FastAPI's check for v1 models (mailroom/api/__init__.py)


def test_a_function_that_never_defers_a_library_does_not_preload_it() -> None:
    result = _init("tokens")
    assert "jinja2" not in result["after_snapshot_hook"]
    assert "vobject" not in result["after_snapshot_hook"]
    assert "mailroom.mail.template_sandbox" not in result["declared"]
