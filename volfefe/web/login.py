"""Dashboard logins: a signed session cookie instead of the token, and a limit on guesses.

```
POST /login ── client over login_max_failures failures in login_window? ── 429 TooManyAttempts
     │                                                                    (Retry-After)
     ├── wrong token: count a failure for the client address, 401
     └── right token: forget its failures; cookie volfefe_session = v1.<issued>.<mac>
```

The cookie never holds the token: `mac` is HMAC-SHA256 of `v1.<issued>` (whole seconds of the
wall clock, so it means the same to every `serve` process and after a restart) under a key
derived from the token (HMAC-SHA256 of a fixed label, keyed by the token). Several `serve`
processes with one token accept each other's sessions; a new token ends every session; a
session ends `login_session_max_age` seconds after the login. Who holds a cookie could test
guesses of the token against it offline, as against a hash of the token: tokens have 16
characters or more (32 random bytes in the recipe of docs/http.md), which is out of reach.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import deque
from collections.abc import Callable

COOKIE = "volfefe_session"
VERSION = "v1"
KEY_LABEL = b"volfefe dashboard session v1"
CLOCK_SKEW = 60  # seconds a session may seem to be issued in the future (another host's clock)
MAX_CLIENTS = 10_000  # client addresses whose failures are remembered at once


def _mac(token: str, payload: str) -> str:
    key = hmac.new(token.encode(), KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def new_session(token: str, now: float | None = None) -> str:
    """The cookie value of a login made now with `token` (which it does not contain).

    >>> new_session("a-long-enough-secret-token", now=1700000000)[:14]
    'v1.1700000000.'
    """
    payload = f"{VERSION}.{int(time.time() if now is None else now)}"
    return f"{payload}.{_mac(token, payload)}"


def valid_session(cookie: str, token: str, max_age: float, now: float | None = None) -> bool:
    """True when `cookie` is a session made with `token` less than `max_age` seconds ago.

    >>> cookie = new_session("a-long-enough-secret-token", now=1700000000)
    >>> valid_session(cookie, "a-long-enough-secret-token", 3600, now=1700000010)
    True
    >>> valid_session(cookie, "another-secret-token-here", 3600, now=1700000010)
    False
    >>> valid_session(cookie, "a-long-enough-secret-token", 3600, now=1700003600)
    False
    """
    version, _, rest = cookie.partition(".")
    issued, _, mac = rest.partition(".")
    if version != VERSION or not issued.isdigit():
        return False
    if not hmac.compare_digest(mac.encode(), _mac(token, f"{version}.{issued}").encode()):
        return False
    age = (time.time() if now is None else now) - int(issued)
    return -CLOCK_SKEW <= age < max_age


class LoginAttempts:
    """Failed logins per client address over a sliding window (used on the event loop only).

    >>> attempts = LoginAttempts(max_failures=2, window=60, clock=lambda: 100.0)
    >>> attempts.failed("10.0.0.1"); attempts.failed("10.0.0.1")
    >>> attempts.retry_after("10.0.0.1"), attempts.retry_after("10.0.0.2")
    (60, None)
    """

    def __init__(
        self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max = max_failures
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until `client` may try again, or None when it may try now."""
        failures = self._recent(client)
        if len(failures) < self._max:
            return None
        return max(1, math.ceil(failures[0] + self._window - self._clock()))

    def failed(self, client: str) -> None:
        """Count a failed login of `client`."""
        if client not in self._failures and len(self._failures) >= MAX_CLIENTS:
            self._forget_some()
        self._failures.setdefault(client, deque(maxlen=self._max)).append(self._clock())

    def succeeded(self, client: str) -> None:
        """`client` logged in: its failures are forgotten."""
        self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= self._clock() - self._window:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

    def _forget_some(self) -> None:
        """Make room: drop clients whose failures are all past the window, else the oldest."""
        for client in list(self._failures):
            self._recent(client)
        if len(self._failures) >= MAX_CLIENTS:
            del self._failures[next(iter(self._failures))]
