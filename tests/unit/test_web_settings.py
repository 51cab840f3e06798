"""The HTTP settings (token, limits), the error-to-status table and loopback detection."""

from __future__ import annotations

import pytest

from volfefe.cli.serve import is_loopback
from volfefe.config import Settings
from volfefe.errors import (
    ConfigError,
    ContentNotFound,
    DatabaseUnavailable,
    NoTextError,
    Overloaded,
    PoolBroken,
    WorkerCrashed,
)
from volfefe.web.errors import (
    InvalidRequest,
    JobNotFound,
    JobStateConflict,
    RequestTooLarge,
    TooManyAttempts,
    Unauthorized,
    error_response,
    status_for,
)
from volfefe.web.login import LoginAttempts


def test_http_settings_come_from_the_environment_and_the_token_stays_out_of_repr() -> None:
    token = "s3cret-token-with-20ch"
    settings = Settings.from_env(
        {
            "VOLFEFE_API_TOKEN": token,
            "VOLFEFE_API_MAX_BODY": "2048",
            "VOLFEFE_API_MAX_ITEMS": "4",
            "VOLFEFE_API_MAX_TEXT_CHARS": "100",
        }
    )
    assert (settings.api_token, settings.api_max_body) == (token, 2048)
    assert (settings.api_max_items, settings.api_max_text_chars) == (4, 100)
    assert token not in repr(settings)
    assert Settings().api_token is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"api_token": "short"}, "api_token must be at least 16 characters, got 5"),
        ({"api_max_body": 0}, "api_max_body must be >= 1, got 0"),
        ({"api_max_items": 0}, "api_max_items must be >= 1, got 0"),
        ({"api_max_text_chars": -1}, "api_max_text_chars must be >= 1, got -1"),
        ({"http_header_timeout": 0}, "http_header_timeout must be > 0, got 0"),
        ({"http_keep_alive": 0}, "http_keep_alive must be >= 1, got 0"),
        ({"http_max_header_bytes": 100}, "http_max_header_bytes must be >= 1024, got 100"),
        ({"http_max_connections": 0}, "http_max_connections must be >= 1, got 0"),
        ({"login_max_failures": 0}, "login_max_failures must be >= 1, got 0"),
        ({"login_window": 0}, "login_window must be > 0, got 0"),
        ({"login_session_max_age": -1}, "login_session_max_age must be > 0, got -1"),
    ],
)
def test_bad_http_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}$"):
        Settings(**changes)  # type: ignore[arg-type]


def test_slow_client_bounds_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "VOLFEFE_HTTP_HEADER_TIMEOUT": "2.5",
            "VOLFEFE_HTTP_KEEP_ALIVE": "3",
            "VOLFEFE_HTTP_MAX_HEADER_BYTES": "8192",
            "VOLFEFE_HTTP_MAX_CONNECTIONS": "50",
        }
    )
    assert (settings.http_header_timeout, settings.http_keep_alive) == (2.5, 3)
    assert (settings.http_max_header_bytes, settings.http_max_connections) == (8192, 50)


def test_bad_token_value_in_the_environment_names_the_rule() -> None:
    with pytest.raises(ConfigError, match="api_token must be at least 16"):
        Settings.from_env({"VOLFEFE_API_TOKEN": "abc"})


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest("x"), 422),
        (NoTextError(), 422),
        (Unauthorized("x"), 401),
        (TooManyAttempts("x", retry_after=9), 429),
        (RequestTooLarge("x"), 413),
        (ContentNotFound(1), 404),
        (JobNotFound("x"), 404),
        (JobStateConflict("x"), 409),
        (Overloaded("x"), 503),
        (PoolBroken("x"), 503),
        (DatabaseUnavailable("x"), 503),
        (WorkerCrashed(pid=1, returncode=-9), 503),
        (RuntimeError("bug"), 500),
    ],
)
def test_each_error_has_its_status(error: BaseException, status: int) -> None:
    assert status_for(error) == status


def test_too_many_attempts_says_when_to_come_back() -> None:
    response = error_response(TooManyAttempts("wait", retry_after=42))
    assert (response.status_code, response.headers["retry-after"]) == (429, "42")


def test_login_failures_are_counted_per_client_over_a_sliding_window() -> None:
    now = [1000.0]
    attempts = LoginAttempts(max_failures=2, window=60, clock=lambda: now[0])
    attempts.failed("a")
    now[0] += 30
    attempts.failed("a")
    assert attempts.retry_after("a") == 30  # the first failure leaves the window in 30 s
    assert attempts.retry_after("b") is None
    now[0] += 30
    assert attempts.retry_after("a") is None  # one failure left in the window
    attempts.failed("a")
    assert attempts.retry_after("a") == 30
    attempts.succeeded("a")
    assert attempts.retry_after("a") is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
