"""`volfefe serve` against slow clients, a curious job worker and login guessing, over real
sockets against a real server process."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures_db import fresh_database
from tests.helpers import eventually
from tests.jobs.helpers import children_of
from tests.web.conftest import TOKEN, Serve, Served

pytestmark = pytest.mark.db

HEAD_TIMEOUT = 1.0  # VOLFEFE_HTTP_HEADER_TIMEOUT of the server under test
KEEP_ALIVE = 1  # VOLFEFE_HTTP_KEEP_ALIVE
MAX_HEAD = 4096  # VOLFEFE_HTTP_MAX_HEADER_BYTES
MAX_FAILURES = 3  # VOLFEFE_LOGIN_MAX_FAILURES
LOGIN_WINDOW = 60  # VOLFEFE_LOGIN_WINDOW
NO_SUCH_JOB = 999_999
MARGIN = 4.0  # seconds of scheduling slack on a loaded machine
GIVE_UP = 15.0  # seconds after which a connection still open fails the test


@pytest.fixture(scope="module")
def server(serve: Serve, server_template: tuple[str, str]) -> Iterator[Served]:
    """One server with a short head deadline and keep-alive (on the DATABASE_URL server:
    what is tested here does not depend on the database)."""
    admin_url, template = server_template
    with fresh_database(admin_url, template) as url:
        served = serve(
            url,
            VOLFEFE_HTTP_HEADER_TIMEOUT=str(HEAD_TIMEOUT),
            VOLFEFE_HTTP_KEEP_ALIVE=str(KEEP_ALIVE),
            VOLFEFE_HTTP_MAX_HEADER_BYTES=str(MAX_HEAD),
            VOLFEFE_LOGIN_MAX_FAILURES=str(MAX_FAILURES),
            VOLFEFE_LOGIN_WINDOW=str(LOGIN_WINDOW),
        )
        yield served
        served.stop()


def connect_to(served: Served) -> socket.socket:
    """A plain TCP connection to the server."""
    return socket.create_connection(("127.0.0.1", served.port), timeout=GIVE_UP)


def closed_after(sock: socket.socket, trickle: bytes = b"") -> float:
    """Seconds until the server closes `sock` (sending `trickle` every 0.2 s meanwhile);
    fails if the server answers something or keeps it open for GIVE_UP seconds."""
    started = time.monotonic()
    while time.monotonic() - started < GIVE_UP:
        readable, _, _ = select.select([sock], [], [], 0.2)
        try:
            if readable:
                data = sock.recv(4096)
                assert data == b"", data
                return time.monotonic() - started
            if trickle:
                sock.sendall(trickle)
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    raise AssertionError(f"the server kept the connection open for {GIVE_UP} s")


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /heal", b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nAccept: "],
    ids=["nothing", "half a request line", "half the headers"],
)
def test_a_connection_that_never_finishes_its_request_head_is_closed(
    server: Served, sent: bytes
) -> None:
    with connect_to(server) as sock:
        sock.sendall(sent)
        assert closed_after(sock) < HEAD_TIMEOUT + MARGIN


def test_a_head_sent_a_byte_at_a_time_is_cut_at_the_deadline(server: Served) -> None:
    # Slowloris: every byte resets no timer; the head's deadline runs from its first byte.
    with connect_to(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        assert closed_after(sock, trickle=b"X-Slow: 1\r\n") < HEAD_TIMEOUT + MARGIN


def test_a_complete_request_is_answered_then_the_idle_connection_closes(server: Served) -> None:
    with connect_to(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        _, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in answer.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += sock.recv(4096)
        assert closed_after(sock) < KEEP_ALIVE + MARGIN


def test_a_head_over_the_size_limit_is_refused(server: Served) -> None:
    with connect_to(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 2 * MAX_HEAD)
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 "), "no 400 for an oversized head"


def test_the_job_worker_of_serve_does_not_get_the_api_token(
    serve: Serve, server_template: tuple[str, str]
) -> None:
    admin_url, template = server_template
    with fresh_database(admin_url, template) as url:
        served = serve(url, "--with-worker")
        try:

            def worker() -> int | None:
                for pid in children_of(served.proc.pid):
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        if b"jobs\0worker" in fh.read():
                            return pid
                return None

            pid = eventually(worker, timeout=30)
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            names = {entry.partition(b"=")[0] for entry in environ}
            assert b"DATABASE_URL" in names  # what it needs is there...
            assert b"VOLFEFE_API_TOKEN" not in names  # ...and the web's secret is not
            assert not any(TOKEN.encode() in entry for entry in environ)
            assert TOKEN.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        finally:
            assert served.stop() == 0, served.log()


def browser(served: Served, address: str) -> httpx.Client:
    """A client seen as coming from `address` (uvicorn trusts X-Forwarded-For from loopback,
    where a reverse proxy would be), which does not follow redirects."""
    return httpx.Client(
        base_url=served.base_url, headers={"X-Forwarded-For": address}, timeout=30.0
    )


def log_in(client: httpx.Client, token: str) -> httpx.Response:
    """Post the dashboard's login form."""
    return client.post("/login", data={"token": token})


def may_write(client: httpx.Client, cookie: str | None) -> bool:
    """Whether a dashboard button press with this session cookie gets past the login check
    (the job does not exist: a writer sees the jobs page with 409, anyone else /login)."""
    client.cookies.clear()
    if cookie is not None:
        client.cookies.set("volfefe_session", cookie)
    response = client.post(f"/jobs/{NO_SUCH_JOB}/retry")
    if response.status_code == 303:
        assert response.headers["location"] == "/login"
        return False
    assert response.status_code == 409, response.text
    return True


def test_the_login_cookie_is_a_signed_session_never_the_token(server: Served) -> None:
    with browser(server, "10.0.0.1") as client:
        response = log_in(client, TOKEN)
        assert response.status_code == 303, response.text
        set_cookie = response.headers["set-cookie"]
        assert TOKEN not in set_cookie
        assert set_cookie.startswith("volfefe_session=")
        assert "httponly" in set_cookie.lower() and "samesite=strict" in set_cookie.lower()
        assert "max-age=" in set_cookie.lower()  # the session ends
        session = response.cookies["volfefe_session"]
        assert TOKEN not in session

        assert may_write(client, session)
        version, issued, mac = session.split(".")
        assert not may_write(client, f"{version}.{int(issued) + 3600}.{mac}")  # tampered
        assert not may_write(client, f"{version}.{issued}.{'0' * len(mac)}")  # forged
        assert not may_write(client, TOKEN)  # the token itself is no session
        assert not may_write(client, None)


def test_failed_logins_are_limited_per_client_address(server: Served) -> None:
    with browser(server, "10.0.0.2") as guesser, browser(server, "10.0.0.3") as other:
        for _ in range(MAX_FAILURES):
            assert log_in(guesser, "wrong-guess-0123456789").status_code == 401
        refused = log_in(guesser, TOKEN)  # the right token too: guessing must stop
        assert refused.status_code == 429, refused.text
        assert 0 < int(refused.headers["retry-after"]) <= LOGIN_WINDOW
        assert "TooManyAttempts: too many failed logins" in refused.text
        assert "set-cookie" not in refused.headers

        assert log_in(other, "wrong-guess-0123456789").status_code == 401  # another address
        assert log_in(other, TOKEN).status_code == 303
    log = server.log()
    assert "429 for POST /login from 10.0.0.2" in log
    assert TOKEN not in log and "wrong-guess" not in log
