"""The harness's own embedded PostgreSQL: started in a temporary folder, restarted, paused.

It is a pgserver instance like the one volfefe uses without `DATABASE_URL`, but private to
one harness run, so restarting or freezing it disturbs nobody else. As root, pgserver runs
postgres as the `pgserver` user, and pg_ctl must run as that user too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

from volfefe.chaos.procs import descendants, signal_quietly, snapshot
from volfefe.config import Settings
from volfefe.errors import DatabaseUnavailable
from volfefe.store.connect import resolve_database_url
from volfefe.store.embedded import start_embedded, wait_until_ready

PG_CTL_TIMEOUT = 60.0  # seconds for pg_ctl stop/start/restart
READY_WAIT = 5.0  # seconds a server a failed restart left starting may take to be ready


class ChaosDatabase:
    """The embedded server in `<data_dir>/pgdata` with its database "volfefe", migrated."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pgdata"
        self.url = resolve_database_url(Settings(data_dir=data_dir, database_url=None))

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid (first line of postmaster.pid), or None."""
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def restart(self) -> str | None:
        """`pg_ctl restart -m fast`: every connection is cut; same socket folder after.

        A connection arriving during the stop held it until its login timed out (PostgreSQL
        16 waits for such "dead-end" backends), past pg_ctl's minute on a loaded machine;
        the embedded server's authentication_timeout (volfefe.store.embedded) now bounds
        that. Should the restart still fail with the server stopped, it is started once
        more (`start`). None when the restart worked, else why it failed when the start
        brought the server back; DatabaseUnavailable when nothing did.
        """
        try:
            self._pg_ctl("-w", "-m", "fast", "-l", str(self.pgdata / "log"), "restart")
        except DatabaseUnavailable as exc:
            if not wait_until_ready(self.pgdata, time.monotonic() + READY_WAIT):
                self.start()
            return str(exc)
        return None

    def start(self) -> None:
        """Start the stopped server again as volfefe's embedded database starts it (same
        socket folder); DatabaseUnavailable when it does not come up."""
        start_embedded(self.pgdata)

    def pause(self, seconds: float) -> int:
        """Freeze the postmaster and its backends for `seconds`, then thaw them; how many
        processes were frozen."""
        frozen = self._server_pids()
        if not frozen:
            return 0
        try:
            for pid in frozen:
                signal_quietly(pid, signal.SIGSTOP)
            time.sleep(seconds)  # the pause is the fault itself
        finally:
            for pid in frozen:
                signal_quietly(pid, signal.SIGCONT)
        return len(frozen)

    def stop(self) -> None:
        """`pg_ctl stop -m fast`, if it runs (and thaw it first, in case it was paused)."""
        for pid in self._server_pids():
            signal_quietly(pid, signal.SIGCONT)
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(DatabaseUnavailable):
                self._pg_ctl("-w", "-m", "fast", "stop")

    def _server_pids(self) -> list[int]:
        postmaster = self.postmaster_pid()
        if postmaster is None:
            return []
        return [postmaster, *(p.pid for p in descendants(snapshot(), postmaster))]

    def _pg_ctl(self, *args: str) -> None:
        pgserver = _import_pgserver()
        user = "pgserver" if os.geteuid() == 0 else None
        try:
            pgserver.pg_ctl(list(args), pgdata=self.pgdata, user=user, timeout=PG_CTL_TIMEOUT)
        except (subprocess.SubprocessError, OSError) as err:
            raise DatabaseUnavailable(f"pg_ctl {args[-1]} failed for {self.pgdata}: {err}") from err


def _import_pgserver() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
    return pgserver
