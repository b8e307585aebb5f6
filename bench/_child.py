"""One cold start in a fresh interpreter: the process ``bench/cold_start.py`` spawns per measurement.

Run as a script (``python -I bench/_child.py``), never imported: anything this file imported before
the clock starts would be pre-paid for the code under test. It uses only what Lambda's own Python
bootstrap has loaded before it imports a handler (``json``, ``os``, ``sys``, ``time``, importlib).

Input (stdin, JSON): ``{"kind": "function" | "baseline", ...}``; see ``cold_start.ChildSpec``.
Output (stdout, JSON, one line): ``{"wall": {"import_ms", "invoke_ms"}, "cpu": {...}, "ok", "status",
"detail"}``: each phase by the wall clock and by this process's CPU time (``time.process_time``),
which leaves out time spent waiting for the CPU while other processes run on the machine.
Everything the code under test writes to stdout (Powertools' JSON logs, EMF metrics) is sent to
stderr instead, so the result line stays parseable. With ``-X importtime`` a line
``bench-phase: invoke`` on stderr separates the imports of init from those of the first invoke.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import uuid
from typing import Any


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_s: float = 29.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"
        self._deadline = time.time() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _check(kind: str, response: Any) -> tuple[bool, str, str]:
    """(ok, status, detail): a measurement only counts if the invoke really served the request (a
    401 would mean the token was refused: its lookup would not have been measured)."""
    if kind == "worker":
        ok = isinstance(response, dict)
        return ok, "served" if ok else "no result", "" if ok else repr(response)[:500]
    status = response.get("statusCode") if isinstance(response, dict) else None
    ok = isinstance(status, int) and status < 500 and status != 401
    return ok, str(status), "" if ok else json.dumps(response, default=str)[:500]


class Clocks:
    """Wall and CPU time of consecutive phases."""

    def __init__(self) -> None:
        self.marks = [(time.perf_counter(), time.process_time())]

    def mark(self) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def phases(self) -> dict[str, dict[str, float]]:
        (w0, c0), (w1, c1), (w2, c2) = self.marks
        return {
            "wall": {"import_ms": (w1 - w0) * 1000, "invoke_ms": (w2 - w1) * 1000},
            "cpu": {"import_ms": (c1 - c0) * 1000, "invoke_ms": (c2 - c1) * 1000},
        }


def _phase_boundary() -> None:
    sys.stderr.write("bench-phase: invoke\n")  # splits -X importtime output into init / first invoke
    sys.stderr.flush()


def run_function(spec: dict[str, Any]) -> dict[str, Any]:
    clocks = Clocks()
    module = importlib.import_module(spec["module"])
    handler = getattr(module, spec["handler"])
    clocks.mark()
    _phase_boundary()
    if spec["event"] is None:  # invoked with a state only its caller has (Step Functions): import only
        clocks.mark()
        return {**clocks.phases(), "ok": True, "status": "imported", "detail": "", "fastapi": _fastapi()}
    context = LambdaContext(spec["name"])
    event = dict(spec["event"])
    if event.pop("expect_error", False):  # a probe: the handler is meant to refuse it
        try:
            handler(event, context)
        except Exception as exc:
            clocks.mark()
            return {
                **clocks.phases(),
                "ok": True,
                "status": f"refused ({type(exc).__name__})",
                "detail": "",
                "fastapi": _fastapi(),
            }
        clocks.mark()
        return {**clocks.phases(), "ok": False, "status": "accepted", "detail": "a probe was served"}
    expected = event.pop("expect_status", None)  # a probe answered by the function itself
    response = handler(event, context)
    clocks.mark()
    ok, status, detail = _check(spec["target_kind"], response)
    if expected is not None:
        ok = isinstance(response, dict) and response.get("statusCode") == expected
        detail = "" if ok else json.dumps(response, default=str)[:500]
    return {**clocks.phases(), "ok": ok, "status": status, "detail": detail, "fastapi": _fastapi()}


def run_restore(spec: dict[str, Any]) -> dict[str, Any]:
    """SnapStart, simulated: this process is the published version's init (import the handler, run
    the before-snapshot hooks as Lambda does: in reverse order of registration); a forked child is
    an environment resumed from that memory (the closest local analogue of restoring a snapshot),
    which runs the after-restore hooks in order and serves the first event. ``import_ms`` is the
    init (paid once, at publish), ``invoke_ms`` what the restored environment pays."""
    clocks = Clocks()
    module = importlib.import_module(spec["module"])
    handler = getattr(module, spec["handler"])
    try:
        import snapshot_restore_py as hooks
    except ImportError:  # reported: a restore without the runtime's hook library is not measured
        return {"ok": False, "status": "no hooks", "detail": "snapshot_restore_py is not on sys.path"}
    for func, args, kwargs in reversed(hooks.get_before_snapshot()):
        func(*args, **kwargs)
    init_mark = (time.perf_counter(), time.process_time())
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        restored = Clocks()  # the environment's clocks start at the restore
        for func, args, kwargs in hooks.get_after_restore():
            func(*args, **kwargs)
        restored.mark()
        context = LambdaContext(spec["name"])
        event = dict(spec["event"])
        expected = event.pop("expect_status", None)
        response = handler(event, context)
        restored.mark()
        ok, status, detail = _check(spec["target_kind"], response)
        if expected is not None:
            ok = isinstance(response, dict) and response.get("statusCode") == expected
        phases = restored.phases()
        with os.fdopen(write_fd, "w") as out:
            out.write(json.dumps({"phases": phases, "ok": ok, "status": status, "detail": detail}))
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        child = json.loads(pipe.read() or '{"ok": false, "status": "died", "detail": "", "phases": {}}')
    os.waitpid(pid, 0)
    (w0, c0) = clocks.marks[0]
    init = {"wall": (init_mark[0] - w0) * 1000, "cpu": (init_mark[1] - c0) * 1000}
    if not child.get("ok"):
        return {"ok": False, "status": child.get("status"), "detail": child.get("detail")}
    restored_ms = {
        clock: child["phases"][clock]["import_ms"] + child["phases"][clock]["invoke_ms"]
        for clock in ("wall", "cpu")
    }
    return {
        "wall": {"import_ms": init["wall"], "invoke_ms": restored_ms["wall"]},
        "cpu": {"import_ms": init["cpu"], "invoke_ms": restored_ms["cpu"]},
        "ok": True,
        "status": child["status"],
        "detail": "",
        "fastapi": _fastapi(),
    }


def _fastapi() -> bool:
    return "fastapi" in sys.modules


def run_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """What any FastAPI-on-Lambda function with DynamoDB pays: the libraries, and one client."""
    clocks = Clocks()
    import boto3
    import fastapi
    import mangum

    clocks.mark()
    _phase_boundary()
    boto3.session.Session().client("dynamodb", region_name=spec["region"])
    clocks.mark()
    del fastapi, mangum
    return {**clocks.phases(), "ok": True, "status": "client", "detail": "", "fastapi": True}


def main() -> None:
    spec = json.loads(sys.stdin.read())
    sys.path[:0] = spec["sys_path"]  # what Lambda puts first: the function's code, then the layer
    results = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # from here on, fd 1 (and so sys.stdout) is stderr
    runners = {"baseline": run_baseline, "function": run_function, "restore": run_restore}
    outcome = runners[spec["kind"]](spec)
    results.write(json.dumps(outcome) + "\n")
    results.flush()


if __name__ == "__main__":
    main()
