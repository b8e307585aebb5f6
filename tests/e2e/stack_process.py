"""The local stack (``python -m local``) as a subprocess on free ports, for end-to-end tests.

``start_stack(state_dir, **env)`` starts one with extra environment (e.g. ``MAILROOM_AUTH_CACHE_TTL="0"``)
and stops it with SIGINT on exit, requiring exit code 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import ports

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "Mailroom local stack ready"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    return ports.free_port()


def process_group_members(pgid: int) -> list[int]:
    """Live processes in a process group (the stack runs in its own session)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp. Zombies are gone for good, just not yet reaped.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


_PORT_TAKEN = re.compile(r"address already in use|is not available")


class LocalStackProcess:
    def __init__(
        self, state_dir: Path, extra_env: dict[str, str] | None = None, *, stop_timeout: float = STOP_TIMEOUT
    ) -> None:
        self.state_dir = state_dir
        # The final snapshot on exit grows with the state: a stack holding hundreds of messages needs longer.
        self.stop_timeout = stop_timeout
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAILROOM_"))},
            "PYTHONUNBUFFERED": "1",
            "MAILROOM_STATE_DIR": str(state_dir),
            # State is saved once, on exit (what the restart tests read): a periodic save scans every
            # table through the emulator, a third of a busy stack's CPU once fuzzing has filled it.
            "MAILROOM_SNAPSHOT_INTERVAL": "0",
            **(extra_env or {}),
        }
        self._draw_ports()
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()
        self.admin_token = ""

    def _draw_ports(self) -> None:
        self.api_port, self.smtp_port, self.moto_port = free_port(), free_port(), free_port()
        self.ws_port = free_port()
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}/events"  # the WebSocket API's stage
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.env.update(
            {
                "MAILROOM_API_PORT": str(self.api_port),
                "MAILROOM_SMTP_PORT": str(self.smtp_port),
                "MAILROOM_MOTO_PORT": str(self.moto_port),
                "MAILROOM_WS_PORT": str(self.ws_port),
            }
        )

    def start(self) -> None:
        """Start the stack; a first start that lost a port to another process between the draw and
        its bind (another worker's server, drawn at the same moment) draws new ports once. A restart
        keeps its ports: a client holds the URLs."""
        redraws = 1 if self.process is None else 0
        while not self._start(fail=redraws == 0):
            if not _PORT_TAKEN.search(self.logs()):
                assert self.process is not None
                pytest.fail(f"the local stack did not start (exit {self.process.returncode}):\n{self.logs()}")
            redraws -= 1
            self._draw_ports()
            # What the failed start wrote (its bootstrap's token files) must not pass for state.
            shutil.rmtree(self.state_dir)
            self.state_dir.mkdir()

    def _start(self, *, fail: bool) -> bool:
        self.output = []
        self._ready.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local"],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: what it leaves behind is findable
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                if not fail:
                    return False
                pytest.fail(f"the local stack did not start (exit {self.process.returncode}):\n{self.logs()}")
        self.admin_token = (self.state_dir / "admin-token").read_text().strip()
        return True

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if READY_LINE in line:
                self._ready.set()

    def logs(self) -> str:
        return "".join(self.output[-200:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Send ``sig``; the exit code (killing it, and failing, if it does not exit in time)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(
                    f"the local stack did not exit within {self.stop_timeout}s of {sig.name}:\n{self.logs()}"
                )
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> None:
        code = self.stop()
        assert code == 0, self.logs()
        self.start()


@contextmanager
def start_stack(
    state_dir: Path, *, stop_timeout: float = STOP_TIMEOUT, **extra_env: str
) -> Iterator[LocalStackProcess]:
    """A local stack with extra environment; stopped with SIGINT (must exit 0) unless already stopped."""
    stack = LocalStackProcess(state_dir, extra_env, stop_timeout=stop_timeout)
    stack.start()
    try:
        yield stack
    finally:
        code = stack.stop()
        assert code == 0, f"the local stack exited with {code}:\n{stack.logs()}"


def create_org(stack: LocalStackProcess, name: str, *, limits: str | None = None) -> dict[str, Any]:
    """An organization the way an operator makes one (``mailroom admin create-org``): its id and
    admin token; ``limits`` like ``"migration_concurrency=2"``."""
    command = [sys.executable, "-m", "mailroom.cli", "admin", "create-org", "--name", name, "--json"]
    command += ["--limits", limits] if limits else []
    command += ["--env-file", str(stack.state_dir / "local.env")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]
