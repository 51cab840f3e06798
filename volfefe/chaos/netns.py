"""A job worker's own host: a network namespace joined to this machine by a veth pair.

```
this machine (root namespace)                       namespace vf<pid>
  forwarder 169.254.A.B+1:PORT  <── vf<pid>h ═══ vf<pid>n ──  169.254.A.B+2
     │ (a thread of the harness)      veth pair, /30           `ip netns exec vf<pid>
     └──> the run's PostgreSQL (its Unix socket)                 python -m volfefe jobs worker`
```
The link-local /30 lives on the veth pair only: no route leads anywhere else, and the
namespace has no other interface but its loopback. `cut()` takes the host end down: every
packet either way is dropped, with no RST and no FIN, so the worker's connections go silent
the way they do when a cable or a switch dies. `heal()` brings it up again; connections that
neither side gave up on carry on. Everything is named with the `vf` prefix and removed by
`close()` (deleting the namespace deletes its veth end, and with it the pair).

Only root can make namespaces; `unavailable()` says why this machine cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

IP_TIMEOUT = 10.0  # seconds one `ip` command may take
COPY_CHUNK = 65536  # bytes the forwarder moves per read
LIMITS = frozenset(
    {
        "connect_timeout",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
    }
)


def unavailable() -> str | None:
    """Why this machine cannot give a worker its own network namespace (None: it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces"
    return None


def _addresses(pid: int) -> tuple[str, str]:
    """A /30 in 169.254.0.0/16 drawn from `pid`: (host end, namespace end)."""
    third, fourth = 1 + (pid >> 6) % 254, (pid & 63) * 4
    return f"169.254.{third}.{fourth + 1}", f"169.254.{third}.{fourth + 2}"


class Netns:
    """One namespace, its veth pair and a forwarder from the host end to the database.

    >>> with Netns(db_url) as ns:  # doctest: +SKIP
    ...     subprocess.run(ns.command(["python", "-c", "print(1)"]))
    ...     ns.cut(); ns.heal()
    """

    def __init__(self, db_url: str) -> None:
        self.name = f"vf{os.getpid()}"
        self.host_if, self.ns_if = f"{self.name}h", f"{self.name}n"
        self.host_addr, self.ns_addr = _addresses(os.getpid())
        self.db_url = db_url
        self.port = 0  # the forwarder's, once started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._made = False

    def __enter__(self) -> Netns:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Make the namespace and the veth pair, then start the forwarder; raises
        subprocess.CalledProcessError (after removing what was made) when `ip` refuses."""
        try:
            self._made = True
            _ip("netns", "add", self.name)
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.name)
            _ip("addr", "add", f"{self.host_addr}/30", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            _ip("-n", self.name, "addr", "add", f"{self.ns_addr}/30", "dev", self.ns_if)
            _ip("-n", self.name, "link", "set", self.ns_if, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
            # Permanent neighbours: while cut, a lookup cannot fail fast (EHOSTUNREACH after
            # the ARP probes), so new connections time out as across a dead router.
            _ip(
                "neigh",
                "replace",
                self.ns_addr,
                "lladdr",
                _mac(self.ns_if, self.name),
                "dev",
                self.host_if,
                "nud",
                "permanent",
            )
            _ip(
                "-n",
                self.name,
                "neigh",
                "replace",
                self.host_addr,
                "lladdr",
                _mac(self.host_if),
                "dev",
                self.ns_if,
                "nud",
                "permanent",
            )
            self._start_forwarder()
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        """The database URL as seen from inside the namespace (through the forwarder),
        without the connection limits `db_url` may carry: the worker's own settings
        (`VOLFEFE_DB_KEEPALIVE`, `VOLFEFE_DB_CONNECT_TIMEOUT`) decide them."""
        params = {k: v for k, v in conninfo_to_dict(self.db_url).items() if k not in LIMITS}
        return make_conninfo("", **{**params, "host": self.host_addr, "port": str(self.port)})

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace (`ip netns exec` execs it: same pid)."""
        return [_ip_command(), "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """Drop every packet between the namespace and this machine, silently."""
        _ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        """Let packets through again."""
        _ip("link", "set", self.host_if, "up")

    def close(self) -> None:
        """Stop the forwarder, remove the veth pair and the namespace (each step is tried
        whatever the others did)."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(IP_TIMEOUT)
            self._loop = self._thread = None
        if self._made:
            self._made = False
            for args in (("link", "del", self.host_if), ("netns", "del", self.name)):
                with contextlib.suppress(subprocess.CalledProcessError, OSError):
                    _ip(*args, quiet=True)

    # --- the forwarder ---------------------------------------------------------------------
    def _start_forwarder(self) -> None:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failed: list[BaseException] = []

        async def serve() -> None:
            try:
                self._server = await asyncio.start_server(self._pipe, self.host_addr, 0)
                self.port = self._server.sockets[0].getsockname()[1]
            except OSError as exc:
                failed.append(exc)
            started.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            serving = loop.create_task(serve())
            try:
                loop.run_forever()
            finally:
                serving.cancel()
                for task in asyncio.all_tasks(loop):
                    task.cancel()
                if self._server is not None:
                    self._server.close()
                loop.run_until_complete(asyncio.sleep(0))
                loop.close()

        self._loop, self._thread = loop, threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(IP_TIMEOUT)
        if failed or not self.port:
            raise OSError(f"the forwarder could not listen on {self.host_addr}: {failed}")

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await _open_database(self.db_url)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))


async def _open_database(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    params = conninfo_to_dict(url)
    host, port = str(params.get("host") or "localhost"), str(params.get("port") or "5432")
    if host.startswith("/"):  # a socket folder, as the embedded server's URL has
        return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
    return await asyncio.open_connection(host, int(port))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(COPY_CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass  # the other side went away: closing this side tells its peer
    finally:
        writer.close()


def _ip_command() -> str:
    return shutil.which("ip") or "/usr/sbin/ip"


def _mac(interface: str, namespace: str | None = None) -> str:
    where = ["-n", namespace] if namespace else []
    out = subprocess.run(
        [_ip_command(), *where, "-o", "link", "show", "dev", interface],
        check=True,
        timeout=IP_TIMEOUT,
        capture_output=True,
        text=True,
    ).stdout
    return out.split("link/ether", 1)[1].split()[0]


def _ip(*args: str, quiet: bool = False) -> None:
    subprocess.run(
        [_ip_command(), *args],
        check=True,
        timeout=IP_TIMEOUT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if quiet else None,
    )
