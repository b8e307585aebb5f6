"""The local stack's settings, read once from the environment (documented in ``local/__init__.py``)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from local.faults import FaultPlan

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_NAME = "mailroom-local"


class ConfigError(ValueError):
    """An environment variable has a value the local stack cannot use."""


@dataclass(frozen=True, slots=True)
class LocalConfig:
    api_port: int = 8000
    smtp_port: int = 2525
    moto_port: int = 4566
    ws_port: int = 8001  # the WebSocket API and its management API (local/websocket.py)
    state_dir: Path = REPO_ROOT / ".mailroom"
    template: Path = REPO_ROOT / "template.yaml"
    auth_cache_ttl: int | None = None  # None: the template's value
    parameter_overrides: Mapping[str, str] | None = None
    snapshot_interval: float = 30.0
    concurrency: int = 64
    region: str = "us-east-1"
    log_level: str = "INFO"
    faults: FaultPlan | None = None  # MAILROOM_FAULTS (local/faults.py)
    # Real seconds a minute of a run-time rate(...) schedule lasts (local/one_off_schedules.py).
    rate_minute_seconds: float = 60.0

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ws_url(self) -> str:
        """The WebSocket API's base (clients add ``/<stage>``, as on API Gateway)."""
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def outbox(self) -> Path:
        return self.state_dir / "outbox"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalConfig:
        from local.faults import FaultPlan

        env = os.environ if env is None else env
        ttl = env.get("MAILROOM_AUTH_CACHE_TTL")
        return cls(
            api_port=_port(env, "MAILROOM_API_PORT", 8000),
            smtp_port=_port(env, "MAILROOM_SMTP_PORT", 2525),
            moto_port=_port(env, "MAILROOM_MOTO_PORT", 4566),
            ws_port=_port(env, "MAILROOM_WS_PORT", 8001),
            state_dir=Path(env.get("MAILROOM_STATE_DIR") or REPO_ROOT / ".mailroom").resolve(),
            template=Path(env.get("MAILROOM_TEMPLATE") or REPO_ROOT / "template.yaml").resolve(),
            auth_cache_ttl=None if ttl in (None, "") else _int("MAILROOM_AUTH_CACHE_TTL", ttl, 0),
            parameter_overrides=parse_overrides(env.get("MAILROOM_PARAMETER_OVERRIDES", "")),
            snapshot_interval=float(
                _int("MAILROOM_SNAPSHOT_INTERVAL", env.get("MAILROOM_SNAPSHOT_INTERVAL") or "30", 0)
            ),
            concurrency=_int("MAILROOM_LOCAL_CONCURRENCY", env.get("MAILROOM_LOCAL_CONCURRENCY") or "64", 4),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            log_level=(env.get("MAILROOM_LOCAL_LOG_LEVEL") or "INFO").upper(),
            faults=FaultPlan.parse(env.get("MAILROOM_FAULTS", "")),
            rate_minute_seconds=float(
                _int(
                    "MAILROOM_LOCAL_RATE_MINUTE_SECONDS",
                    env.get("MAILROOM_LOCAL_RATE_MINUTE_SECONDS") or "60",
                    1,
                )
            ),
        )


def parse_overrides(text: str) -> dict[str, str]:
    """``"A=1 B=two"`` or ``"A=1,B=two"`` → ``{"A": "1", "B": "two"}``."""
    overrides = {}
    for pair in filter(None, re.split(r"[\s,]+", text.strip())):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"MAILROOM_PARAMETER_OVERRIDES: expected Key=Value, got {pair!r}")
        overrides[key] = value
    return overrides


def _int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    port = _int(name, raw, 1)
    if port > 65535:
        raise ConfigError(f"{name} must be a TCP port, got {port}")
    return port
