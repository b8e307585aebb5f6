"""SnapStart's runtime hooks (entry/snapstart.py), with restores simulated by forking.

A fork is what a restore is to the process: a copy of its memory at one moment, running on from
there. The parent plays the published version's init: it imports a real handler (which registers
the hooks) and runs the before-snapshot hooks as Lambda's runtime does (reverse order of
registration); each forked child is one execution environment resumed from that "snapshot", which
runs the after-restore hooks (in order of registration) and then serves a real request.

One difference is undone: ``os.fork`` reseeds ``random`` in the child (``random`` registers that
with ``os.register_at_fork``), a microVM restore does not. The child puts back the generator state
the parent had, so that it starts from the snapshot's state as a restored environment does.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from typing import Any

import pytest
from snapshot_restore_py import get_after_restore, get_before_snapshot

from mailroom import auth
from mailroom.entry import snapstart
from mailroom.services.organizations import NewOrganization
from mailroom.store import aws
from mailroom.store.errors import Throttled
from mailroom.store.retry import retried
from tests.support.lambda_api import function_module
from tests.support.mailboxes import ok, post
from tests.support.openapi_conformance import problems


def _take_snapshot() -> None:
    function_module("tokens")  # init: the handler module, as Lambda imports it
    # The test's own OpenAPI checker (every response goes through it) is built once here rather than
    # in every child: it is the harness, not the function.
    problems("GET", "/api/v1/tokens", 200, {}, b"{}")
    for func, args, kwargs in reversed(get_before_snapshot()):
        func(*args, **kwargs)


def _restore(work: Callable[[], Any], *, run_hooks: bool = True) -> Any:
    """``work()`` in a forked child (after the after-restore hooks, unless ``run_hooks`` is False);
    its JSON result, or the child's error."""
    snapshot_random_state = random.getstate()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the restored environment
        try:
            os.close(read_fd)
            random.setstate(snapshot_random_state)  # a restore, unlike a fork, does not reseed
            if run_hooks:
                for func, args, kwargs in get_after_restore():
                    func(*args, **kwargs)
            payload = json.dumps({"result": work()})
        except BaseException as exc:  # reported to the parent, which fails the test with it
            payload = json.dumps({"error": repr(exc)})
        with os.fdopen(write_fd, "w") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        answer = json.loads(pipe.read() or '{"error": "the child wrote nothing"}')
    os.waitpid(pid, 0)
    assert "error" not in answer, answer["error"]
    return answer["result"]


def _jitter() -> list[float]:
    """The pauses the store's retry draws (process-wide ``random``) for a call throttled twice."""
    pauses: list[float] = []
    attempts = iter([Throttled("throttled"), Throttled("throttled")])

    def call() -> str:
        failure = next(attempts, None)
        if failure is not None:
            raise failure
        return "done"

    retried(call, sleep=pauses.append)
    return pauses


def test_the_hooks_are_registered_by_importing_a_handler(moto_env: None) -> None:
    function_module("tokens")
    assert snapstart.before_snapshot in [func for func, _, _ in get_before_snapshot()]
    assert snapstart.after_restore in [func for func, _, _ in get_after_restore()]


def test_two_restored_environments_generate_different_ids_and_jitter(org: NewOrganization) -> None:
    _take_snapshot()

    def serve() -> dict[str, Any]:
        created = ok(
            post("tokens", org.admin_token, "/api/v1/tokens", {"name": "ci", "scopes": ["account:read"]}),
            201,
        )
        return {"id": created["id"], "jitter": _jitter()}

    first, second = _restore(serve), _restore(serve)
    assert first["id"].startswith("tok_") and second["id"].startswith("tok_")
    assert first["id"] != second["id"]
    assert first["jitter"] != second["jitter"]


def test_without_the_restore_hook_restored_environments_share_the_random_state(moto_env: None) -> None:
    # What the after-restore hook is for: forks of one snapshot draw the same "random" jitter.
    _take_snapshot()
    random.seed(7)  # whatever state the snapshot holds
    assert _restore(_jitter, run_hooks=False) == _restore(_jitter, run_hooks=False)
    assert _restore(_jitter) != _restore(_jitter)


def test_after_restore_drops_per_environment_state(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot_client = aws.client("dynamodb")
    forgotten: list[bool] = []
    monkeypatch.setattr(auth, "forget_all", lambda: forgotten.append(True))
    snapstart.after_restore()
    assert aws.client("dynamodb") is not snapshot_client
    assert forgotten == [True]
