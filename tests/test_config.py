from __future__ import annotations

import subprocess
import sys

import pytest

from botserver.config import ConfigError, Settings


def test_list_settings_take_comma_separated_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTSERVER_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("BOTSERVER_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"cors_origins": "https://a.example"}, "BOTSERVER_SECRET_KEY"),
        ({"secret_key": "", "cors_origins": "https://a.example"}, "BOTSERVER_SECRET_KEY"),
        ({"secret_key": "x" * 40, "cors_origins": "*"}, "BOTSERVER_CORS_ORIGINS"),
        ({"secret_key": "x" * 40, "cors_origins": ""}, "BOTSERVER_CORS_ORIGINS"),
    ],
)
def test_production_refuses_unsafe_settings(values: dict, fragment: str) -> None:
    settings = Settings(_env_file=None, env="production", **values)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=fragment):
        settings.check()


def test_production_accepts_safe_settings() -> None:
    Settings(  # type: ignore[call-arg]
        _env_file=None, env="production", secret_key="x" * 40, cors_origins="https://a.example"
    ).check()


def test_serve_refuses_to_start_in_production_with_the_default_secret(tmp_path) -> None:
    env = {
        "BOTSERVER_ENV": "production",
        "BOTSERVER_CORS_ORIGINS": "https://a.example",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "botserver", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "botserver: BOTSERVER_SECRET_KEY must be set to a private random value in production."
    ]


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        (
            "BOTSERVER_RATE_LIMIT_PUBLIC",
            "lots",
            "BOTSERVER_RATE_LIMIT_PUBLIC must be one limit such as '60/hour', not 'lots'.",
        ),
        (
            "BOTSERVER_RATE_LIMIT_ADMIN",
            "1/second;5/minute",
            "BOTSERVER_RATE_LIMIT_ADMIN must be one limit such as '60/hour', "
            "not '1/second;5/minute'.",
        ),
        (
            "BOTSERVER_TRUSTED_PROXIES",
            "10.0.0.1,notanip",
            "BOTSERVER_TRUSTED_PROXIES holds 'notanip', which is not an IP address or CIDR.",
        ),
    ],
)
def test_serve_names_a_malformed_limit_or_proxy_in_one_line(
    tmp_path, setting: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "botserver", "serve"],
        env={setting: value, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"botserver: {message}"
    ]


def test_serve_names_each_unparsable_setting_in_one_line(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "botserver", "serve"],
        env={
            "BOTSERVER_PORT": "abc",
            "BOTSERVER_WS_MAX_FRAMES_PER_SECOND": "0",
            "BOTSERVER_DATABASE_URL": "postgresql://u:hunter2@db/x",
            "BOTSERVER_LOGIN_SESSION_HOURS": "hunter2",
            "PATH": "/usr/bin:/bin",
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "botserver: BOTSERVER_PORT is not valid: input should be a valid integer, "
        "unable to parse string as an integer.",
        "botserver: BOTSERVER_WS_MAX_FRAMES_PER_SECOND is not valid: "
        "input should be greater than or equal to 1.",
        "botserver: BOTSERVER_LOGIN_SESSION_HOURS is not valid: input should be a valid number, "
        "unable to parse string as a number.",
    ]
    assert "hunter2" not in result.stderr + result.stdout
