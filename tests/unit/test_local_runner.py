"""The local stack's configuration and the environment its functions share."""

import os
import socket
from pathlib import Path

import pytest

from local.config import ConfigError, LocalConfig, parse_overrides
from local.runner import _check_ports, apply_environment, function_environment
from local.stack import Stack

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "template.yaml"


def test_config_defaults_and_overrides(tmp_path):
    default = LocalConfig.from_env({})
    assert (default.api_port, default.smtp_port, default.moto_port) == (8000, 2525, 4566)
    assert default.state_dir.name == ".mailroom"
    assert default.auth_cache_ttl is None
    config = LocalConfig.from_env(
        {
            "MAILROOM_API_PORT": "9000",
            "MAILROOM_STATE_DIR": str(tmp_path),
            "MAILROOM_AUTH_CACHE_TTL": "0",
            "MAILROOM_PARAMETER_OVERRIDES": "LogLevel=DEBUG, RateLimitPerMinute=5",
            "AWS_REGION": "eu-west-1",
        }
    )
    assert config.api_url == "http://127.0.0.1:9000"
    assert config.state_dir == tmp_path
    assert config.outbox == tmp_path / "outbox"
    assert config.auth_cache_ttl == 0
    assert config.parameter_overrides == {"LogLevel": "DEBUG", "RateLimitPerMinute": "5"}
    assert config.region == "eu-west-1"


@pytest.mark.parametrize(
    "env",
    [
        {"MAILROOM_API_PORT": "http"},
        {"MAILROOM_SMTP_PORT": "70000"},
        {"MAILROOM_AUTH_CACHE_TTL": "-1"},
        {"MAILROOM_PARAMETER_OVERRIDES": "NoEquals"},
    ],
)
def test_bad_config_is_refused(env):
    with pytest.raises(ConfigError):
        LocalConfig.from_env(env)


def test_parse_overrides():
    assert parse_overrides(" A=1  B=x=y,C= ") == {"A": "1", "B": "x=y", "C": ""}


def test_function_environment(tmp_path):
    stack = Stack.load(FIXTURE)
    config = LocalConfig(state_dir=tmp_path)
    inherited = {
        "FIXTURE_GREETING": "from-shell",
        "AWS_ENDPOINT_URL": "https://real.example",
        "UNRELATED": "x",
    }
    env = function_environment(stack, config, "http://127.0.0.1:4566", 4566, inherited)
    assert env["FIXTURE_GREETING"] == "from-shell"  # declared by the template: the shell's value wins
    assert "UNRELATED" not in env
    assert env["FIXTURE_OWN"] == "echo-only"  # one function's own variable: shared by all
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"  # the wiring always wins
    assert env["MOTO_PORT"] == "4566"
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert env["POWERTOOLS_TRACE_DISABLED"] == env["POWERTOOLS_METRICS_DISABLED"] == "true"
    assert env["MAILROOM_WEBHOOK_ALLOW_PRIVATE"] == "1"
    assert env["MAILROOM_LOCAL_OUTBOX"] == str(tmp_path / "outbox")


def test_apply_environment_drops_what_could_reach_real_aws(monkeypatch):
    # setenv (not delenv, which records nothing for an unset variable) so the endpoint set below
    # is undone after the test: a later test on this worker must not inherit an unreachable endpoint.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://before.invalid")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.amazonaws.com")
    apply_environment({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    assert "AWS_PROFILE" not in os.environ
    assert "AWS_SESSION_TOKEN" not in os.environ
    assert "AWS_ENDPOINT_URL_S3" not in os.environ
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_taken_port_is_named_before_anything_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _check_ports(LocalConfig(api_port=free_port(), smtp_port=free_port(), moto_port=free_port()))
        with pytest.raises(RuntimeError, match="MAILROOM_SMTP_PORT"):
            _check_ports(LocalConfig(api_port=free_port(), smtp_port=port, moto_port=free_port()))


def test_the_auth_cache_setting_reaches_the_functions(tmp_path):
    stack = Stack.load(FIXTURE)
    assert "MAILROOM_AUTH_CACHE_TTL" not in function_environment(
        stack, LocalConfig(state_dir=tmp_path), "http://127.0.0.1:4566", 4566, {}
    )
    config = LocalConfig(state_dir=tmp_path, auth_cache_ttl=0)
    env = function_environment(stack, config, "http://127.0.0.1:4566", 4566, {})
    assert env["MAILROOM_AUTH_CACHE_TTL"] == "0"  # what mailroom.auth's token cache reads
